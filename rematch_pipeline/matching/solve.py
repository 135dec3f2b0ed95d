"""Solve lexicographically with HiGHS: persons placed first (with a bound over ALL eligible pairs), then quality."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import numpy as np

from rematch_pipeline.domain import Policy
from rematch_pipeline.matching.backends import HighsDirect, PhaseResult, PyomoHighs, SolveError
from rematch_pipeline.matching.baselines import greedy_by_score
from rematch_pipeline.matching.bound import (
    CHUNK,
    INTEGRAL,
    Prices,
    household_values,
    improve_bound,
    lagrangian_bound,
    most_attractive,
    proves_maximal,
)
from rematch_pipeline.matching.budget import BUDGET
from rematch_pipeline.matching.build import LinearModel, build_model, lp_objective, perturbation
from rematch_pipeline.matching.data import MatchingData
from rematch_pipeline.matching.exchange import capacity_classes, exchange_within_classes
from rematch_pipeline.matching.fair_share import FairShare
from rematch_pipeline.matching.moves import improve_by_moves
from rematch_pipeline.matching.neighbourhoods import (
    balanced_fill_points,
    exchange,
    model_pairs,
    persons_search,
    quality_search,
    start_vector,
)
from rematch_pipeline.matching.quality_bound import round_quality_bound
from rematch_pipeline.matching.types import (
    TypeAllocation,
    dedupe,
    household_types,
    households_for,
    improve_by_neighbourhoods,
    round_lp,
    starting_pairs,
)

log = logging.getLogger(__name__)

PRICING_MIN_GAIN = 0.5  # persons the full pair set could add over the candidate LP before pricing is worth a round
TYPE_MIP_MAX_COLUMNS = 8_000  # type models up to this size go to branch and bound first (docs/solver-tuning.md)


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
    lp_model: LinearModel  # the model those duals belong to (over household types, unless no LP finished)
    phases: list[PhaseResult] = field(default_factory=list)
    # The greedy-by-score allocation every phase started from (household, offer); the round's baseline reuses it.
    greedy: tuple[np.ndarray, np.ndarray] = (np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    pricing_rounds: int = 0
    priced_pairs: int = 0
    build_s: float = 0.0
    # Balanced fill (when its weight is > 0): the shares, and the points `quality` includes for it.
    fair: FairShare | None = None
    balanced_fill_points: float = 0.0

    @property
    def gap_to_lp(self) -> float:
        b = self.lp_bound_persons
        if not np.isfinite(b):
            return float("nan")
        return 0.0 if b <= 0 else max(0.0, (b - self.persons_placed) / b)


def reduced_costs(data: MatchingData, model: LinearModel, duals: np.ndarray) -> np.ndarray:
    """(H, O) reduced cost of every pair for the (perturbed) persons LP: c_j - a_j·y, a_j built like the model's."""
    n_hh = data.codes.shape[0]
    block, y = model.block_duals(duals, "household_at_most_once")
    u = np.zeros(n_hh)
    u[[k[0] for k in block.keys]] = y
    prices = Prices.from_duals(data, model, duals)
    rc = np.empty(data.codes.shape)
    for lo in range(0, n_hh, CHUNK):
        hi = min(n_hh, lo + CHUNK)
        rc[lo:hi] = household_values(data, prices, lo, hi, eligible_only=False)
    rc += perturbation(model, data.score) - u[:, None]
    return rc


def solve_lp(model: LinearModel, policy: Policy, time_left: float,
             presolve: bool = True) -> tuple[PhaseResult, np.ndarray]:
    lp = HighsDirect(model, policy, integer=False)
    if model.n_cols > policy.solver.pyomo_max_pairs or model.col_upper is not None:
        # Interior point beats simplex on large degenerate assignment LPs, and by far on the LP over household
        # types (docs/solver-tuning.md).
        lp.h.setOptionValue("solver", "ipm")
    if not presolve:
        lp.h.setOptionValue("presolve", "off")
    # Work, not time: an LP that needs more iterations than these is given up alike on every machine.
    lp.h.setOptionValue("ipm_iteration_limit", BUDGET.lp_ipm_iterations)
    lp.h.setOptionValue("simplex_iteration_limit", BUDGET.lp_simplex_iterations)
    res = lp.solve("lp_persons", lp_objective(model), time_left)
    if res.termination != "optimal":
        # Only an optimal LP value is an upper bound, and only its duals prove anything when pricing.
        raise SolveError(f"lp_persons: stopped ({res.termination}) before optimality; no bound")
    return res, lp.row_duals()


