"""Solve lexicographically with HiGHS: persons placed first (with a bound over ALL eligible pairs), then quality."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from rematch_pipeline.domain import Policy
from rematch_pipeline.matching.backends import HighsDirect, PhaseResult, PyomoHighs, SolveError
from rematch_pipeline.matching.baselines import greedy_by_score
from rematch_pipeline.matching.build import LinearModel, build_model
from rematch_pipeline.matching.data import MatchingData

log = logging.getLogger(__name__)

INTEGRAL = 1e-6
# The persons LP is massively degenerate (integer costs, many identical households) and simplex stalls on it.
# A tiny non-negative perturbation by match quality breaks the ties. It adds at most PERTURBATION_TOTAL to any
# solution's value, so the perturbed LP value stays a valid upper bound on persons, less than one person loose.
PERTURBATION_TOTAL = 0.5
MAX_PRICING_ROUNDS = 20
LP_SHARE = 0.5  # share of the time limit the LP bound (with pricing) may take
PRICED_PER_HOUSEHOLD = 5  # columns added per household and pricing round (the most attractive first)


@dataclass
class SolveResult:
    status: str  # optimal, time_limit, ...
    interface: str  # pyomo or highspy
    persons_placed: int
    lp_bound_persons: float  # LP relaxation bound over the full eligible pair set (priced)
    persons_proven_maximal: bool
    quality: float
    quality_bound: float
    chosen: np.ndarray  # indexes into data.pair_h / data.pair_o
    model: LinearModel
    duals: np.ndarray  # row duals of the persons LP (for the planning report)
    phases: list[PhaseResult] = field(default_factory=list)
    pricing_rounds: int = 0
    priced_pairs: int = 0
    build_s: float = 0.0

    @property
    def gap_to_lp(self) -> float:
        b = self.lp_bound_persons
        if not np.isfinite(b):
            return float("nan")
        return 0.0 if b <= 0 else max(0.0, (b - self.persons_placed) / b)


def reduced_costs(data: MatchingData, model: LinearModel, duals: np.ndarray) -> np.ndarray:
    """(H, O) reduced cost of every pair for the (perturbed) persons LP: c_j - a_j·y, a_j built like the model's."""
    n_hh, n_off = data.codes.shape
    rc = data.hh.persons[:, None].astype(np.float64) + perturbation_scale(model) * data.score
    block, y = model.block_duals(duals, "household_at_most_once")
    u = np.zeros(n_hh)
    u[[k[0] for k in block.keys]] = y
    rc -= u[:, None]
    block, y = model.block_duals(duals, "capacity_per_dimension")
    pi = np.zeros((n_off, data.hh.demand.shape[1]))
    for (o, d), val in zip(block.keys, y, strict=True):
        pi[o, d] = val
    rc -= data.hh.demand.astype(np.float64) @ pi.T
    block, y = model.block_duals(duals, "units_by_room_class")
    rho = np.zeros((n_off, 4))
    for (o, k), val in zip(block.keys, y, strict=True):
        rho[o, k - 1] = val
    cum = np.cumsum(rho, axis=1)  # a household needing r rooms sits in the rows of classes 1..r
    rc -= cum[:, data.hh.rooms - 1].T
    return rc


def perturbation_scale(model: LinearModel) -> float:
    households = max(1, model.blocks[0].n_rows)  # at most one pair per household is chosen
    return PERTURBATION_TOTAL / (households * max(1.0, float(model.quality.max(initial=0.0))))


def lp_objective(model: LinearModel) -> np.ndarray:
    return model.persons + perturbation_scale(model) * model.quality


def solve_lp(model: LinearModel, policy: Policy, time_left: float) -> tuple[PhaseResult, np.ndarray]:
    lp = HighsDirect(model, policy, integer=False)
    if model.n_cols > policy.pyomo_max_pairs:
        lp.h.setOptionValue("solver", "ipm")  # interior point beats simplex on large degenerate assignment LPs
    res = lp.solve("lp_persons", lp_objective(model), time_left)
    if res.termination != "optimal":
        # Only an optimal LP value is an upper bound, and only its duals prove anything when pricing.
        raise SolveError(f"lp_persons: stopped ({res.termination}) before optimality; no bound")
    return res, lp.row_duals()


