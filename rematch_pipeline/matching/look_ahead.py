"""Look-ahead: what the coming rounds need of each offer, from LPs over the pool and sampled futures (issue 23)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import numpy as np

from rematch_pipeline.domain import CAPACITY_DIMENSIONS, LOOK_AHEAD_METHODS, ROOM_CLASSES, Policy
from rematch_pipeline.matching.backends import SolveError
from rematch_pipeline.matching.bound import Prices
from rematch_pipeline.matching.data import N_DIMS, MatchingData, OfferArrays, top_candidates
from rematch_pipeline.matching.eligibility import ELIGIBLE, NOT_VALID
from rematch_pipeline.matching.scoring import score_matrices
from rematch_pipeline.matching.solve import Bound, price_out
from rematch_pipeline.matching.types import HouseholdTypes, dedupe, household_types, type_keys

# A household of a coming round counts this much of one in the pool: the pool is here, the futures are a guess. So
# where a pool household and a future one are alike the LP places the pool's (its plan must say where they go), yet
# more persons later still outweigh fewer now.
FUTURE_WEIGHT = 0.95
# Households drawn for each coming round at most, each standing for its share of the round's arrivals: the LP's size,
# and so its work, stays bounded however large the arrivals (docs/solver-tuning.md).
FUTURE_DRAWS = 200
# Up to this many pool households each is an LP type of its own, so the plan says where each one goes; a larger pool
# (a first round of a whole backlog) is grouped by kind, each kind's plan spread evenly over its households, at a
# fraction of the LP's time. Weekly pools of 964-1,107 took up to 125 s (docs/solver-tuning.md).
OWN_TYPES_UP_TO = 1200
SHARED_FIRST = 1e-3  # of a unit: breaks ties between rows (`_shared_first`), far too little to place anyone


@dataclass
class Futures:
    """What the sampled futures say, averaged over them: capacity prices in persons per unit, the plan for the pool
    (each household's share of each offer in the LPs), and how they were found."""

    prices: Prices
    plan: np.ndarray  # (H, O) over the round's pool: the LPs' mean share of each household at each offer, 0..1
    arrivals: int  # households that entered the pool since the last round: the mix the futures are drawn from
    future_households: int  # households each sampled future brings (arrivals x rounds)
    samples: int
    status: str  # optimal, work_limit (an LP stopped by its work limits), time_limit, no_arrivals
    seconds: float = 0.0
    lp_values: list[float] = field(default_factory=list)  # persons the LP of each sample placed, pool included
    later_offers: int = 0  # offers opening after the round date that the coming rounds had

    def summary(self) -> dict[str, Any]:
        priced = (self.prices.capacity > 1e-9).any(axis=1) | (self.prices.rooms > 1e-9).any(axis=1)
        return {"status": self.status, "arrivals": self.arrivals, "future_households": self.future_households,
                "samples": self.samples, "solved": len(self.lp_values), "priced_offers": int(priced.sum()),
                "planned_households": int(round(float(self.plan.sum()))),  # of the pool, in the plan's mean
                "lp_persons": [round(v, 3) for v in self.lp_values], "seconds": round(self.seconds, 3),
                "later_offers": self.later_offers}


def sample_seed(round_id: str, policy: Policy) -> int:
    """The futures a round draws depend on its id and the policy's seed only: a replay draws the same."""
    digest = hashlib.sha256(f"{round_id}\x00look_ahead\x00{policy.solver.random_seed}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def sample_futures(data: MatchingData, arrived: np.ndarray, policy: Policy, round_id: str,
                   deadline: float, horizon: MatchingData | None = None) -> Futures:
    """The persons LP over the pool plus sampled futures: its plan for the pool and its capacity prices, averaged
    over the samples.

    Each future brings `look_ahead_rounds` rounds of arrivals like the last round's (`arrived`: the pool's rows that
    entered it since the last round), drawn with replacement; the k-th comes `look_ahead_interval_days` x k days from
    now and finds only the offers still valid then, so capacity that expires first is kept for nobody. The LP places
    pool and future households alike against the capacity left now: where it puts the pool's households is a plan
    that leaves the coming rounds what they need, and its dual price of a capacity row is what one more unit there
    would place over the horizon. Any LP the work limits stop gives nothing for its sample (status work_limit).
    `horizon`: the same pool over the round's offers and those opening before its last coming round, dates ignored;
    the LPs run over it, each round's households finding the offers valid on its date (the pool: today's).
    """
    t0 = time.perf_counter()
    rows = np.flatnonzero(arrived)
    n_future = len(rows) * policy.look_ahead_rounds
    ahead = data if horizon is None else horizon
    # The round's offers among the horizon's (both ordered by AGS and offer id, the later ones in between).
    index = {o.offer_id: j for j, o in enumerate(ahead.offers)}
    mine = np.array([index[o.offer_id] for o in data.offers], dtype=np.int64)
    total = Prices.zero(ahead)
    plan = np.zeros((len(data.households), len(ahead.offers)))
    if len(rows) == 0 or not data.offers:
        return Futures(Prices.zero(data), plan[:, mine], len(rows), 0, 0, "no_arrivals", time.perf_counter() - t0)
    rng = np.random.default_rng(sample_seed(round_id, policy))
    status, values = "optimal", []
    samples = policy.look_ahead_samples
    pool = np.arange(len(data.households))
    closed = _closed_on(ahead, policy)
    shape = (len(pool), len(ahead.offers))
    # The columns the last sample's pricing ended with, by type: the samples draw from the same arrivals, so most of
    # a sample's types were in the one before, and starting from its columns spares most pricing rounds.
    carried: dict[bytes, np.ndarray] = {}
    for _ in range(samples):
        idx, copies, expired = [pool], [np.ones(len(pool))], [np.broadcast_to(closed[0], shape)]
        for k in range(policy.look_ahead_rounds):
            draws = min(len(rows), FUTURE_DRAWS)
            counts = rng.multinomial(draws, np.full(len(rows), 1.0 / len(rows)))
            drawn = counts > 0
            idx.append(rows[drawn])
            copies.append(counts[drawn].astype(np.float64) * (len(rows) / draws))
            expired.append(np.broadcast_to(closed[k + 1], (int(drawn.sum()), len(ahead.offers))))
        future = ahead.rows(np.concatenate(idx), np.concatenate(copies))
        future.codes = np.where(np.concatenate(expired) & (future.codes == ELIGIBLE), NOT_VALID,
                                future.codes).astype(np.int8)
        pooled = np.zeros(len(future.households), dtype=np.int64)
        # The pool's households form types apart from the futures' (the plan is read off them).
        pooled[:len(pool)] = 1 + (np.arange(len(pool)) if len(pool) <= OWN_TYPES_UP_TO else 0)
        types = household_types(future, pooled)
        tdata = types.data
        persons = tdata.hh.persons.astype(np.float64)
        group = np.zeros(types.n_types, dtype=np.int64)
        group[types.of_household] = pooled
        of_pool = group > 0
        tdata.hh.persons = np.where(of_pool, persons, FUTURE_WEIGHT * persons)
        # The LP's tie-break by quality weighs a future household alike: where a pool household and its future copy
        # could swap places, the pool's takes the place it prefers, whatever vertex the LP solver ends at.
        tdata.score = np.where(of_pool[:, None], tdata.score, FUTURE_WEIGHT * tdata.score)
        tdata.of = _shared_first(tdata.of)
        keys = _type_keys(tdata, group)
        start = top_candidates(tdata, policy.solver.candidates_per_household)
        tdata.set_pairs(*_with_carried(tdata, keys, carried, start))
        try:
            # Without presolve: after it, the interior point's basis, postsolved, was once far from optimal for the
            # whole LP, and HiGHS's simplex clean-up took 133 s where the interior point took 4 (docs/solver-tuning.md).
            bound = price_out(tdata, policy, deadline, presolve=False)
        except SolveError:
            status = _worse(status, "time_limit" if time.perf_counter() >= deadline else "work_limit")
            continue
        carried = _carry(keys, bound)
        status = _worse(status, bound.lp.termination)
        prices = Prices.from_duals(tdata, bound.model, bound.duals)
        total = Prices(total.capacity + prices.capacity, total.rooms + prices.rooms)
        values.append(float(persons[bound.pair_h] @ bound.lp.x))
        plan += _pool_plan(types, bound, len(pool))
    solved = max(1, len(values))  # a sample without an LP solution adds no prices and is not counted
    # To a hundredth of a person: what the LP's tie-breaks leave below that is noise, not a reason to move anyone.
    mean = Prices(np.round(total.capacity[mine] / solved, 2), np.round(total.rooms[mine] / solved, 2))
    return Futures(mean, np.round(plan[:, mine] / solved, 2), len(rows), n_future, samples, status,
                   time.perf_counter() - t0, values, len(ahead.offers) - len(data.offers))


def _type_keys(tdata: MatchingData, group: np.ndarray) -> list[bytes]:
    """Each type's key (`type_keys`, with its group: future, the pool, or one pool household) as bytes: the same
    kind of household (or the same pool household) has the same key in every sample of a round."""
    return [row.tobytes() for row in np.ascontiguousarray(type_keys(tdata, group))]


def _carry(keys: list[bytes], bound: Bound) -> dict[bytes, np.ndarray]:
    """The offers of each type's columns in the LP's final model, by the type's key."""
    order = np.argsort(bound.pair_h, kind="stable")
    per_type = np.split(bound.pair_o[order], np.cumsum(np.bincount(bound.pair_h, minlength=len(keys)))[:-1])
    return {keys[t]: offers for t, offers in enumerate(per_type) if len(offers)}


def _with_carried(tdata: MatchingData, keys: list[bytes], carried: dict[bytes, np.ndarray],
                  pairs: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The candidate pairs and, for each type the sample before had, the offers of its columns there (a key holds
    the type's eligibility, so every such pair is eligible)."""
    extra = [(np.full(len(carried[k]), t), carried[k]) for t, k in enumerate(keys) if k in carried]
    if not extra:
        return pairs
    h = np.concatenate([pairs[0], *(e[0] for e in extra)])
    o = np.concatenate([pairs[1], *(e[1] for e in extra)])
    return dedupe(h, o, len(tdata.offers))


def _pool_plan(types: HouseholdTypes, bound: Bound, n_pool: int) -> np.ndarray:
    """(n_pool, O): each pool household's share of each offer in the LP; where a type holds several pool households
    (a large pool, grouped by kind) the type's households there are spread evenly over them."""
    tdata = types.data
    per_type = np.zeros(tdata.codes.shape)
    np.add.at(per_type, (bound.pair_h, bound.pair_o), np.maximum(bound.lp.x, 0.0))
    of_pool = types.of_household[:n_pool]
    return np.asarray(per_type[of_pool] / tdata.weight[of_pool][:, None])


def _closed_on(data: MatchingData, policy: Policy) -> np.ndarray:
    """(rounds + 1, O): whether each offer is not valid on the round's date (row 0) and on each coming round's
    (row k: k intervals from now): expired, or not yet open."""
    days = [data.round_date + timedelta(days=policy.look_ahead_interval_days * k)
            for k in range(policy.look_ahead_rounds + 1)]
    # The offer's own rule (`CapacityOffer.is_valid_on`), as for the round itself.
    return np.array([[not o.is_valid_on(day) for o in data.offers] for day in days],
                    dtype=bool).reshape(len(days), len(data.offers))


def _shared_first(of: OfferArrays) -> OfferArrays:
    """The offer's capacity with what only some households use raised by a trace, so that where a shared row (places,
    units) and a special one (accessible units, Kita, ...) bind alike, the price falls on the shared one.

    Such LPs are degenerate: a unit of an offer whose units are all accessible, wanted by wheelchair users, may be
    priced on its accessible-unit row, its unit row or between them, and a household that takes only the unit then
    seems to spend little, though it blocks a wheelchair user all the same. Larger room classes count as special
    against smaller ones (every household takes a unit of the smallest class).
    """
    bump = np.full(N_DIMS, SHARED_FIRST)
    bump[CAPACITY_DIMENSIONS.index("places_persons")] = 0.0
    return replace(of, remaining=of.remaining + bump,
                   units_ge_left=of.units_ge_left + SHARED_FIRST * np.arange(len(ROOM_CLASSES)))


def _worse(status: str, termination: str) -> str:
    order = ("optimal", "work_limit", "time_limit")
    known = termination if termination in order else "work_limit"
    return max(status, known, key=order.index)


def apply_look_ahead(data: MatchingData, future: Futures, policy: Policy) -> None:
    """Score every pair again with the look-ahead term (`scoring`: what a place costs the coming rounds beyond the
    household's least costly eligible one, judged by `look_ahead_method`), and choose the candidate pairs by that
    score."""
    if data.households and data.offers:
        if policy.look_ahead_method == "plan":
            # A household the plan puts at one place in two samples and another in the third is two-thirds there.
            cost = data.hh.persons[:, None] * (1.0 - future.plan)
        elif policy.look_ahead_method == "prices":
            cost = data.hh.demand @ future.prices.capacity.T + data.hh.units_taken() @ future.prices.rooms.T
        else:
            raise ValueError(f"look_ahead_method must be one of {', '.join(LOOK_AHEAD_METHODS)}")
        floor = np.where(data.eligible, cost, np.inf).min(axis=1)
        data.hh.future_cost = np.maximum(0.0, cost - np.where(np.isfinite(floor), floor, 0.0)[:, None])
        data.score, data.own_score = score_matrices(data.hh, data.of, policy)
    data.set_pairs(*top_candidates(data, policy.solver.candidates_per_household))