@dataclass
class Bound:
    """The LP over the candidate pairs and the persons bound it proves for the full eligible pair set."""

    model: LinearModel
    lp: PhaseResult
    duals: np.ndarray
    persons: float  # Lagrangian bound from the LP's capacity prices, valid for every eligible pair
    rounds: int
    added: int
    pair_h: np.ndarray  # the candidate pairs of `model`
    pair_o: np.ndarray


def price_out(data: MatchingData, policy: Policy, deadline: float, presolve: bool = True) -> Bound:
    """LP over the candidate pairs; its capacity prices bound persons over ALL eligible pairs (`lagrangian_bound`).

    Pruned pairs with positive reduced cost are added and the LP re-solved while time allows: they can only
    tighten the bound and give the MIP better columns. The bound never depends on pricing having converged.
    """
    added, lp_seconds, best = 0, 0.0, None
    for rounds in range(1, BUDGET.pricing_rounds + 1):
        model = build_model(data)
        try:
            res, duals = solve_lp(model, policy, deadline - time.perf_counter(), presolve)
        except SolveError:
            if best is None:
                raise
            data.set_pairs(best.pair_h, best.pair_o)  # the last complete round stands
            # Cut by the clock, the number of rounds depended on the machine's speed; else by its iterations.
            best.lp.termination = "time_limit" if time.perf_counter() >= deadline else "work_limit"
            break
        lp_seconds += res.seconds
        res.seconds = lp_seconds  # the LP phase reports the time of every pricing round
        persons, _ = lagrangian_bound(data, Prices.from_duals(data, model, duals))
        log.debug("pricing round %d: LP %.3f, bound %.3f, %d columns", rounds, res.objective, persons, model.n_cols)
        if best is not None:
            persons = min(persons, best.persons)  # every round's bound is valid; keep the tightest
        best = Bound(model, res, duals, persons, rounds, added, data.pair_h, data.pair_o)
        if persons - float(model.persons @ res.x) < PRICING_MIN_GAIN:
            break  # the bound already covers every pair: priced columns could add less than half a person
        rc = reduced_costs(data, model, duals)
        attractive = data.eligible & ~model_pairs(data) & (rc > INTEGRAL)
        if not attractive.any():
            break
        if time.perf_counter() >= deadline:
            best.lp.termination = "time_limit"  # the safety net: fewer pricing rounds than on a faster machine
            break
        # Add each household's most attractive priced pairs and re-solve.
        rows, cols = most_attractive(rc, attractive)
        added += len(rows)
        data.set_pairs(np.concatenate([data.pair_h, rows]), np.concatenate([data.pair_o, cols]))
    assert best is not None
    return best


def deterministic_work() -> dict[str, int]:
    """The fixed work of a round's search: stopping by it (not by the clock) gives the same result everywhere."""
    return BUDGET.report()


def _add_pairs(data: MatchingData, h: np.ndarray, o: np.ndarray) -> None:
    data.set_pairs(*dedupe(np.concatenate([data.pair_h, h]), np.concatenate([data.pair_o, o]), len(data.offers)))


