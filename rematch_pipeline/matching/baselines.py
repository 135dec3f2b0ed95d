"""Baselines computed on the same matching data: greedy by household score (and room for more)."""

from __future__ import annotations

from dataclasses import dataclass

from rematch_pipeline.domain import CAPACITY_DIMENSIONS, ROOM_CLASSES
from rematch_pipeline.matching.data import MatchingData


@dataclass
class BaselineResult:
    name: str
    chosen_pairs: list[int]
    persons_placed: int


def fits(data: MatchingData, used: dict[str, int], o: int, h: int) -> bool:
    dem, rem = data.demands[h], data.remaining[o]
    if any(used[d] + dem.of(d) > rem[d] for d in CAPACITY_DIMENSIONS):
        return False
    return all(used[f"units_ge_{k}"] + 1 <= rem[f"units_ge_{k}"] for k in ROOM_CLASSES if k <= dem.rooms_needed)


def take(data: MatchingData, used: dict[str, int], h: int) -> None:
    dem = data.demands[h]
    for d in CAPACITY_DIMENSIONS:
        used[d] += dem.of(d)
    for k in ROOM_CLASSES:
        if k <= dem.rooms_needed:
            used[f"units_ge_{k}"] += 1


def greedy_by_score(data: MatchingData) -> BaselineResult:
    """Households with the best available match go first; each takes its best-scoring offer that still fits."""
    used = [dict.fromkeys([*CAPACITY_DIMENSIONS, *(f"units_ge_{k}" for k in ROOM_CLASSES)], 0) for _ in data.offers]
    pairs = data.pairs_of_household()
    best = {h: max((data.pair_score[p] for p in ps), default=0.0) for h, ps in enumerate(pairs)}
    chosen: list[int] = []
    for h in sorted(range(len(data.households)), key=lambda h: (-best[h], h)):
        for p in sorted(pairs[h], key=lambda p: (-data.pair_score[p], p)):
            o = data.pair_offer[p]
            if fits(data, used[o], o, h):
                take(data, used[o], h)
                chosen.append(p)
                break
    persons = sum(data.demands[data.pair_household[p]].persons for p in chosen)
    return BaselineResult("greedy_by_score", sorted(chosen), persons)
