"""Match quality of a (household, offer) pair, broken down by term so every match can be explained."""

from __future__ import annotations

from datetime import date

from rematch_pipeline.domain import CapacityOffer, Demand, Household, Policy

COMMUNITY_VALUE = {"none": 0.0, "small": 0.5, "large": 1.0}
# Cultural offer grows with settlement size; a household weighting culture prefers larger places.
CULTURE_VALUE = {"big_city": 1.0, "mid_city": 0.75, "small_town": 0.5, "rural": 0.25}
ALL_MEDICAL = 5.0

# Terms that express the household's own preferences (the preference rank uses only these).
HOUSEHOLD_TERMS = ("work", "education", "community", "healthcare", "housing", "culture", "settlement", "ties")


def working_adults(household: Household, round_date: date, policy: Policy) -> list[str]:
    lo, hi = policy.working_ages
    return [m.occupation for m in household.members if lo <= round_date.year - m.birth_year <= hi]


def score_terms(
    household: Household, demand: Demand, offer: CapacityOffer, round_date: date, policy: Policy
) -> dict[str, float]:
    """Each term is the household's 0-5 weight times how well the offer serves that aspect (0..1)."""
    w = household.weights
    occupations = [o for o in working_adults(household, round_date, policy) if o not in ("none", "other")]
    fitting = sum(1 for o in occupations if o in offer.job_sectors_shortage)
    work_fit = fitting / len(occupations) if occupations else 0.0
    child_need = demand.kita_u3 + demand.kita_ue3 + demand.school_primary + demand.school_secondary
    if child_need:
        seats = offer.kita_u3 + offer.kita_ue3 + offer.school_primary + offer.school_secondary
        education_fit = min(1.0, seats / (4.0 * child_need))
    else:
        education_fit = 0.0
    housing_fit = min(1.0, offer.units_with_at_least(demand.rooms_needed) / 10.0)
    terms = {
        "work": w.get("work", 0) * work_fit,
        "education": w.get("education", 0) * education_fit,
        "community": w.get("community", 0) * COMMUNITY_VALUE.get(offer.ukrainian_community, 0.0),
        "healthcare": w.get("healthcare", 0) * len(offer.medical_services) / ALL_MEDICAL,
        "housing": w.get("housing", 0) * housing_fit,
        "culture": w.get("culture", 0) * CULTURE_VALUE.get(offer.settlement_type, 0.0),
        "settlement": policy.settlement_bonus if household.pref_settlement == offer.settlement_type else 0.0,
        "ties": 0.0,
        "municipality_interest": policy.municipality_interest_weight * fitting,
    }
    if household.ties_ags:
        if household.ties_ags == offer.ags:
            terms["ties"] = policy.ties_same_municipality_bonus
        elif household.ties_ags[:5] == offer.kreis:
            terms["ties"] = policy.ties_same_kreis_bonus
    return {k: round(v, 6) for k, v in terms.items()}


def household_score(terms: dict[str, float]) -> float:
    return sum(terms[t] for t in HOUSEHOLD_TERMS)
