"""An upper bound on match quality over every eligible pair, for any placement of at least the persons placed."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import highspy
import numpy as np

from rematch_pipeline.domain import ROOM_CLASSES, Policy
from rematch_pipeline.matching.backends import PhaseResult, SolveError, highs_options
from rematch_pipeline.matching.bound import (
    CHUNK,
    INTEGRAL,
    Prices,
    most_attractive,
    most_persons,
    priced_capacity,
    priced_use,
)
from rematch_pipeline.matching.budget import WorkBudget
from rematch_pipeline.matching.data import MatchingData, capacity_left, fits_left, top_candidates, used_capacity
from rematch_pipeline.matching.fair_share import FairShare

log = logging.getLogger(__name__)

FEASIBLE = 2  # HiGHS's solution status "feasible"
# Pricing stops once the bound is within this share of the LP over the candidate pairs: more columns could close
# at most that much of the gap.
QUALITY_PRICING_TOLERANCE = 1e-5
# The subgradient steps (`improve_quality_bound`): the step halves after this many steps without a lower bound, and
# each direction keeps this share of the last (measured at 2,000 x 60 and 10,000 x 400, docs/solver-tuning.md).
SUBGRADIENT_PATIENCE = 10
DEFLECTION = 0.5


@dataclass
class LPSupport:
    """The pairs the quality LP's last solution uses, with their values (none without an LP)."""

    h: np.ndarray
    o: np.ndarray
    value: np.ndarray

    @classmethod
    def empty(cls) -> LPSupport:
        none = np.zeros(0, dtype=np.int64)
        return cls(none, none, np.zeros(0))

    def on_pairs(self, data: MatchingData) -> np.ndarray:
        """The values over the data's candidate pairs (the household model's columns; 0 where the LP uses none), or
        nothing when there was no LP: no guide, rather than a guide that is 0 everywhere."""
        if not len(self.h):
            return np.zeros(0)
        n_off = max(1, len(data.offers))
        codes = self.h * n_off + self.o
        order = np.argsort(codes, kind="stable")
        want = data.pair_h * n_off + data.pair_o
        at = np.clip(np.searchsorted(codes[order], want), 0, len(codes) - 1)
        return np.where(codes[order][at] == want, self.value[order][at], 0.0)


@dataclass
class QualityProof:
    """The round's `quality_bound` phase, the bound it reports and the support of the bound's last LP."""

    phase: PhaseResult
    bound: float
    support: LPSupport


@dataclass
class QualityPrices:
    """Non-negative prices on the rows the quality bound relaxes."""

    capacity: Prices  # capacity per dimension and units by room class
    persons: float  # on "persons placed >= the persons-maximal number"
    share: np.ndarray  # (O,) on "persons within an offer's share <= persons placed there" (balanced fill)

    @classmethod
    def zero(cls, data: MatchingData) -> QualityPrices:
        return cls(Prices.zero(data), 0.0, np.zeros(len(data.offers)))


def pair_values(data: MatchingData, prices: QualityPrices, lo: int, hi: int) -> np.ndarray:
    """(hi-lo, O): each pair's score plus the priced persons it places, minus the priced capacity it uses."""
    persons = data.hh.persons[lo:hi, None].astype(np.float64)
    return data.score[lo:hi] + (prices.persons + prices.share[None, :]) * persons \
        - priced_use(data, prices.capacity, lo, hi)


def usable_pairs(data: MatchingData) -> np.ndarray:
    """(H, O) bool: the pairs a placement can use, eligible and fitting what the offer has left (`fits_left`)."""
    return data.eligible & fits_left(data)


def lagrangian_quality(data: MatchingData, prices: QualityPrices, placed: float, fair: FairShare | None,
                       usable: np.ndarray | None = None) -> float:
    """Weak duality with capacity, persons and share rows relaxed: each household takes its best priced offer
    among the `usable` pairs (default `usable_pairs`).

    For any non-negative prices the value bounds the quality (with balanced-fill points) of every placement over
    all eligible pairs that places at least `placed` persons.
    """
    return _lagrangian(data, prices, placed, fair, usable_pairs(data) if usable is None else usable)[0]


