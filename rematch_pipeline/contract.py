"""The data contract (docs/data-contract.md) as code: field names, choice lists, id patterns, ranges, minimum offer."""

from __future__ import annotations

import re

# Choice lists; names cross the boundary unchanged.
LANGUAGES = ("uk", "ru", "en", "de", "pl", "other")
GERMAN_LEVELS = ("none", "a1", "a2", "b1", "b2_plus")
MEDICAL_SERVICES = ("dialysis", "oncology", "psychotherapy", "paediatric_specialist", "diabetes_care")
MEDICAL_NEEDS = MEDICAL_SERVICES + ("none",)
PETS = ("none", "cat", "dog", "other")
SETTLEMENT_TYPES = ("big_city", "mid_city", "small_town", "rural")
PREF_SETTLEMENTS = SETTLEMENT_TYPES + ("any",)
RELATIONS = ("head", "spouse", "child", "parent", "sibling", "other")
SEXES = ("female", "male", "diverse")
OCCUPATIONS = (
    "health_care", "education", "it", "engineering", "construction", "hospitality",
    "manufacturing", "logistics", "agriculture", "retail", "public_admin", "other", "none",
)
QUALIFICATIONS = ("none", "vocational", "bachelor", "master_plus")
COMMUNITY = ("none", "small", "large")
WEIGHT_ASPECTS = ("work", "education", "community", "healthcare", "housing", "culture")
# Land code by the first two AGS digits (Amtlicher Gemeindeschlüssel).
LAND_BY_AGS_PREFIX = {
    "01": "SH", "02": "HH", "03": "NI", "04": "HB", "05": "NW", "06": "HE", "07": "RP", "08": "BW",
    "09": "BY", "10": "SL", "11": "BE", "12": "BB", "13": "MV", "14": "SN", "15": "ST", "16": "TH",
}

YES_NO = ("yes", "no")
DECISIONS = ("accept", "decline")

# Field names in contract order; they cross the boundary.
HOUSEHOLD_FIELDS = (
    "case_id", "interview_date", "interview_location", "consent_matching", "consent_health_share",
    "contact_name", "contact_phone", "contact_email", "languages", "german_level", "wheelchair_access",
    "medical_needs", "pets", "pref_settlement", *(f"weight_{aspect}" for aspect in WEIGHT_ASPECTS), "ties_ags",
    "notes",
)
# Fields this project added to the shared contract: its senders do not know them, so a file without the column
# reads as before (nothing to note, the value empty).
HOUSEHOLD_OPTIONAL_FIELDS = ("contact_name",)
MEMBER_FIELDS = ("relation", "sex", "birth_year", "mobility_impaired", "occupation", "qualification")
CAPACITY_FIELDS = (
    "offer_id", "ags", "municipality_name", "state", "settlement_type", "valid_from", "valid_until",
    "places_persons", "units_1_room", "units_2_rooms", "units_3_rooms", "units_4plus_rooms", "units_wheelchair",
    "units_pets_allowed", "kita_u3", "kita_ue3", "school_primary", "school_secondary", "language_course_seats",
    "medical_services", "job_sectors_shortage", "ukrainian_community", "contact_name", "contact_email",
)
# select_multiple fields and their options, as the form defines them (Kobo adds one `field/option` column each).
HOUSEHOLD_SELECT_MULTIPLE: dict[str, tuple[str, ...]] = {"languages": LANGUAGES, "medical_needs": MEDICAL_NEEDS}
CAPACITY_SELECT_MULTIPLE: dict[str, tuple[str, ...]] = {
    "medical_services": MEDICAL_SERVICES + ("none",), "job_sectors_shortage": OCCUPATIONS,
}
CAPACITY_DATE_FIELDS = ("valid_from", "valid_until")
DECISION_FIELDS = ("case_id", "round_id", "decision", "decided_at", "reason")

CAPACITY_COUNT_FIELDS = (
    "places_persons", "units_1_room", "units_2_rooms", "units_3_rooms", "units_4plus_rooms", "units_wheelchair",
    "units_pets_allowed", "kita_u3", "kita_ue3", "school_primary", "school_secondary", "language_course_seats",
)
# Single-choice fields and their values.
CHOICES: dict[str, tuple[str, ...]] = {
    "consent_matching": YES_NO, "consent_health_share": YES_NO, "german_level": GERMAN_LEVELS,
    "wheelchair_access": YES_NO, "pets": PETS, "pref_settlement": PREF_SETTLEMENTS, "relation": RELATIONS,
    "sex": SEXES, "mobility_impaired": YES_NO, "occupation": OCCUPATIONS, "qualification": QUALIFICATIONS,
    "state": tuple(LAND_BY_AGS_PREFIX.values()), "settlement_type": SETTLEMENT_TYPES,
    "ukrainian_community": COMMUNITY, "decision": DECISIONS,
}

# Patterns, ASCII digits only: Python's \d and int() also read the digits of other scripts.
AGS_PATTERN = "[0-9]{8}"  # Amtlicher Gemeindeschlüssel: 8 digits, kept as text (leading zero)
INT_PATTERN = "-?[0-9]+"
DATE_PATTERN = "[0-9]{4}-[0-9]{2}-[0-9]{2}"
AGS_RE = re.compile(AGS_PATTERN, re.ASCII)

# Ranges.
WEIGHT_RANGE = (0, 5)  # how important an aspect is to the household
EARLIEST_BIRTH_YEAR = 1900
MIN_PLACES_PERSONS = 8  # the pilot's minimum offer: a municipality offers places for at least 8 persons
CONTACT_NAME_MAX_LENGTH = 100  # characters of the name a household wants to be addressed by