def price_out(data: MatchingData, policy: Policy, deadline: float) -> tuple[LinearModel, PhaseResult, np.ndarray, int,
                                                                          int]:
    """LP over the candidate pairs, adding pruned pairs with positive reduced cost until none is left.

    When no eligible pair prices out, the candidate LP is optimal for the full pair set: its value is a valid
    upper bound on the persons any assignment could place.
    """
    added, lp_seconds = 0, 0.0
    for rounds in range(1, MAX_PRICING_ROUNDS + 1):
        model = build_model(data)
        res, duals = solve_lp(model, policy, deadline - time.perf_counter())
        lp_seconds += res.seconds
        res.seconds = lp_seconds  # the LP phase reports the time of every pricing round
        rc = reduced_costs(data, model, duals)
        candidate = np.zeros(data.codes.shape, dtype=bool)
        candidate[data.pair_h, data.pair_o] = True
        attractive = data.eligible & ~candidate & (rc > INTEGRAL)
        if not attractive.any():
            return model, res, duals, rounds, added
        # Add each household's most attractive priced pairs and re-solve.
        masked = np.where(attractive, rc, -np.inf)
        k = min(PRICED_PER_HOUSEHOLD, masked.shape[1])
        top = np.argpartition(-masked, k - 1, axis=1)[:, :k]
        rows = np.repeat(np.arange(masked.shape[0]), k)
        cols = top.ravel()
        keep = attractive[rows, cols]
        added += int(keep.sum())
        data.set_pairs(np.concatenate([data.pair_h, rows[keep]]), np.concatenate([data.pair_o, cols[keep]]))
    raise SolveError(f"pricing did not converge in {MAX_PRICING_ROUNDS} rounds")