def persons_by_types(data: MatchingData, policy: Policy, greedy_h: np.ndarray, greedy_o: np.ndarray,
                     lp_deadline: float, deadline: float) -> tuple[Bound, PhaseResult, np.ndarray, np.ndarray]:
    """Maximal persons over household types (`types`), then who of each type goes where.

    The type LP with pricing bounds persons over every eligible pair; its rounding, improved a few municipalities
    at a time, places them (HiGHS's own branch and bound on the full type MIP stalls at its root at national
    scale). Returns the bound, the persons phase and the chosen household pairs.
    """
    types = household_types(data)
    tdata = types.data
    tdata.set_pairs(*dedupe(*starting_pairs(types, greedy_h, greedy_o), len(data.offers)))
    bound = price_out(tdata, policy, lp_deadline)
    tdata.set_pairs(bound.pair_h, bound.pair_o)  # the columns of the LP solution (pricing may have added more)
    t0 = time.perf_counter()
    alloc = round_lp(tdata, bound.lp.x)
    greedy = float(data.hh.persons[greedy_h].sum())
    if alloc.persons < greedy:  # the rounding is only a start: never begin below the greedy allocation
        alloc = TypeAllocation.of_counts(tdata, *types.counts(greedy_h, greedy_o))
    termination, rounds = "not_run", 0
    if bound.model.n_cols <= TYPE_MIP_MAX_COLUMNS:
        # Small enough for HiGHS's branch and bound to finish from the rounding (docs/solver-tuning.md).
        alloc, termination = _type_mip(tdata, bound.model, alloc, policy, deadline, termination)
    if termination == "optimal" and not proves_maximal(alloc.persons, bound.persons):
        alloc, termination = _types_over_every_pair(tdata, alloc, policy, deadline, bound)
    if termination == "time_limit":
        pass  # the round's deadline is spent: the safety net holds what was found
    elif termination != "optimal":
        values = reduced_costs(tdata, bound.model, bound.duals)
        termination, rounds = improve_by_neighbourhoods(alloc, bound.lp.x, values, policy, deadline, bound.persons,
                                                       BUDGET)
    log.info("persons over %d household types: %.0f persons, %s, %d neighbourhoods", types.n_types, alloc.persons,
             termination, rounds)
    t, o = np.nonzero(alloc.counts > 0.5)
    h, o = households_for(types, data, t, o, alloc.counts[t, o])
    phase = PhaseResult("max_persons_types", termination, alloc.persons, bound.persons, time.perf_counter() - t0,
                        np.zeros(0))
    return bound, phase, h, o


def round_status(deciding: list[PhaseResult]) -> str:
    """time_limit: the clock (the safety net) cut a phase, so another machine may find another result; work_limit: a
    phase stopped after its fixed work, the same everywhere."""
    terminations = {p.termination for p in deciding}
    return ("time_limit" if "time_limit" in terminations else "optimal" if terminations <= {"optimal"}
            else "work_limit" if terminations <= {"optimal", "work_limit", "heuristic", "solution_limit"}
            else next(p.termination for p in deciding if p.termination != "optimal"))


def _persons_result(model: LinearModel, begin: PersonsStart, phases: list[PhaseResult], x1: np.ndarray, placed: int,
                    proven: bool, exact: bool, greedy: tuple[np.ndarray, np.ndarray], interface: str) -> SolveResult:
    """The persons phase's placement as a result: no quality phase, so no quality bound either. `exact`: a small
    round's persons MIP was solved to optimality, so how its start over types ended does not decide the status."""
    chosen = np.nonzero(x1 > 0.5)[0]
    deciding = [p for p in phases if not (exact and p.phase == "max_persons_types")]
    status = round_status(deciding)
    bound = begin.bound
    return SolveResult(
        status=status, interface=interface, persons_placed=placed,
        lp_bound_persons=begin.lp_bound, persons_proven_maximal=proven, quality=float(model.quality @ x1),
        quality_bound=float("nan"), chosen=chosen, model=model, duals=np.zeros(0) if bound is None else bound.duals,
        lp_model=model if bound is None else bound.model, phases=phases, greedy=greedy,
        pricing_rounds=0 if bound is None else bound.rounds, priced_pairs=0 if bound is None else bound.added,
        build_s=0.0, fair=None, balanced_fill_points=0.0)


def _types_over_every_pair(tdata: MatchingData, alloc: TypeAllocation, policy: Policy, deadline: float,
                           bound: Bound) -> tuple[TypeAllocation, str]:
    """The type MIP was optimal over the LP's columns only, short of the bound: once more over every eligible
    (type, offer) pair when they are few enough, so that "optimal" means the most persons. A red team found a round
    whose LP columns (they follow the quality tie-break) held 123 persons where 124 fit."""
    t, o = np.nonzero(tdata.eligible)
    if len(t) <= bound.model.n_cols:
        return alloc, "optimal"  # every pair was a column already: the MIP's optimum is the most persons
    if len(t) > TYPE_MIP_MAX_COLUMNS:
        # Too many for branch and bound, and "optimal" over the LP's columns proves nothing: the neighbourhoods,
        # which also take priced pairs beyond them, go on (a red team's 200 x 400 round placed 5 persons more so).
        return alloc, "work_limit"
    tdata.set_pairs(t, o)
    try:
        return _type_mip(tdata, build_model(tdata), alloc, policy, deadline, "optimal")
    finally:
        tdata.set_pairs(bound.pair_h, bound.pair_o)  # the LP's columns, which the neighbourhoods follow


