"""One German term, with its English twin, per concept that the packets, the round report and the forms name."""

from __future__ import annotations

from dataclasses import dataclass

SHY = "\u00ad"


@dataclass(frozen=True)
class Term:
    de: str
    en: str  # a label (a table column, a chart)
    # The German term with soft hyphens placed by hand, at compound joins or, in a simple word, a syllable (pyphen's
    # German patterns break "Kurs|plätze" as "kur-splät-ze"): narrow table headers may break there and nowhere else.
    de_breakable: str = ""
    en_phrase: str = ""  # the same in an English sentence ("places for persons"); the label if not given

    def __post_init__(self) -> None:
        if not self.de_breakable:
            object.__setattr__(self, "de_breakable", self.de)
        if not self.en_phrase:
            object.__setattr__(self, "en_phrase", self.en)
        if self.de_breakable.replace(SHY, "") != self.de:
            raise ValueError(f"hyphenated form of {self.de!r} spells another word")


def _t(breakable: str, en: str, en_phrase: str = "") -> Term:
    """A term given by its hyphenated form ('|' marks a correct break point)."""
    return Term(breakable.replace("|", ""), en, breakable.replace("|", SHY), en_phrase)


# Capacity dimensions (domain.CAPACITY_DIMENSIONS): what a municipality offers and a household consumes.
DIMENSIONS: dict[str, Term] = {
    "places_persons": _t("Per|sonen", "persons", "places for persons"),
    "units_wheelchair": _t("Barriere|freie Wohnung", "wheelchair units", "wheelchair-accessible units"),
    "units_pets_allowed": _t("Wohnung mit Haus|tier|erlaubnis", "pet units", "pet-allowed units"),
    "kita_u3": _t("Kita|plätze U3", "Kita U3", "Kita U3 places"),
    "kita_ue3": _t("Kita|plätze Ü3", "Kita Ü3", "Kita Ü3 places"),
    "school_primary": _t("Grund|schul|plätze", "primary", "primary-school places"),
    "school_secondary": _t("Plätze weiter|füh|rende Schule", "secondary", "secondary-school places"),
    "language_course_seats": _t("Inte|gra|tions|kurs|plätze", "language course", "language-course seats"),
}

# Household needs that are not capacity dimensions.
ROOMS_NEEDED = _t("Zimmer|bedarf", "rooms needed")
PETS = _t("Haus|tiere", "pets")
MEDICAL_NEED = Term("Medizinische Versorgung", "medical care")
ARRIVAL_WINDOW = _t("Ankunfts|zeitraum", "arrival window")

# Answers to a match offer (domain PENDING, ACCEPTED, DECLINED, EXPIRED).
STATUSES: dict[str, Term] = {
    "pending": Term("Antwort ausstehend", "pending"),
    "accepted": Term("angenommen", "accepted"),
    "declined": Term("abgelehnt", "declined"),
    "expired": Term("Frist abgelaufen", "expired"),
    "withdrawn": Term("zurückgezogen", "withdrawn"),
}

# What a household weights (contract WEIGHT_ASPECTS); the solver's score terms of the same name are these concepts.
ASPECTS: dict[str, Term] = {
    "work": Term("Arbeit", "work"),
    "education": Term("Bildung und Schule", "education"),
    "community": Term("Ukrainische Gemeinschaft", "Ukrainian community"),
    "healthcare": Term("Gesundheitsversorgung", "health care"),
    "housing": Term("Wohnen", "housing"),
    "culture": Term("Kultur und Freizeit", "culture"),
}

# Every score term the solver produces (matching.scoring.ALL_TERMS), and only those.
SCORE_TERMS: dict[str, Term] = {
    **ASPECTS,
    "settlement": Term("Gewünschter Siedlungstyp", "preferred settlement type"),
    "ties": Term("Angehörige oder Bekannte in der Nähe", "relatives or friends nearby"),
    "municipality_interest": Term("Fachkräftebedarf der Kommune", "the municipality's skill shortages"),
    "waiting": Term("Vorrang nach Wartezeit", "priority for weeks waited"),
    "look_ahead": Term("Vorhalten für kommende Wochen", "places kept for the coming weeks"),
}

# The contract's choice lists, German only (the forms add Ukrainian and English beside them).
LANGUAGES: dict[str, str] = {
    "uk": "Ukrainisch", "ru": "Russisch", "en": "Englisch", "de": "Deutsch", "pl": "Polnisch",
    "other": "Andere Sprache",
}
GERMAN_LEVELS: dict[str, str] = {
    "none": "Keine Kenntnisse", "a1": "A1", "a2": "A2", "b1": "B1", "b2_plus": "B2 oder höher",
}
MEDICAL_SERVICES: dict[str, str] = {
    "dialysis": "Dialyse", "oncology": "Onkologie", "psychotherapy": "Psychotherapie",
    "paediatric_specialist": "Kinderfachärztliche Versorgung", "diabetes_care": "Diabetesversorgung",
}
PET_KINDS: dict[str, str] = {"none": "Keine", "cat": "Katze", "dog": "Hund", "other": "Anderes Tier"}
SETTLEMENTS: dict[str, str] = {
    "big_city": "Großstadt", "mid_city": "Mittelstadt", "small_town": "Kleinstadt", "rural": "Ländlicher Raum",
    "any": "Keine Präferenz",
}
RELATIONS: dict[str, str] = {
    "head": "Haushaltsvorstand", "spouse": "Ehe-/Lebenspartner:in", "child": "Kind", "parent": "Elternteil",
    "sibling": "Geschwister", "other": "Andere Person",
}
SEXES: dict[str, str] = {"female": "weiblich", "male": "männlich", "diverse": "divers"}
OCCUPATIONS: dict[str, str] = {
    "health_care": "Gesundheit und Pflege", "education": "Bildung und Erziehung", "it": "IT",
    "engineering": "Ingenieurwesen", "construction": "Bau", "hospitality": "Gastgewerbe",
    "manufacturing": "Produktion", "logistics": "Logistik", "agriculture": "Landwirtschaft",
    "retail": "Handel", "public_admin": "Öffentliche Verwaltung", "other": "Anderer Beruf",
    "none": "Keine Erwerbstätigkeit",
}
QUALIFICATIONS: dict[str, str] = {
    "none": "Ohne Berufsabschluss", "vocational": "Berufsausbildung", "bachelor": "Bachelor",
    "master_plus": "Master oder höher",
}