def _fixed_bounds(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fix the columns the LP already decided (0 or 1); leave the fractional ones free."""
    lower = np.where(x >= 1 - INTEGRAL, 1.0, 0.0)
    upper = np.where(x <= INTEGRAL, 0.0, 1.0)
    return lower, upper


def _add_pairs(data: MatchingData, h: np.ndarray, o: np.ndarray) -> None:
    n_off = max(1, len(data.offers))
    codes = np.unique(np.concatenate([data.pair_h * n_off + data.pair_o, h * n_off + o]))
    data.set_pairs(codes // n_off, codes % n_off)


def _start_vector(data: MatchingData, h: np.ndarray, o: np.ndarray) -> np.ndarray:
    """The greedy allocation as a 0/1 vector over the model's columns (a feasible incumbent from the start)."""
    n_off = max(1, len(data.offers))
    x = np.isin(data.pair_h * n_off + data.pair_o, h * n_off + o)
    return x.astype(np.float64)


def solve_model(data: MatchingData, policy: Policy) -> SolveResult:
    deadline = time.perf_counter() + policy.time_limit_s
    t0 = time.perf_counter()
    lp_attempt = 0.0
    # A greedy allocation is always at hand: it seeds the MIPs and is what remains if time runs out.
    greedy_h, greedy_o = greedy_by_score(data)
    _add_pairs(data, greedy_h, greedy_o)
    pruned = data.n_pairs < data.n_eligible
    lp_budget = deadline - policy.time_limit_s * (1 - LP_SHARE)
    lp: PhaseResult | None
    try:
        if pruned:
            model, lp, duals, rounds, added = price_out(data, policy, lp_budget)
        else:
            model = build_model(data)
            lp, duals = solve_lp(model, policy, lp_budget - time.perf_counter())
            rounds, added = 0, 0
    except SolveError as exc:
        # No LP bound in time: keep going from the greedy incumbent; the round reports that no bound was proven.
        log.warning("persons LP gave no result in time (%s); continuing without a bound", exc)
        lp_attempt = time.perf_counter() - t0
        model, lp, duals, rounds, added = build_model(data), None, np.zeros(0), 0, 0
    eligible_persons = float(data.hh.persons[data.eligible.any(axis=1)].sum()) if data.offers else 0.0
    lp_bound = min(lp.objective, eligible_persons) if lp is not None else float("nan")
    if lp is not None:
        build_s, phases = time.perf_counter() - t0 - lp.seconds, [lp]
    else:
        build_s = time.perf_counter() - t0 - lp_attempt
        phases = [PhaseResult("lp_persons", "no_bound", float("nan"), float("inf"), lp_attempt, np.zeros(0))]
    start = _start_vector(data, greedy_h, greedy_o)
    small = model.n_cols <= policy.pyomo_max_pairs
    interface = "pyomo" if small else "highspy"
    # Phase 1: maximal persons. Small models: the exact MIP through Pyomo. Large ones: fix what the LP decided,
    # solve the remainder, and run the full MIP from that incumbent only if it is not provably best.
    greedy = PhaseResult("greedy_start", "heuristic", float(model.persons @ start), float("inf"), 0.0, start)
    full_optimal = False  # only an optimal solve of the full persons model proves the maximum by itself
    if small:
        backend: HighsDirect | PyomoHighs = PyomoHighs(model, policy)
        try:
            p1 = backend.solve("max_persons", model.persons, deadline - time.perf_counter(), abs_gap=0.5)
            phases.append(p1)
            full_optimal = p1.termination == "optimal"
        except SolveError as exc:
            log.warning("persons MIP gave no solution (%s); keeping the greedy incumbent", exc)
            p1 = greedy
        if p1.objective < greedy.objective:  # a timed-out solve never places fewer than greedy
            p1 = greedy
    else:
        backend = HighsDirect(model, policy, integer=True)
        p1 = greedy
        if lp is not None:
            fixed = HighsDirect(model, policy, integer=True, fixed=_fixed_bounds(lp.x))
            try:
                remainder = fixed.solve("max_persons_fixed", model.persons, (deadline - time.perf_counter()) / 4,
                                        abs_gap=0.5)
                phases.append(remainder)
                p1 = remainder if remainder.objective > p1.objective else p1
            except SolveError as exc:
                log.warning("fixed remainder gave no solution (%s)", exc)
        if not np.isfinite(lp_bound) or round(p1.objective) < np.floor(lp_bound + INTEGRAL):
            try:
                full = backend.solve("max_persons", model.persons, (deadline - time.perf_counter()) / 2,
                                     abs_gap=0.5, start=p1.x)
                phases.append(full)
                full_optimal = full.termination == "optimal"
                p1 = full if full.objective >= p1.objective else p1
            except SolveError as exc:
                log.warning("full persons MIP gave no solution (%s); keeping the incumbent", exc)
    if p1 is greedy:
        phases.append(greedy)  # the round's status then says the persons phase fell back to the heuristic
    placed = int(round(p1.objective))
    proven = bool(placed >= np.floor(lp_bound + INTEGRAL)) if np.isfinite(lp_bound) else False
    proven = proven or (not pruned and full_optimal)
    # Phase 2: the best quality among placements of that size.
    backend.add_min_persons(placed)
    try:
        p2 = backend.solve("max_quality", model.quality, deadline - time.perf_counter(),
                           rel_gap=policy.mip_rel_gap, start=np.round(p1.x))
    except SolveError as exc:
        log.warning("quality phase gave no solution (%s); keeping the persons-maximal incumbent", exc)
        p2 = PhaseResult("max_quality", "time_limit", float(model.quality @ np.round(p1.x)), float("inf"), 0.0,
                         np.round(p1.x))
    phases.append(p2)
    chosen = np.nonzero(p2.x > 0.5)[0]
    status = "optimal" if all(p.termination == "optimal" for p in phases) else next(
        p.termination for p in phases if p.termination != "optimal")
    log.info("solved: %d persons (LP bound %.3f, %s), quality %.3f via %s", placed, lp_bound,
             "proven maximal" if proven else "not proven maximal", p2.objective, interface)
    return SolveResult(
        status=status, interface=interface, persons_placed=int(round(float(model.persons[chosen].sum()))),
        lp_bound_persons=lp_bound, persons_proven_maximal=proven, quality=p2.objective,
        quality_bound=p2.bound if np.isfinite(p2.bound) else float("nan"), chosen=chosen, model=model,
        duals=duals, phases=phases, pricing_rounds=rounds, priced_pairs=added, build_s=build_s,
    )
