"""Extract assignments with their explanation, and a reason for every household left unmatched."""

from __future__ import annotations

from collections import Counter

from rematch_pipeline.domain import CAPACITY_DIMENSIONS, Assignment, Unmatched
from rematch_pipeline.matching.data import MatchingData

DIMENSION_WORDS = {
    "places_persons": "places for persons",
    "units_wheelchair": "wheelchair-accessible units",
    "units_pets_allowed": "pet-allowed units",
    "kita_u3": "Kita U3 places",
    "kita_ue3": "Kita Ü3 places",
    "school_primary": "primary-school places",
    "school_secondary": "secondary-school places",
    "language_course_seats": "language-course seats",
}


def used_capacity(data: MatchingData, chosen: list[int]) -> list[dict[str, int]]:
    used = [dict.fromkeys([*CAPACITY_DIMENSIONS, "units_ge_1", "units_ge_2", "units_ge_3", "units_ge_4"], 0)
            for _ in data.offers]
    for p in chosen:
        dem = data.demands[data.pair_household[p]]
        u = used[data.pair_offer[p]]
        for d in CAPACITY_DIMENSIONS:
            u[d] += dem.of(d)
        for k in range(1, dem.rooms_needed + 1):
            u[f"units_ge_{k}"] += 1
    return used


def _no_eligible_reason(reasons: Counter[str], n_offers: int) -> str:
    if n_offers == 0:
        return "no eligible municipality: no capacity offer is valid on the round date"
    parts = ", ".join(f"{r} ({n} of {n_offers})" for r, n in sorted(reasons.items(), key=lambda t: (-t[1], t[0])))
    return f"no eligible municipality: {parts}"


def _capacity_reason(data: MatchingData, h: int, pairs: list[int], used: list[dict[str, int]]) -> str:
    dem = data.demands[h]
    short: Counter[str] = Counter()
    for p in pairs:
        o = data.pair_offer[p]
        rem, u = data.remaining[o], used[o]
        for d in CAPACITY_DIMENSIONS:
            if dem.of(d) and rem[d] - u[d] < dem.of(d):
                short[DIMENSION_WORDS[d]] += 1
        if rem[f"units_ge_{dem.rooms_needed}"] - u[f"units_ge_{dem.rooms_needed}"] < 1:
            short[f"units with {dem.rooms_needed}+ rooms"] += 1
    if not short:
        # Each remaining dimension fits alone, but not together with the persons-maximal placement of others.
        return f"capacity exhausted: placing it would displace more persons elsewhere ({len(pairs)} eligible)"
    parts = ", ".join(f"{w} ({n})" for w, n in sorted(short.items(), key=lambda t: (-t[1], t[0])))
    return f"capacity exhausted at all {len(pairs)} eligible municipalities: {parts}"


def extract(data: MatchingData, chosen: list[int], round_id: str) -> tuple[list[Assignment], list[Unmatched]]:
    placed = {data.pair_household[p]: p for p in chosen}
    used = used_capacity(data, chosen)
    by_household = data.pairs_of_household()
    assignments: list[Assignment] = []
    unmatched: list[Unmatched] = []
    for h, household in enumerate(data.households):
        persons = data.demands[h].persons
        if h in placed:
            p = placed[h]
            offer = data.offers[data.pair_offer[p]]
            assignments.append(Assignment(
                round_id=round_id, case_id=household.case_id, ags=offer.ags, persons=persons,
                score=data.pair_score[p], score_terms=data.pair_terms[p], preference_rank=data.pair_rank[p],
                offer_id=offer.offer_id,
            ))
        elif not by_household[h]:
            unmatched.append(Unmatched(round_id, household.case_id, persons,
                                       _no_eligible_reason(data.exclusions[h], len(data.offers))))
        else:
            unmatched.append(Unmatched(round_id, household.case_id, persons,
                                       _capacity_reason(data, h, by_household[h], used)))
    return assignments, unmatched
