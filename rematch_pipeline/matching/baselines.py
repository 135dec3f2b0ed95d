"""Baselines on the same input: state-quota allocation (Königsteiner Schlüssel) and greedy by household score."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from rematch_pipeline.contract import LAND_BY_AGS_PREFIX
from rematch_pipeline.domain import CAPACITY_DIMENSIONS
from rematch_pipeline.matching.data import MatchingData, capacity_left, used_capacity
from rematch_pipeline.matching.eligibility import ELIGIBLE
from rematch_pipeline.matching.fair_share import proportional_share

# Königsteiner Schlüssel shares of the Länder (per cent, rounded; normalised before use).
KOENIGSTEIN_SHARES = {
    "BW": 13.05, "BY": 15.57, "BE": 5.19, "BB": 3.01, "HB": 0.96, "HH": 2.56, "HE": 7.43, "MV": 1.98,
    "NI": 9.40, "NW": 20.95, "RP": 4.82, "SL": 1.20, "SN": 4.90, "ST": 2.71, "SH": 3.41, "TH": 2.64,
}
PLACES = CAPACITY_DIMENSIONS.index("places_persons")
RANK_BUCKETS = ((1, 1), (2, 2), (3, 3), (4, 5), (6, 10), (11, 10**9))


def greedy_by_score(data: MatchingData) -> tuple[np.ndarray, np.ndarray]:
    """Households with the best available match go first; each takes its best-scoring eligible offer that fits."""
    left, units = capacity_left(data)
    demand, uses = data.hh.demand, data.hh.units_taken()
    eligible = data.eligible
    best = np.where(eligible, data.score, -np.inf).max(axis=1) if eligible.size else np.zeros(0)
    hs, os_ = [], []
    for h in sorted(range(len(data.households)), key=lambda i: (-best[i], i)):
        candidates = np.nonzero(eligible[h])[0]
        ordered = candidates[np.lexsort((candidates, -data.score[h, candidates]))]
        fitting = ordered[(left[ordered] >= demand[h]).all(axis=1) & (units[ordered] >= uses[h]).all(axis=1)]
        if len(fitting):
            o = int(fitting[0])
            left[o] -= demand[h]
            units[o] -= uses[h]
            hs.append(h)
            os_.append(o)
    return np.array(hs, dtype=np.int64), np.array(os_, dtype=np.int64)


def state_quota(data: MatchingData, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The administrative default: Länder get households by their quota share, in random order; within a Land
    the first municipality with free places takes the household. Needs are not looked at (that is the point)."""
    n = len(data.households)
    total = sum(KOENIGSTEIN_SHARES.values())
    quota = {land: n * share / total for land, share in KOENIGSTEIN_SHARES.items()}
    assigned = dict.fromkeys(KOENIGSTEIN_SHARES, 0)
    land_of = [LAND_BY_AGS_PREFIX.get(o.ags[:2], "") for o in data.offers]
    places = [int(v) for v in data.of.remaining[:, PLACES]]
    valid = data.of.valid.tolist()
    order = list(range(n))
    random.Random(seed).shuffle(order)
    hs, os_ = [], []
    for h in order:
        persons = int(data.hh.persons[h])
        for land in sorted(quota, key=lambda ld: (assigned[ld] - quota[ld], ld)):  # largest deficit first
            o = next((j for j, lj in enumerate(land_of) if lj == land and valid[j] and places[j] >= persons), None)
            if o is not None:
                places[o] -= persons
                assigned[land] += 1
                hs.append(h)
                os_.append(o)
                break
    return np.array(hs, dtype=np.int64), np.array(os_, dtype=np.int64)


def _bucket(lo: int, hi: int) -> str:
    return f"{lo}" if lo == hi else f"{lo}+" if hi > 10**6 else f"{lo}-{hi}"


def evaluate(data: MatchingData, h: np.ndarray, o: np.ndarray) -> dict[str, Any]:
    """Side-by-side figures of one allocation: placed, preference ranks, hard-need and capacity violations, fill."""
    eligible = data.eligible[h, o] if len(h) else np.zeros(0, dtype=bool)
    hard_need_violations = int((data.codes[h, o] != ELIGIBLE).sum()) if len(h) else 0
    ranks = data.preference_rank(h[eligible], o[eligible]) if eligible.any() else np.zeros(0, dtype=np.int64)
    used, used_rooms = used_capacity(data, h, o)
    cap, units = capacity_left(data)
    over = (used > cap).sum() + (used_rooms > units).sum()
    places = np.maximum(data.of.remaining[:, PLACES], 1)
    fill = used[:, PLACES] / places
    # Balance: persons placed beyond their offer's proportional share of this allocation's persons (by places left).
    beyond = np.maximum(used[:, PLACES] - proportional_share(data, float(used[:, PLACES].sum())), 0.0)
    return {
        "households_placed": int(len(h)),
        "persons_placed": int(data.hh.persons[h].sum()) if len(h) else 0,
        "mean_preference_rank": round(float(ranks.mean()), 4) if len(ranks) else None,
        "preference_rank_distribution": {_bucket(lo, hi): int(((ranks >= lo) & (ranks <= hi)).sum())
                                         for lo, hi in RANK_BUCKETS},
        "share_top3": round(float((ranks <= 3).mean()), 4) if len(ranks) else None,
        "hard_need_violations": hard_need_violations,
        "capacity_violations": int(over),
        "fill_min": round(float(fill.min()), 4) if len(fill) else None,
        "fill_mean": round(float(fill.mean()), 4) if len(fill) else None,
        "fill_max": round(float(fill.max()), 4) if len(fill) else None,
        "persons_beyond_share": round(float(beyond.sum()), 3),
    }
