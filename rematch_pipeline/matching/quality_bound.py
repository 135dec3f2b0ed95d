"""An upper bound on match quality over every eligible pair, for any placement of at least the persons placed."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass

import numpy as np

from rematch_pipeline.domain import Policy
from rematch_pipeline.matching.backends import HighsDirect, PhaseResult, SolveError
from rematch_pipeline.matching.bound import CHUNK, PRICED_PER_HOUSEHOLD, Prices, priced_capacity, priced_use
from rematch_pipeline.matching.build import build_model
from rematch_pipeline.matching.data import MatchingData, top_candidates
from rematch_pipeline.matching.fair_share import FairShare

log = logging.getLogger(__name__)

# Work, not time: LPs over the candidate pairs, each followed by pricing in the eligible pairs it lacks, up to a
# number of columns, and interior-point iterations per LP (they converge in 20-60). 2,000 x 60 converges in 4-5
# rounds (20,000 columns, 4-6 s); 10,000 x 400 would need more than 170,000 columns and minutes, so there the
# bound stops after its first LP and stays loose (see docs/solver-tuning.md).
QUALITY_PRICING_ROUNDS = 6
QUALITY_MAX_COLUMNS = 30_000
QUALITY_LP_ITERATIONS = 400
# The first LP's columns: the placement found and each household's best offers by score. Pricing adds the rest
# that matter; the whole candidate set is too large (10,000 x 400: 389,000 columns, 92 s for one LP).
QUALITY_BOUND_CANDIDATES = 3
# Pricing stops once the bound is within this share of the LP over the candidate pairs: more columns could close
# at most that much of the gap.
QUALITY_PRICING_TOLERANCE = 1e-5


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


def lagrangian_quality(data: MatchingData, prices: QualityPrices, placed: float, fair: FairShare | None) -> float:
    """Weak duality with capacity, persons and share rows relaxed: each household takes its best priced offer.

    For any non-negative prices the value bounds the quality (with balanced-fill points) of every placement over
    all eligible pairs that places at least `placed` persons.
    """
    total = priced_capacity(data, prices.capacity) - prices.persons * placed
    for lo in range(0, len(data.households), CHUNK):
        hi = min(len(data.households), lo + CHUNK)
        if not data.offers:
            break
        value = np.where(data.eligible[lo:hi], pair_values(data, prices, lo, hi), -np.inf).max(axis=1)
        total += float((np.maximum(value, 0.0) * data.weight[lo:hi]).sum())
    if fair is not None:
        total += float((np.maximum(fair.share, 0.0) * np.maximum(fair.weight - prices.share, 0.0)).sum())
    return total


def _prices_from_lp(data: MatchingData, lp: HighsDirect, share_offers: np.ndarray) -> tuple[QualityPrices, np.ndarray]:
    """The LP's row duals as prices (HiGHS, maximising: a binding <= row has a non-negative dual, a binding >= row
    a non-positive one), and the duals of the households' assignment rows (for pricing)."""
    model = lp.model
    duals = lp.row_duals(extra=True)
    capacity = Prices.from_duals(data, model, duals[:model.n_rows])
    share = np.zeros(len(data.offers))
    share[share_offers] = np.maximum(duals[model.n_rows + 1:model.n_rows + 1 + len(share_offers)], 0.0)
    block, y = model.block_duals(duals, "household_at_most_once")
    assignment = np.zeros(len(data.households))
    assignment[[k[0] for k in block.keys]] = np.maximum(y, 0.0)
    return QualityPrices(capacity, max(0.0, -float(duals[model.n_rows])), share), assignment