def _type_mip(tdata: MatchingData, model: LinearModel, alloc: TypeAllocation, policy: Policy, deadline: float,
              failed: str) -> tuple[TypeAllocation, str]:
    """HiGHS's branch and bound on the persons model over types (its columns: `tdata`'s pairs) from `alloc`; the
    better allocation and how the MIP ended (`failed` when it gave no solution)."""
    mip = HighsDirect(model, policy, integer=True)
    mip.h.setOptionValue("mip_lp_solver", "ipm")  # its simplex stalls on the type LP (see solve_lp)
    try:
        res = mip.solve("max_persons_types", model.persons, deadline - time.perf_counter(), abs_gap=0.5,
                        start=alloc.counts[tdata.pair_h, tdata.pair_o], max_nodes=BUDGET.type_mip_nodes)
    except SolveError as exc:
        log.warning("the persons MIP over household types gave no solution (%s)", exc)
        return alloc, failed
    x = np.round(res.x)
    if model.persons @ x > alloc.persons + 0.5:
        alloc = TypeAllocation.of_counts(tdata, tdata.pair_h, tdata.pair_o, x)
    return alloc, res.termination


@dataclass
class PersonsStart:
    """Where the household model starts: the allocation over types (exchanged) and its bound, or greedy and a
    Lagrangian bound when no type LP finished in time."""

    h: np.ndarray
    o: np.ndarray
    lp_bound: float
    phases: list[PhaseResult]
    over_types: bool  # persons maximised over household types (the type LP solved in time)
    bound: Bound | None = None


def _start_over_types(data: MatchingData, policy: Policy, greedy: tuple[np.ndarray, np.ndarray],
                      classes: np.ndarray, deadline: float) -> PersonsStart:
    """Every round: persons over household types, bounded by the type LP over every eligible pair, then exchanged
    within capacity classes. Small rounds take it as the start of the exact solve, which it shortens
    (docs/solver-tuning.md).
    """
    eligible_persons = float(data.hh.persons[data.eligible.any(axis=1)].sum()) if data.offers else 0.0
    lp_deadline = deadline - policy.solver.time_limit_s * (1 - BUDGET.lp_share)
    types_deadline = deadline - BUDGET.quality_reserve * policy.solver.time_limit_s
    try:
        bound, types_phase, h, o = persons_by_types(data, policy, *greedy, lp_deadline=lp_deadline,
                                                    deadline=types_deadline)
    except SolveError as exc:
        # No LP in time: bound persons by subgradient steps on the capacity prices instead (weaker, still valid).
        # Cut by the clock (the safety net) or given up after its iterations (the same on every machine).
        cut = time.perf_counter() >= lp_deadline
        log.warning("persons LP gave no result (%s); bounding by Lagrangian relaxation", exc)
        t1 = time.perf_counter()
        target = float(data.hh.persons[greedy[0]].sum())
        persons, _, steps_cut = improve_bound(data, Prices.zero(data), target,
                                              t1 + BUDGET.subgradient_share * policy.solver.time_limit_s,
                                              BUDGET.subgradient_steps)
        cut = cut or steps_cut
        lp_bound = min(persons, eligible_persons)
        return PersonsStart(*greedy, lp_bound, [PhaseResult("lagrangian_bound", "time_limit" if cut else "work_limit",
                                                            float("nan"), lp_bound, time.perf_counter() - t1,
                                                            np.zeros(0))], False)
    # Before the model is built, so any eligible pair may take a place.
    h, o = exchange_within_classes(data, classes, h, o)
    return PersonsStart(h, o, min(bound.persons, eligible_persons), [bound.lp, types_phase], True, bound)


def _max_persons(data: MatchingData, model: LinearModel, policy: Policy, found: PhaseResult, small: bool,
                 lp_bound: float, deadline: float) -> tuple[PhaseResult, list[PhaseResult], PyomoHighs | None]:
    """Phase 1: maximal persons, from `found` (the start). Small models: the exact MIP through Pyomo (it stops at
    once when the start reaches the bound). Large ones keep an allocation over types; without the type LP,
    neighbourhoods improve the greedy start. Returns the result, the phases it ran, and the Pyomo model to go on."""
    if small:
        backend = PyomoHighs(model, policy)
        try:
            p1 = backend.solve("max_persons", model.persons, deadline - time.perf_counter(), abs_gap=0.5,
                               start=found.x, max_nodes=BUDGET.exact_mip_nodes)
        except SolveError as exc:
            log.warning("persons MIP gave no solution (%s); keeping the allocation found before it", exc)
            return found, [], backend
        # A timed-out solve never places fewer than its start.
        return (p1 if p1.objective >= found.objective else found), [p1], backend
    if found.phase == "max_persons_types":
        return found, [], None
    persons_deadline = time.perf_counter() + (deadline - time.perf_counter()) * BUDGET.persons_share
    if time.perf_counter() >= persons_deadline:
        return found, [], None
    # No LP solution to guide a neighbourhood: small neighbourhoods around the greedy incumbent (a full MIP of this
    # size does not improve on greedy in its time).
    lns = persons_search(data, model, policy, found, persons_deadline, lp_bound, BUDGET)
    return (lns if lns.objective > found.objective else found), [lns], None


