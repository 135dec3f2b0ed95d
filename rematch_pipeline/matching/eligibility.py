"""Hard needs: which (household, offer) pairs may be matched at all, and why a pair is excluded."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

from rematch_pipeline.domain import CapacityOffer, Demand, Household

# Exclusion reasons in plain words; the first that applies is recorded for the unmatched explanation.
NOT_VALID = "offer not valid on the round date"
DECLINED = "declined earlier by the household"
NO_ACCESSIBLE = "no wheelchair-accessible unit"
NO_PETS = "no unit where pets are allowed"
TOO_SMALL = "too few places for the household's size"
NO_ROOMS = "no unit with enough rooms"


def exclusion_reason(
    household: Household,
    demand: Demand,
    offer: CapacityOffer,
    remaining: dict[str, int],
    round_date: date,
    declined_ags: Collection[str],
) -> str | None:
    """Return why `offer` can never take `household` this round, or None if the pair is eligible.

    `remaining` is the offer's capacity left after earlier accepted matches (places_persons,
    units_wheelchair, units_pets_allowed, units_ge_<k> for room classes k).
    """
    if not offer.is_valid_on(round_date):
        return NOT_VALID
    if offer.ags in declined_ags:
        return DECLINED
    if demand.units_wheelchair and remaining["units_wheelchair"] <= 0:
        return NO_ACCESSIBLE
    missing = household.hard_medical_needs - offer.medical_services
    if missing:
        return "medical service not offered: " + ", ".join(sorted(missing))
    if demand.units_pets_allowed and remaining["units_pets_allowed"] <= 0:
        return NO_PETS
    if remaining["places_persons"] < demand.persons:
        return TOO_SMALL
    if remaining[f"units_ge_{demand.rooms_needed}"] <= 0:
        return NO_ROOMS
    return None