def _lagrangian(data: MatchingData, prices: QualityPrices, placed: float,
                fair: FairShare | None, usable: np.ndarray) -> tuple[float, np.ndarray]:
    """`lagrangian_quality`, and the offer each household takes in it (-1: none), which gives the subgradient."""
    total = priced_capacity(data, prices.capacity) - prices.persons * placed
    choice = np.full(len(data.households), -1, dtype=np.int64)
    for lo in range(0, len(data.households), CHUNK):
        hi = min(len(data.households), lo + CHUNK)
        if not data.offers:
            break
        values = np.where(usable[lo:hi], pair_values(data, prices, lo, hi), -np.inf)
        best = values.argmax(axis=1)
        value = values[np.arange(hi - lo), best]
        taken = value > 0
        choice[lo:hi][taken] = best[taken]
        total += float((np.where(taken, value, 0.0) * data.weight[lo:hi]).sum())
    if fair is not None:
        total += float((np.maximum(fair.share, 0.0) * np.maximum(fair.weight - prices.share, 0.0)).sum())
    return total, choice


def improve_quality_bound(data: MatchingData, prices: QualityPrices, placed: float, fair: FairShare | None,
                          target: float, steps: int, usable: np.ndarray,
                          deadline: float = float("inf")) -> tuple[float, bool]:
    """The lowest `lagrangian_quality` over `steps` projected subgradient steps from `prices` on the capacity, room
    and persons prices (the share prices stay), each a Polyak step towards `target` (the quality of a placement
    found) along the subgradient deflected by half the last direction.

    Every iterate's value is a valid bound, so the lowest is. A fixed number of steps: where the quality LP is over
    its column budget (national scale) this is the only tightening of the bound, about a tenth of a second a step
    at 10,000 x 400 (docs/solver-tuning.md). Also returns whether `deadline` (the safety net) cut the steps short.
    """
    cap, units = capacity_left(data)
    best, scale, stale = float("inf"), 2.0, 0
    direction = None
    for _ in range(steps):
        if time.perf_counter() >= deadline:
            return best, True
        value, choice = _lagrangian(data, prices, placed, fair, usable)
        if value < best - 1e-9:
            best, stale = value, 0
        else:
            stale += 1
            if stale >= SUBGRADIENT_PATIENCE:
                scale, stale = scale / 2, 0
        h = np.flatnonzero(choice >= 0)
        used, used_rooms = used_capacity(data, h, choice[h], data.weight[h])
        # The value's slope along each price: what is offered minus what the choices use; persons chosen minus placed.
        slope = np.concatenate([(cap - used).ravel(), (units - used_rooms).ravel(),
                                [float((data.hh.persons[h] * data.weight[h]).sum()) - placed]])
        direction = slope if direction is None else slope + DEFLECTION * direction
        norm = float(direction @ direction)
        if norm == 0 or value - target <= 0:
            break
        move = scale * (value - target) / norm * direction
        n_cap = cap.size
        prices = QualityPrices(
            Prices(np.maximum(prices.capacity.capacity - move[:n_cap].reshape(cap.shape), 0.0),
                   np.maximum(prices.capacity.rooms - move[n_cap:-1].reshape(units.shape), 0.0)),
            max(0.0, prices.persons - float(move[-1])), prices.share)
    return best, False


