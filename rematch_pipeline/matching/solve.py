"""Solve the model lexicographically with HiGHS: maximal persons placed first, then the best quality among those."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs

from rematch_pipeline.domain import Policy

log = logging.getLogger(__name__)

# Terminations whose incumbent we accept; anything else is reported in words and yields no assignments.
ACCEPTED_TERMINATIONS = {
    TerminationCondition.convergenceCriteriaSatisfied: "optimal",
    TerminationCondition.maxTimeLimit: "time_limit",
    TerminationCondition.iterationLimit: "iteration_limit",
}


class SolveError(RuntimeError):
    """The solver ended without a usable solution; the message says why in words."""


@dataclass
class PhaseResult:
    phase: str
    termination: str
    objective: float | None
    bound: float | None
    seconds: float


@dataclass
class SolveResult:
    status: str  # optimal, time_limit, iteration_limit
    persons_placed: int
    persons_bound: float
    quality: float
    quality_bound: float | None
    chosen_pairs: list[int]
    phases: list[PhaseResult] = field(default_factory=list)

    @property
    def gap_persons(self) -> float:
        return 0.0 if self.persons_bound <= 0 else max(0.0, (self.persons_bound - self.persons_placed)
                                                        / self.persons_bound)


def _run(solver: Highs, model: pyo.ConcreteModel, policy: Policy, phase: str, abs_gap: float | None,
         rel_gap: float | None, time_left: float) -> PhaseResult:
    t0 = time.perf_counter()
    res = solver.solve(
        model,
        time_limit=max(1.0, time_left),
        rel_gap=rel_gap,
        abs_gap=abs_gap,
        threads=policy.threads,
        load_solutions=False,
        raise_exception_on_nonoptimal_result=False,
        solver_options={
            # HiGHS stalls on assignment models while detecting symmetry; a fixed seed keeps rounds reproducible.
            "mip_detect_symmetry": False,
            "random_seed": policy.random_seed,
            "output_flag": False,
        },
    )
    seconds = time.perf_counter() - t0
    term = res.termination_condition
    if term not in ACCEPTED_TERMINATIONS or res.solution_status not in (
        SolutionStatus.optimal, SolutionStatus.feasible
    ):
        words = {
            TerminationCondition.provenInfeasible: "the model is infeasible",
            TerminationCondition.infeasibleOrUnbounded: "the model is infeasible or unbounded",
        }.get(term, f"the solver stopped with {term.name} and no usable solution")
        raise SolveError(f"{phase}: {words} after {seconds:.1f} s")
    res.solution_loader.load_vars()
    log.info("solve phase %s: %s objective=%s bound=%s in %.2f s", phase, term.name,
             res.incumbent_objective, res.objective_bound, seconds)
    return PhaseResult(phase, ACCEPTED_TERMINATIONS[term], res.incumbent_objective, res.objective_bound, seconds)


def solve_model(model: pyo.ConcreteModel, policy: Policy) -> SolveResult:
    deadline = time.perf_counter() + policy.time_limit_s
    solver = Highs()
    # Phase 1: persons placed is integral, so an absolute gap below 1 proves the maximum.
    p1 = _run(solver, model, policy, "max_persons", abs_gap=0.5, rel_gap=0.0,
              time_left=deadline - time.perf_counter())
    placed = round(pyo.value(model.persons_placed))
    model.keep_persons = pyo.Constraint(expr=model.persons_placed >= placed)
    model.max_persons.deactivate()
    model.max_quality.activate()
    p2 = _run(solver, model, policy, "max_quality", abs_gap=None, rel_gap=policy.mip_rel_gap,
              time_left=deadline - time.perf_counter())
    chosen = [p for p in model.P if pyo.value(model.x[p]) > 0.5]
    status = p1.termination if p1.termination != "optimal" else p2.termination
    return SolveResult(
        status=status,
        persons_placed=round(pyo.value(model.persons_placed)),
        persons_bound=float(p1.bound if p1.bound is not None else placed),
        quality=float(pyo.value(model.quality)),
        quality_bound=p2.bound,
        chosen_pairs=chosen,
        phases=[p1, p2],
    )