def _max_quality(data: MatchingData, model: LinearModel, policy: Policy, incumbent: PhaseResult, placed: int,
                 backend: PyomoHighs | None, classes: np.ndarray, fair: FairShare | None, deadline: float,
                 guide: np.ndarray) -> PhaseResult:
    """Phase 2: the best quality (plus balanced-fill points when weighted) among placements of `placed` persons,
    from the persons-maximal `incumbent` with each capacity class's places given to its best households. `guide`:
    the quality LP's solution over the model's columns (empty when there is none)."""
    if backend is None:
        # Neighbourhoods improve quality with persons kept; at this size HiGHS's branch and bound on the whole quality
        # model found nothing better than its start in the same time (docs/solver-tuning.md).
        return quality_search(data, model, policy, incumbent, deadline, classes, fair, BUDGET, guide)
    backend.add_min_persons(placed)
    if fair is not None:
        backend.add_fair_share(fair, data.pair_o)
    try:
        return backend.solve("max_quality", model.quality, deadline - time.perf_counter(),
                             rel_gap=policy.solver.mip_rel_gap, start=incumbent.x, max_nodes=BUDGET.exact_mip_nodes)
    except SolveError as exc:
        log.warning("quality phase gave no solution (%s); keeping the persons-maximal incumbent", exc)
        return incumbent


def _by_moves(data: MatchingData, model: LinearModel, x: np.ndarray,
              deadline: float) -> tuple[LinearModel, PhaseResult]:
    """Placement `x` after `improve_by_moves`, over a model with the pairs it moved to among its columns (the same
    model when it had them all)."""
    t0 = time.perf_counter()
    chosen = x > 0.5
    h, o, ended = improve_by_moves(data, data.pair_h[chosen], data.pair_o[chosen], BUDGET.move_sweeps, deadline)
    before = data.n_pairs
    _add_pairs(data, h, o)
    if data.n_pairs != before:
        model = build_model(data)
    moved = start_vector(data, h, o)
    return model, PhaseResult("quality_moves", ended, float(model.quality @ moved), float("inf"),
                              time.perf_counter() - t0, moved)


def _quality_incumbent(data: MatchingData, model: LinearModel, fair: FairShare | None, x: np.ndarray) -> PhaseResult:
    """The quality phase's start: the persons-maximal placement `x` with its quality and balanced-fill points."""
    quality = float(model.quality @ x) + balanced_fill_points(data, model, fair, x)
    return PhaseResult("max_quality", "time_limit", quality, float("inf"), 0.0, x)