class QualityLP:
    """The quality LP with a row for every household, offer capacity, room class, the persons placed and each share,
    so priced columns are added to the same model (column generation)."""

    def __init__(self, data: MatchingData, policy: Policy, placed: float, fair: FairShare | None) -> None:
        n_hh, n_off = data.codes.shape
        self.data, self.n_dim, self.n_cls = data, data.hh.demand.shape[1], len(ROOM_CLASSES)
        self.row_cap = n_hh
        self.row_rooms = self.row_cap + n_off * self.n_dim
        self.row_persons = self.row_rooms + n_off * self.n_cls
        self.share_offers = np.zeros(0, dtype=np.int64) if fair is None else np.nonzero(fair.share > 0)[0]
        self.share_row = np.full(n_off, -1)
        self.share_row[self.share_offers] = self.row_persons + 1 + np.arange(len(self.share_offers))
        n_rows = self.row_persons + 1 + len(self.share_offers)
        left, units = capacity_left(data)
        upper = np.concatenate([data.weight, left.ravel(), units.ravel(), [highspy.kHighsInf],
                                np.zeros(len(self.share_offers))]).astype(np.float64)
        lower = np.full(n_rows, -highspy.kHighsInf)
        lower[self.row_persons] = placed
        self.h = highspy.Highs()
        for name, value in highs_options(policy).items():
            self.h.setOptionValue(name, value)
        self.h.changeObjectiveSense(highspy.ObjSense.kMaximize)
        none = np.zeros(0, dtype=np.int32)
        self.h.addRows(n_rows, lower, upper, 0, none, none, np.zeros(0))
        k = len(self.share_offers)
        if fair is not None and k:
            # Balanced fill: a column per offer with a share, `fair.weight` a person within it.
            self.h.addCols(k, np.full(k, fair.weight), np.zeros(k), fair.share[self.share_offers].astype(np.float64),
                           k, np.arange(k, dtype=np.int32), self.share_row[self.share_offers].astype(np.int32),
                           np.ones(k))
        self.pair_h = np.zeros(0, dtype=np.int64)
        self.pair_o = np.zeros(0, dtype=np.int64)

    def add(self, h: np.ndarray, o: np.ndarray) -> None:
        """Columns for the pairs (h, o): 1 in the household's row, its demand in the offer's capacity and room rows,
        its persons in the persons row and, negated, in the offer's share row."""
        data, n = self.data, len(h)
        if n == 0:
            return
        persons = data.hh.persons[h].astype(np.float64)
        rows = np.column_stack([h, self.row_cap + o[:, None] * self.n_dim + np.arange(self.n_dim),
                                self.row_rooms + o[:, None] * self.n_cls + np.arange(self.n_cls),
                                np.full(n, self.row_persons), self.share_row[o]])
        vals = np.column_stack([np.ones(n), data.hh.demand[h].astype(np.float64), data.hh.units_taken(h), persons,
                                -persons])
        keep = (vals != 0) & (rows >= 0)
        counts = keep.sum(axis=1)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int32)
        self.h.addCols(n, data.score[h, o].astype(np.float64), np.zeros(n), np.ones(n), int(counts.sum()), starts,
                       rows[keep].astype(np.int32), vals[keep])
        self.pair_h = np.concatenate([self.pair_h, h])
        self.pair_o = np.concatenate([self.pair_o, o])

    def solve(self, budget: WorkBudget, time_limit: float) -> float:
        """Interior point with crossover, every time: simplex from the last basis stalls on these degenerate LPs and
        was slower than a fresh solve (docs/solver-tuning.md). Returns the LP value; raises SolveError when it
        stopped without prices."""
        self.h.setOptionValue("solver", "ipm")
        self.h.setOptionValue("ipm_iteration_limit", budget.quality_bound_ipm_iterations)
        self.h.setOptionValue("simplex_iteration_limit", budget.quality_bound_crossover_iterations)
        self.h.setOptionValue("time_limit", max(0.01, float(time_limit)))
        self.h.run()
        status = self.h.getModelStatus()
        info = self.h.getInfo()
        if status != highspy.HighsModelStatus.kOptimal or info.dual_solution_status != FEASIBLE:
            raise SolveError(f"quality_bound: the LP stopped ({self.h.modelStatusToString(status)}) without prices")
        return float(info.objective_function_value)

    def support(self) -> LPSupport:
        """The pairs the last LP's solution uses."""
        values = np.asarray(self.h.getSolution().col_value)[len(self.share_offers):]
        used = values > INTEGRAL
        return LPSupport(self.pair_h[used], self.pair_o[used], values[used])

    def prices(self) -> tuple[QualityPrices, np.ndarray]:
        """The row duals as prices (HiGHS, maximising: a binding <= row has a non-negative dual, a binding >= row a
        non-positive one), and the duals of the households' rows (for pricing)."""
        n_hh, n_off = self.data.codes.shape
        duals = np.asarray(self.h.getSolution().row_dual)
        capacity = Prices(np.maximum(duals[self.row_cap:self.row_rooms].reshape(n_off, self.n_dim), 0.0),
                          np.maximum(duals[self.row_rooms:self.row_persons].reshape(n_off, self.n_cls), 0.0))
        share = np.zeros(n_off)
        share[self.share_offers] = np.maximum(duals[self.share_row[self.share_offers]], 0.0)
        return (QualityPrices(capacity, max(0.0, -float(duals[self.row_persons])), share),
                np.maximum(duals[:n_hh], 0.0))


