"""Unmatched reasons in words, rendered from their codes (`domain.UnmatchedReason`): one home for these words."""

from __future__ import annotations

from rematch_pipeline import glossary
from rematch_pipeline.domain import ROOM_CLASSES, UnmatchedReason

HEALTH_NEED = "health_need"  # a health or disability need of a household that did not consent to share which
HEALTH_UNITS = "units_health_need"

EXCLUSION_WORDS = {
    "not_valid": "offer not valid on the round date",
    "declined": "declined earlier by the household",
    "no_accessible": "no wheelchair-accessible unit",
    "no_medical": "medical service not offered",
    "no_pets": "no unit where pets are allowed",
    "too_small": "too few places for the household's size",
    "no_rooms": "no unit with enough rooms",
    HEALTH_NEED: "a health or disability need not met (which one only with the household's consent)",
}
DIMENSION_WORDS = {
    **{dimension: term.en_phrase for dimension, term in glossary.DIMENSIONS.items()},
    HEALTH_UNITS: "units for a health or disability need",
    **{f"units_{k}_rooms_or_more": f"units with {k}+ rooms" for k in ROOM_CLASSES},
}
NO_VALID_OFFER = "no capacity offer is valid on the round date"


def count_words(kind: str, key: str) -> str:
    return EXCLUSION_WORDS[key] if kind == "no_eligible" else DIMENSION_WORDS[key]


def words(why: UnmatchedReason) -> str:
    """The reason as the round export, the audit export and `round status` show it."""
    if why.kind == "no_valid_offer":
        return f"no eligible municipality: {NO_VALID_OFFER}"
    if why.kind == "would_displace":
        # Each dimension fits alone, but not together with the persons-maximal placement of the others.
        return f"capacity exhausted: placing it would displace more persons elsewhere ({why.offers} eligible)"
    if why.kind == "no_eligible":
        parts = []
        for key, n in why.counts:
            said = EXCLUSION_WORDS[key]
            if key == "no_medical" and why.missing_services:
                said += ": " + ", ".join(why.missing_services)
            parts.append(f"{said} ({n} of {why.offers})")
        return "no eligible municipality: " + "; ".join(parts)
    parts = [f"{DIMENSION_WORDS[key]} ({n})" for key, n in why.counts]
    return f"capacity exhausted at all {why.offers} eligible municipalities: {', '.join(parts)}"


def category(why: UnmatchedReason) -> str:
    """The group a reason counts in on the round report: which need excluded most offers, or which capacity ran
    out at most of them."""
    if why.kind == "no_valid_offer":
        return f"no eligible municipality — {NO_VALID_OFFER}"
    if why.kind == "no_eligible":
        return f"no eligible municipality — {EXCLUSION_WORDS[why.counts[0][0]]}" if why.counts \
            else "no eligible municipality"
    if why.kind == "capacity" and why.counts:
        return f"capacity exhausted — {DIMENSION_WORDS[why.counts[0][0]]}"
    return "capacity exhausted"