def quality_bound(data: MatchingData, policy: Policy, placed: float, fair: FairShare | None,
                  chosen_h: np.ndarray, chosen_o: np.ndarray, deadline: float) -> PhaseResult:
    """The quality LP (persons at least `placed`) over a few pairs, priced over every eligible pair.

    The LP starts from the placement found (`chosen_h`, `chosen_o`, which keeps it feasible) and each household's
    best offers. Its duals are prices for `lagrangian_quality`, which holds for pairs the LP never saw; pairs that
    could raise it are added and the LP solved again, a fixed number of times. Every round's value is a valid
    bound; the lowest is kept. Leaves `data` as it was.
    """
    t0 = time.perf_counter()
    qdata = dataclasses.replace(data)
    top_h, top_o = top_candidates(qdata, QUALITY_BOUND_CANDIDATES)
    n_off = max(1, len(data.offers))
    codes = np.unique(np.concatenate([top_h * n_off + top_o, chosen_h * n_off + chosen_o]))
    qdata.set_pairs(codes // n_off, codes % n_off)
    best = lagrangian_quality(qdata, QualityPrices.zero(qdata), placed, fair)  # every household at its best
    termination, rounds = "work_limit", 0
    for rounds in range(1, QUALITY_PRICING_ROUNDS + 1):  # noqa: B007 (reported below)
        model = build_model(qdata)
        lp = HighsDirect(model, policy, integer=False)
        lp.h.setOptionValue("solver", "ipm")  # simplex stalls on these degenerate LPs (see `solve_lp`)
        lp.h.setOptionValue("ipm_iteration_limit", QUALITY_LP_ITERATIONS)
        lp.add_min_persons(placed)
        share_offers = np.zeros(0, dtype=np.int64)
        if fair is not None:
            lp.add_fair_share(fair, qdata.pair_o)
            assert lp.share is not None
            share_offers = lp.share.offers
        try:
            res = lp.solve("quality_bound", model.quality, deadline - time.perf_counter())
        except SolveError as exc:
            log.warning("quality bound: the LP gave no prices (%s); keeping the bound before it", exc)
            termination = "time_limit" if time.perf_counter() >= deadline else "work_limit"
            break
        if res.termination == "time_limit":
            termination = "time_limit"  # the safety net: prices from an LP the clock cut
        prices, assignment = _prices_from_lp(qdata, lp, share_offers)
        value = lagrangian_quality(qdata, prices, placed, fair)
        log.debug("quality bound round %d: LP %.3f, bound %.3f, %d columns", rounds, res.objective, value,
                  model.n_cols)
        best = min(best, value)
        if termination == "time_limit" or value - res.objective <= QUALITY_PRICING_TOLERANCE * max(1.0, abs(value)):
            if termination != "time_limit" and res.termination == "optimal":
                termination = "optimal"  # the LP over the candidate pairs is the LP over all of them
            break
        if model.n_cols >= QUALITY_MAX_COLUMNS:
            break
        added = _price_in(qdata, prices, assignment)
        if not added:
            break
    log.info("quality bound %.3f after %d LP rounds (%s)", best, rounds, termination)
    return PhaseResult("quality_bound", termination, float("nan"), best, time.perf_counter() - t0, np.zeros(0))


def _price_in(data: MatchingData, prices: QualityPrices, assignment: np.ndarray) -> int:
    """Add each household's most attractive eligible pairs the model lacks (positive reduced cost)."""
    n_hh, n_off = data.codes.shape
    in_model = np.zeros((n_hh, n_off), dtype=bool)
    in_model[data.pair_h, data.pair_o] = True
    new_h, new_o = [], []
    k = min(PRICED_PER_HOUSEHOLD, n_off)
    for lo in range(0, n_hh, CHUNK):
        hi = min(n_hh, lo + CHUNK)
        rc = pair_values(data, prices, lo, hi) - assignment[lo:hi, None]
        attractive = data.eligible[lo:hi] & ~in_model[lo:hi] & (rc > 1e-6)
        masked = np.where(attractive, rc, -np.inf)
        top = np.argsort(-masked, axis=1, kind="stable")[:, :k]
        rows = np.repeat(np.arange(hi - lo), k)
        cols = top.ravel()
        keep = attractive[rows, cols]
        new_h.append(rows[keep] + lo)
        new_o.append(cols[keep])
    h, o = np.concatenate(new_h), np.concatenate(new_o)
    if len(h):
        data.set_pairs(np.concatenate([data.pair_h, h]), np.concatenate([data.pair_o, o]))
    return len(h)