def quality_bound(data: MatchingData, policy: Policy, placed: float, fair: FairShare | None,
                  chosen_h: np.ndarray, chosen_o: np.ndarray, deadline: float,
                  budget: WorkBudget) -> tuple[PhaseResult, LPSupport]:
    """The quality LP (persons at least `placed`) over a few pairs, priced over every eligible pair.

    The LP starts from the placement found (`chosen_h`, `chosen_o`, which keeps it feasible) and each household's
    best offers. Its duals are prices for `lagrangian_quality`, which holds for pairs the LP never saw; pairs that
    could raise it are added and the LP solved again, a fixed number of times. Every round's value is a valid
    bound; the lowest is kept. A round whose first LP would already reach the column budget solves no LP. Where the
    LPs stopped short of every eligible pair, or never ran, subgradient steps from their best prices (none: every
    household at its best offer) tighten the bound (`improve_quality_bound`). Also returns the pairs the last LP
    uses (none without an LP), which guide the quality neighbourhoods. Leaves `data` as it was.

    The bound's values leave out the pairs where a household does not fit what the offer has left (`usable_pairs`);
    the LPs and their pricing keep every eligible pair, so the guide, and the round's placement, are as without
    that (a guide from the LP without them made the neighbourhoods at 2,000 x 60 a quarter slower).
    """
    t0 = time.perf_counter()
    eligible, usable = data.eligible, usable_pairs(data)
    top_h, top_o = top_candidates(data, budget.quality_bound_candidates)
    n_off = max(1, len(data.offers))
    codes = np.unique(np.concatenate([top_h * n_off + top_o, chosen_h * n_off + chosen_o]))
    best_prices = QualityPrices.zero(data)
    best = lagrangian_quality(data, best_prices, placed, fair, usable)  # every household at its best
    # What the placement found scores, balanced-fill points included (the bound's own shares): the steps of
    # `improve_quality_bound` aim at it, and a target far below the optimum makes every step overshoot.
    found = float((data.score[chosen_h, chosen_o] * data.weight[chosen_h]).sum())
    if fair is not None:
        found += fair.points(chosen_o, (data.hh.persons[chosen_h] * data.weight[chosen_h]).astype(np.float64),
                             np.ones(len(chosen_h)))
    if len(codes) >= budget.quality_bound_columns:
        # The first LP alone would exceed the column budget: at national scale it is slow and its bound was looser
        # than every household at its best offer (docs/solver-tuning.md). Subgradient steps tighten that instead.
        stepped, cut = improve_quality_bound(data, best_prices, placed, fair, found,
                                             budget.quality_bound_subgradient_steps, usable, deadline)
        best = min(best, stepped)
        log.info("quality bound %.3f by subgradient steps (%d columns exceed the LP's budget)", best, len(codes))
        return (PhaseResult("quality_bound", "time_limit" if cut else "work_limit", float("nan"), best,
                            time.perf_counter() - t0, np.zeros(0)), LPSupport.empty())
    lp = QualityLP(data, policy, placed, fair)
    lp.add(codes // n_off, codes % n_off)
    in_lp = np.zeros(data.codes.shape, dtype=bool)
    in_lp[lp.pair_h, lp.pair_o] = True
    termination, rounds = "work_limit", 0
    support = LPSupport.empty()
    for rounds in range(1, budget.quality_bound_lps + 1):  # noqa: B007 (reported below)
        if time.perf_counter() >= deadline:
            termination = "time_limit"  # the safety net: fewer LPs than on a faster machine
            break
        try:
            objective = lp.solve(budget, deadline - time.perf_counter())
        except SolveError as exc:
            log.warning("%s; keeping the bound before it", exc)
            termination = "time_limit" if time.perf_counter() >= deadline else "work_limit"
            break
        prices, assignment = lp.prices()
        support = lp.support()
        value = lagrangian_quality(data, prices, placed, fair, eligible)
        bound = lagrangian_quality(data, prices, placed, fair, usable)
        log.debug("quality bound round %d: LP %.3f, bound %.3f, %d columns", rounds, objective, bound, len(lp.pair_h))
        if bound < best:
            best, best_prices = bound, prices
        if value - objective <= QUALITY_PRICING_TOLERANCE * max(1.0, abs(value)):
            termination = "optimal"  # the LP over its columns is the LP over every eligible pair
            break
        if len(lp.pair_h) >= budget.quality_bound_columns:
            break
        h, o = _priced(data, prices, assignment, eligible & ~in_lp)
        if not len(h):
            break
        lp.add(h, o)
        in_lp[h, o] = True
    if termination == "work_limit":
        # The LPs stopped short of the LP over every eligible pair: steps from their best prices may tighten it.
        stepped, cut = improve_quality_bound(data, best_prices, placed, fair, found,
                                             budget.quality_bound_subgradient_steps, usable, deadline)
        best = min(best, stepped)
        termination = "time_limit" if cut else termination
    log.info("quality bound %.3f after %d LP rounds (%s)", best, rounds, termination)
    return PhaseResult("quality_bound", termination, float("nan"), best, time.perf_counter() - t0, np.zeros(0)), support


def round_quality_bound(data: MatchingData, policy: Policy, placed: int, proven: bool, lp_bound: float,
                        fair: FairShare | None, chosen: np.ndarray, mip: PhaseResult,
                        deadline: float, budget: WorkBudget) -> QualityProof:
    """The round's proof of quality: the `quality_bound` phase, the bound the round reports and the LP's support.

    With balanced fill the bound's shares are those of the most persons any placement could place (the persons
    bound; shares grow with persons), so it also covers the best placement when the persons search stopped short
    of it. A quality MIP over every eligible pair proves its own bound once persons are proven maximal.
    """
    pool = float(data.hh.persons.sum())
    most = placed if proven else int(most_persons(min(lp_bound, pool) if np.isfinite(lp_bound) else pool))
    fair_bound = None if fair is None else FairShare.of(data, max(placed, most), fair.weight)
    qb, support = quality_bound(data, policy, placed, fair_bound, data.pair_h[chosen], data.pair_o[chosen], deadline,
                                budget)
    best = qb.bound
    if np.isfinite(mip.bound) and data.n_pairs >= data.n_eligible and proven:
        best = min(best, mip.bound)
    # The solvers' tolerances can put the bound a hair below what was found.
    return QualityProof(qb, max(best, mip.objective), support)


def _priced(data: MatchingData, prices: QualityPrices, assignment: np.ndarray,
            lacking: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each household's most attractive pairs among those `lacking` (the eligible pairs the LP lacks) with a
    positive reduced cost."""
    n_hh = data.codes.shape[0]
    new_h, new_o = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for lo in range(0, n_hh, CHUNK):
        hi = min(n_hh, lo + CHUNK)
        rc = pair_values(data, prices, lo, hi) - assignment[lo:hi, None]
        rows, cols = most_attractive(rc, lacking[lo:hi] & (rc > INTEGRAL))
        new_h.append(rows + lo)
        new_o.append(cols)
    return np.concatenate(new_h), np.concatenate(new_o)
