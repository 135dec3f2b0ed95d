"""Match quality of (household, offer) pairs, term by term, so every match can be explained."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from rematch_pipeline.domain import Policy

if TYPE_CHECKING:
    from rematch_pipeline.matching.data import HouseholdArrays, OfferArrays

COMMUNITY_VALUE = {"none": 0.0, "small": 0.5, "large": 1.0}
# Cultural offer grows with settlement size; a household weighting culture prefers larger places.
CULTURE_VALUE = {"big_city": 1.0, "mid_city": 0.75, "small_town": 0.5, "rural": 0.25}
ALL_MEDICAL = 5.0
HOUSING_SCALE = 10.0  # ten or more suitable units count as a fully comfortable housing market
EDUCATION_SCALE = 4.0  # four seats per child needing one count as ample

# Terms that express the household's own preferences (the preference rank uses only these).
HOUSEHOLD_TERMS = ("work", "education", "community", "healthcare", "housing", "culture", "settlement", "ties")
MUNICIPALITY_TERMS = ("municipality_interest",)
# The round's own priorities: the same for every offer a household could take, so they decide who is placed, not where.
PRIORITY_TERMS = ("waiting",)
# What a placement spends of the coming weeks' capacity (look-ahead rounds): decides who is placed and where, never at
# the cost of a person placed now.
FUTURE_TERMS = ("look_ahead",)
ALL_TERMS = HOUSEHOLD_TERMS + MUNICIPALITY_TERMS + PRIORITY_TERMS + FUTURE_TERMS


def future_points(score_terms: Mapping[str, float]) -> float:
    """What an assignment's score spends on the coming weeks (never positive): its score without them is what the
    household and the municipality get."""
    return float(sum(score_terms.get(term, 0.0) for term in FUTURE_TERMS))


def term_arrays(hh: HouseholdArrays, of: OfferArrays, h: np.ndarray, o: np.ndarray,
                policy: Policy) -> dict[str, np.ndarray]:
    """Each household term is its own 0-5 weight times how well the offer serves that aspect (0..1).

    `h` and `o` are index arrays that broadcast together: (H,1) with (1,O) gives full matrices, two
    equal-length vectors give the terms of chosen pairs. One implementation serves both.
    """
    w = hh.weights  # (H, 6) in WEIGHT_ASPECTS order: work, education, community, healthcare, housing, culture
    fitting = _fitting(hh, of, h, o)
    workers = hh.workers[h]
    work_fit = np.divide(fitting, workers, out=np.zeros(np.broadcast(h, o).shape), where=workers > 0)
    child_need = hh.child_need[h]
    education_fit = np.divide(of.education_seats[o], EDUCATION_SCALE * child_need,
                              out=np.zeros(np.broadcast(h, o).shape), where=child_need > 0)
    housing_units = of.units_ge_total[o, hh.rooms[h] - 1]
    ties_ags, ags = hh.ties_ags[h], of.ags[o]
    ties = np.where((ties_ags > 0) & (ties_ags == ags), policy.ties_same_municipality_bonus,
                    np.where((ties_ags > 0) & (ties_ags // 1000 == ags // 1000), policy.ties_same_kreis_bonus, 0.0))
    terms = {
        "work": w[h, 0] * work_fit,
        "education": w[h, 1] * np.minimum(1.0, education_fit),
        "community": w[h, 2] * of.community[o],
        "healthcare": w[h, 3] * of.n_medical[o] / ALL_MEDICAL,
        "housing": w[h, 4] * np.minimum(1.0, housing_units / HOUSING_SCALE),
        "culture": w[h, 5] * of.culture[o],
        "settlement": np.where(hh.pref_settlement[h] == of.settlement[o], policy.settlement_bonus, 0.0),
        "ties": ties,
        "municipality_interest": policy.municipality_interest_weight * fitting,
    }
    if policy.waiting_weight_per_week > 0:  # off, a round's terms are those of rounds before the option existed
        terms["waiting"] = policy.waiting_weight_per_week * hh.weeks_waiting[h]
    if policy.look_ahead_weight > 0 and hh.future_cost.shape[1]:
        # Beyond the household's least costly eligible place: the term decides where it goes, never whether (a
        # household whose every place is scarce, a wheelchair user say, is not held back for later).
        terms["look_ahead"] = 0.0 - policy.look_ahead_weight * hh.future_cost[h, o]  # 0.0, not -0.0, at no cost
    shape = np.broadcast(h, o).shape
    return {k: np.round(np.broadcast_to(v, shape).astype(np.float64), 6) for k, v in terms.items()}


def _fitting(hh: HouseholdArrays, of: OfferArrays, h: np.ndarray, o: np.ndarray) -> np.ndarray:
    """Working adults whose occupation is a shortage sector of the offer."""
    if h.ndim == 2 and h.shape[1] == 1 and o.ndim == 2 and o.shape[0] == 1:
        # Full matrix: one matrix product instead of an (H, O, sectors) temporary.
        return np.asarray(hh.occupations[h[:, 0]] @ of.shortage[o[0]].T, dtype=np.float64)
    return np.asarray((hh.occupations[h] * of.shortage[o]).sum(axis=-1), dtype=np.float64)


def score_matrices(hh: HouseholdArrays, of: OfferArrays, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
    """(total score, household-only score) for every (household, offer) pair, summed term by term."""
    h = np.arange(len(hh.persons))[:, None]
    o = np.arange(len(of.ags))[None, :]
    terms = term_arrays(hh, of, h, o, policy)
    own = sum(terms[t] for t in HOUSEHOLD_TERMS)
    total = own + sum(terms[t] for t in MUNICIPALITY_TERMS + PRIORITY_TERMS + FUTURE_TERMS if t in terms)
    return np.asarray(total), np.asarray(own)