def solve_model(data: MatchingData, policy: Policy, started: float | None = None,
                persons_only: bool = False) -> SolveResult:
    """`started`: when the round began (perf_counter); the time limit covers the whole round from there, with a share
    of it (`WorkBudget.wrap_up_share`) left for extracting assignments and computing the baselines after the solve.
    `persons_only`: stop after the persons phase (a yardstick that counts persons, like the hindsight optimum; no
    round is solved so)."""
    began = time.perf_counter() if started is None else started
    deadline = began + policy.solver.time_limit_s * (1 - BUDGET.wrap_up_share)
    t0 = time.perf_counter()
    # A greedy allocation is always at hand: it seeds the MIPs and is what remains if time runs out.
    greedy_h, greedy_o = greedy_by_score(data)
    _add_pairs(data, greedy_h, greedy_o)
    small = data.n_pairs <= policy.solver.pyomo_max_pairs
    pruned = data.n_pairs < data.n_eligible
    classes = capacity_classes(data)  # for the exchange (`exchange`)
    begin = _start_over_types(data, policy, (greedy_h, greedy_o), classes, deadline)
    _add_pairs(data, begin.h, begin.o)
    phases = list(begin.phases)
    model = build_model(data)
    build_s = time.perf_counter() - t0 - sum(p.seconds for p in phases)  # everything but the solver so far
    start = start_vector(data, begin.h, begin.o)
    found = PhaseResult("max_persons_types" if begin.over_types else "greedy_start",
                        phases[-1].termination if begin.over_types else "heuristic", float(model.persons @ start),
                        float("inf"), 0.0, start)
    p1, ran, backend = _max_persons(data, model, policy, found, small, begin.lp_bound, deadline)
    phases += ran
    # Only an optimal solve of the full persons model (what `ran` holds) proves the maximum by itself.
    full_optimal = any(p.termination == "optimal" for p in ran)
    if p1 is found and not begin.over_types:
        phases.append(found)  # the round's status then says the persons phase fell back to the heuristic
    placed = int(round(p1.objective))
    lp_bound = begin.lp_bound
    proven = proves_maximal(placed, lp_bound)
    proven = proven or (not pruned and full_optimal)
    # The allocation over types had its exchange before the model was built.
    x1 = np.round(p1.x) if p1 is found and begin.over_types else exchange(data, np.round(p1.x), classes)
    fair = FairShare.of(data, placed, policy.balanced_fill_weight) if policy.balanced_fill_weight > 0 else None
    early = None
    if persons_only:
        return _persons_result(model, begin, phases, x1, placed, proven, small and full_optimal,
                               (greedy_h, greedy_o), "pyomo" if small else "highspy")
    incumbent = _quality_incumbent(data, model, fair, x1)
    guide = np.zeros(0)  # the quality LP's solution over the model's columns, where there is one
    if backend is None:
        # The quality bound before the neighbourhoods (over the incumbent's pairs and the best offers, which keep its
        # LP feasible): its LP's solution guides them.
        early = round_quality_bound(data, policy, placed, proven, lp_bound, fair, np.nonzero(x1 > 0.5)[0], incumbent,
                                    deadline, BUDGET)
        guide = early.support.on_pairs(data)  # none without an LP (its columns over the budget)
    p2 = _max_quality(data, model, policy, incumbent, placed, backend, classes, fair, deadline, guide)
    phases.append(p2)
    if backend is None and fair is None:
        # Then moves over every eligible pair: at national scale a household's better municipality is rarely in its
        # neighbourhood or among the model's columns. Before the neighbourhoods they gained less and slowed them.
        model, moves = _by_moves(data, model, p2.x, deadline)
        phases.append(moves)
        p2 = replace(p2, objective=moves.objective, x=moves.x)  # over the model's columns now
        # Households left out may have joined where the moves freed room.
        placed = int(round(float(model.persons @ p2.x)))
        proven = proven or proves_maximal(placed, lp_bound)
    chosen = np.nonzero(p2.x > 0.5)[0]
    # In small rounds the allocation over types is only the start of the exact persons MIP: once that is optimal,
    # how the search over types ended does not decide the round's status.
    deciding = [p for p in phases if not (small and full_optimal and p.phase == "max_persons_types")]
    status = round_status(deciding)
    if early is None:
        proof = round_quality_bound(data, policy, placed, proven, lp_bound, fair, chosen, p2, deadline, BUDGET)
        qb, best_bound = proof.phase, proof.bound
    else:
        qb, best_bound = early.phase, max(early.bound, p2.objective)  # within the solvers' tolerances, as there
    phases.append(qb)
    if qb.termination == "time_limit":
        status = "time_limit"  # the bound in round.json then depends on the machine's speed
    interface = "pyomo" if small else "highspy"
    log.info("solved: %d persons (LP bound %.3f, %s), quality %.3f via %s", placed, lp_bound,
             "proven maximal" if proven else "not proven maximal", p2.objective, interface)
    bound = begin.bound
    return SolveResult(
        status=status, interface=interface, persons_placed=int(round(float(model.persons[chosen].sum()))),
        lp_bound_persons=lp_bound, persons_proven_maximal=proven, quality=p2.objective,
        quality_bound=best_bound if np.isfinite(best_bound) else float("nan"), chosen=chosen, model=model,
        duals=np.zeros(0) if bound is None else bound.duals, lp_model=model if bound is None else bound.model,
        phases=phases, greedy=(greedy_h, greedy_o), pricing_rounds=0 if bound is None else bound.rounds,
        priced_pairs=0 if bound is None else bound.added, build_s=build_s, fair=fair,
        balanced_fill_points=balanced_fill_points(data, model, fair, p2.x),
    )
