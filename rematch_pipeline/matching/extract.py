"""Extract assignments with their explanation, and a reason (codes and counts) for every household left unmatched."""

from __future__ import annotations

from collections import Counter

import numpy as np

from rematch_pipeline.domain import CAPACITY_DIMENSIONS, Assignment, Household, Unmatched, UnmatchedReason
from rematch_pipeline.matching.data import MatchingData, used_capacity
from rematch_pipeline.matching.eligibility import EXCLUSION_KEYS, NO_MEDICAL, missing_services
from rematch_pipeline.matching.reasons import DIMENSION_WORDS, HEALTH_NEED, HEALTH_UNITS, words
from rematch_pipeline.matching.scoring import term_arrays
from rematch_pipeline.matching.units import units_for


def _no_eligible_reason(data: MatchingData, hi: int) -> UnmatchedReason:
    n_offers = len(data.offers)
    if n_offers == 0:
        return UnmatchedReason("no_valid_offer", 0)
    codes = data.codes[hi]
    consented = data.households[hi].consent_health_share
    keys = [EXCLUSION_KEYS[int(c)] for c in codes]
    if not consented:
        # Which service or that it is about accessibility are health and disability details: they leave the
        # pipeline (exports, audit, report) only with the household's consent, so they are not even kept here.
        keys = [HEALTH_NEED if k in ("no_accessible", "no_medical") else k for k in keys]
    order = {k: i for i, k in enumerate(EXCLUSION_KEYS.values())}
    order[HEALTH_NEED] = order["no_medical"]
    counts = sorted(Counter(keys).items(), key=lambda t: (-t[1], order[t[0]]))
    missing: set[str] = set()
    if consented:
        missing = {s for j in np.nonzero(codes == NO_MEDICAL)[0]
                   for s in missing_services(int(data.hh.need_medical[hi]), int(data.of.medical[j]))}
    return UnmatchedReason("no_eligible", n_offers, tuple(counts), tuple(sorted(missing)))


def _capacity_reason(data: MatchingData, hi: int, used: np.ndarray, used_rooms: np.ndarray) -> UnmatchedReason:
    offers = np.nonzero(data.eligible[hi])[0]
    dem = data.hh.demand[hi]
    left = data.of.remaining[offers] - used[offers]  # (n, dims)
    short: Counter[str] = Counter()
    consented = data.households[hi].consent_health_share
    for d, name in enumerate(CAPACITY_DIMENSIONS):
        if dem[d]:
            short[HEALTH_UNITS if name == "units_wheelchair" and not consented else name] += \
                int((left[:, d] < dem[d]).sum())
    r = int(data.hh.rooms[hi])
    short[f"units_{r}_rooms_or_more"] += int((units_for(data.of.units_ge_left[offers] - used_rooms[offers], r) < 1)
                                             .sum())
    counts = sorted(((k, n) for k, n in short.items() if n), key=lambda t: (-t[1], DIMENSION_WORDS[t[0]]))
    return UnmatchedReason("capacity" if counts else "would_displace", len(offers), tuple(counts))


def _unmatched(round_id: str, household: Household, persons: int, why: UnmatchedReason) -> Unmatched:
    return Unmatched(round_id, household.case_id, persons, words(why), why)


def extract(data: MatchingData, chosen: np.ndarray, round_id: str) -> tuple[list[Assignment], list[Unmatched]]:
    h, o = data.pair_h[chosen], data.pair_o[chosen]
    terms = term_arrays(data.hh, data.of, h, o, data.policy)
    ranks = data.preference_rank(h, o) if len(h) else np.zeros(0, dtype=np.int64)
    score = data.score[h, o]
    placed = {int(hi): i for i, hi in enumerate(h)}
    used, used_rooms = used_capacity(data, h, o)
    has_eligible = np.asarray(data.eligible.any(axis=1)) if data.offers else np.zeros(len(data.households), bool)
    assignments: list[Assignment] = []
    unmatched: list[Unmatched] = []
    for hi, household in enumerate(data.households):
        persons = int(data.hh.persons[hi])
        if hi in placed:
            i = placed[hi]
            offer = data.offers[int(o[i])]
            assignments.append(Assignment(
                round_id=round_id, case_id=household.case_id, ags=offer.ags, persons=persons,
                score=round(float(score[i]), 6), score_terms={k: float(v[i]) for k, v in terms.items()},
                preference_rank=int(ranks[i]), offer_id=offer.offer_id,
            ))
        elif not has_eligible[hi]:
            unmatched.append(_unmatched(round_id, household, persons, _no_eligible_reason(data, hi)))
        else:
            unmatched.append(_unmatched(round_id, household, persons, _capacity_reason(data, hi, used, used_rooms)))
    return assignments, unmatched
