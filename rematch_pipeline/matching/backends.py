"""Solver adapters for one linear model: HiGHS through Pyomo (the reference formulation) or directly via highspy."""

from __future__ import annotations

import time
from dataclasses import dataclass

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.contrib.solver.common.results import SolutionStatus, TerminationCondition
from pyomo.contrib.solver.solvers.highs import Highs as PyomoHighsSolver

from rematch_pipeline.domain import Policy
from rematch_pipeline.matching.build import LinearModel
from rematch_pipeline.matching.fair_share import FairShare, ShareColumns

# Terminations whose incumbent we accept; anything else is reported in words and yields no assignments.
PYOMO_ACCEPTED = {
    TerminationCondition.convergenceCriteriaSatisfied: "optimal",
    TerminationCondition.maxTimeLimit: "time_limit",
    # HiGHS's node limit (our work limit) reaches Pyomo as an iteration limit.
    TerminationCondition.iterationLimit: "work_limit",
}
HIGHS_ACCEPTED = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
    highspy.HighsModelStatus.kIterationLimit: "iteration_limit",
    highspy.HighsModelStatus.kSolutionLimit: "solution_limit",
    highspy.HighsModelStatus.kInterrupt: "interrupted",
}
HIGHS_WORDS = {
    highspy.HighsModelStatus.kInfeasible: "the model is infeasible",
    highspy.HighsModelStatus.kUnboundedOrInfeasible: "the model is infeasible or unbounded",
    highspy.HighsModelStatus.kUnbounded: "the model is unbounded",
}


class SolveError(RuntimeError):
    """The solver ended without a usable solution; the message says why in words."""


@dataclass
class PhaseResult:
    phase: str
    termination: str
    objective: float
    bound: float
    seconds: float
    x: np.ndarray

    def summary(self) -> dict[str, object]:
        objective = round(self.objective, 6) if np.isfinite(self.objective) else None
        return {"phase": self.phase, "termination": self.termination, "objective": objective,
                "bound": round(self.bound, 6) if np.isfinite(self.bound) else None, "seconds": round(self.seconds, 3)}


def highs_options(policy: Policy) -> dict[str, bool | int | float | str]:
    # HiGHS's heuristics stay at their defaults: without RENS some quality MIPs got faster and others far slower
    # (docs/solver-tuning.md).
    return {
        # HiGHS stalls on assignment models while detecting symmetry; a fixed seed keeps rounds reproducible.
        "mip_detect_symmetry": False,
        "random_seed": policy.solver.random_seed,
        "threads": policy.solver.threads,
        "output_flag": False,
    }


class HighsDirect:
    """The model passed to HiGHS as arrays: fast to build at national scale, and gives LP duals for pricing."""

    def __init__(self, model: LinearModel, policy: Policy, integer: bool = True,
                 fixed: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        self.model, self.policy = model, policy
        self.h = highspy.Highs()
        for k, v in highs_options(policy).items():
            self.h.setOptionValue(k, v)
        lp = highspy.HighsLp()
        n = model.n_cols
        lp.num_col_, lp.num_row_ = n, model.n_rows
        lp.col_cost_ = np.zeros(n)
        lower, upper = np.zeros(n), model.most
        if fixed is not None:
            lower, upper = fixed
        lp.col_lower_, lp.col_upper_ = lower, upper
        lp.row_lower_ = np.full(model.n_rows, -highspy.kHighsInf)
        lp.row_upper_ = model.upper.astype(np.float64)
        csr = model.matrix
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_ = csr.indptr.astype(np.int32)
        lp.a_matrix_.index_ = csr.indices.astype(np.int32)
        lp.a_matrix_.value_ = csr.data.astype(np.float64)
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n, model.n_rows
        lp.sense_ = highspy.ObjSense.kMaximize
        if integer:
            lp.integrality_ = [highspy.HighsVarType.kInteger] * n
        self.h.passModel(lp)
        self.integer = integer
        self.share: ShareColumns | None = None

    def add_min_persons(self, persons: float) -> None:
        idx = np.arange(self.model.n_cols, dtype=np.int32)
        self.h.addRow(float(persons), highspy.kHighsInf, len(idx), idx, self.model.persons)

    def keep_placed(self, rows: np.ndarray) -> None:
        """The households of these assignment rows stay placed (each at one of its columns)."""
        for row in np.unique(rows):
            self.h.changeRowBounds(int(row), 1.0, float(self.model.upper[row]))

    def add_fair_share(self, fair: FairShare, pair_o: np.ndarray, fixed: np.ndarray | None = None) -> None:
        """The balanced-fill term: a continuous column per offer with room in its share, `fair.weight` a person.

        `pair_o`: the offer of each model column; `fixed`: persons per offer placed outside the model (a
        neighbourhood's fixed part), which take their part of the shares first.
        """
        share = fair.columns(pair_o, self.model.persons, fixed)
        k = len(share.offers)
        self.h.addCols(k, np.full(k, fair.weight), np.zeros(k), share.room, 0, np.zeros(0, dtype=np.int32),
                       np.zeros(0, dtype=np.int32), np.zeros(0))
        rows = share.rows
        self.h.addRows(k, np.full(k, -highspy.kHighsInf), np.zeros(k), rows.nnz, rows.indptr[:-1].astype(np.int32),
                       rows.indices.astype(np.int32), rows.data.astype(np.float64))
        self.share = share

    def solve(self, phase: str, objective: np.ndarray, time_limit: float, rel_gap: float = 0.0,
              abs_gap: float = 1e-6, start: np.ndarray | None = None, max_nodes: int | None = None) -> PhaseResult:
        """`max_nodes` bounds branch and bound by work, the same on every machine; `time_limit` is only the safety
        net of the round's deadline."""
        self.h.changeColsCost(len(objective), np.arange(len(objective), dtype=np.int32), objective.astype(np.float64))
        self.h.setOptionValue("time_limit", max(1.0, float(time_limit)))
        if self.integer:
            self.h.setOptionValue("mip_rel_gap", float(rel_gap))
            self.h.setOptionValue("mip_abs_gap", float(abs_gap))
            if max_nodes is not None:
                self.h.setOptionValue("mip_max_nodes", int(max_nodes))
        if start is not None:
            if self.share is not None:
                start = np.concatenate([start, self.share.start(start)])
            sol = highspy.HighsSolution()
            sol.col_value = list(start.astype(np.float64))
            sol.value_valid = True
            self.h.setSolution(sol)
        t0 = time.perf_counter()
        self.h.run()
        seconds = time.perf_counter() - t0
        status = self.h.getModelStatus()
        info = self.h.getInfo()
        has_solution = info.primal_solution_status == highspy.SolutionStatus.kSolutionStatusFeasible
        if status not in HIGHS_ACCEPTED or not has_solution:
            words = HIGHS_WORDS.get(status, f"the solver stopped with {self.h.modelStatusToString(status)}"
                                            " and no usable solution")
            raise SolveError(f"{phase}: {words} after {seconds:.1f} s")
        x = np.asarray(self.h.getSolution().col_value)[: self.model.n_cols]  # the pairs, not the share columns
        obj = float(info.objective_function_value)
        bound = float(info.mip_dual_bound) if self.integer else obj
        if not np.isfinite(bound):
            bound = float("inf")  # HiGHS reports an infinite dual bound when it proved none in time
        return PhaseResult(phase, HIGHS_ACCEPTED[status], obj, bound, seconds, x)

    def row_duals(self, extra: bool = False) -> np.ndarray:
        """The model's row duals; `extra`: also those of rows added since (persons row, share rows), in order."""
        duals = np.asarray(self.h.getSolution().row_dual)
        return duals if extra else duals[: self.model.n_rows]


def relaxation(model: LinearModel, policy: Policy, objective: np.ndarray, time_limit: float,
               iterations: int) -> PhaseResult | None:
    """The model's LP relaxation solved to optimality (its value an upper bound on the integer optimum); None when
    the LP stopped short of it (at `iterations` simplex iterations, or at the safety net).

    By primal simplex without presolve: on a neighbourhood's MIP of a few thousand columns that takes about a sixth
    of what HiGHS's branch and bound spends before its root proves the same (docs/solver-tuning.md)."""
    lp = HighsDirect(model, policy, integer=False)
    for option, value in (("presolve", "off"), ("solver", "simplex"), ("simplex_strategy", 4),
                          ("simplex_iteration_limit", iterations)):
        lp.h.setOptionValue(option, value)
    try:
        res = lp.solve("relaxation", objective, time_limit)
    except SolveError:
        return None
    return res if res.termination == "optimal" else None


class PyomoHighs:
    """The same model as a Pyomo ConcreteModel solved by HiGHS through Pyomo's solver interface."""

    def __init__(self, model: LinearModel, policy: Policy) -> None:
        self.model, self.policy = model, policy
        m = pyo.ConcreteModel(name="rematch_round")
        m.P = pyo.RangeSet(0, model.n_cols - 1)
        m.x = pyo.Var(m.P, within=pyo.Binary)
        csr = model.matrix
        m.R = pyo.RangeSet(0, model.n_rows - 1)

        def row(mm: pyo.ConcreteModel, r: int) -> object:
            lo, hi = csr.indptr[r], csr.indptr[r + 1]
            return sum(float(v) * mm.x[int(j)] for j, v in zip(csr.indices[lo:hi], csr.data[lo:hi], strict=True)
                       ) <= float(model.upper[r])

        m.rows = pyo.Constraint(m.R, rule=row)
        m.persons_placed = pyo.Expression(expr=sum(float(model.persons[j]) * m.x[j] for j in m.P))
        m.quality = pyo.Expression(expr=sum(float(model.quality[j]) * m.x[j] for j in m.P))
        m.max_persons = pyo.Objective(expr=m.persons_placed, sense=pyo.maximize)
        m.max_quality = pyo.Objective(expr=m.quality, sense=pyo.maximize)
        m.max_quality.deactivate()
        self.m = m
        self.share: ShareColumns | None = None
        self.solver = PyomoHighsSolver()
        self.solver.set_instance(m)  # persistent from here on, so the first solve can take a start too

    def _warm_start(self, start: np.ndarray) -> None:
        """Hand the incumbent to HiGHS as a MIP start (the pilot's quality phase is far faster from one).

        Pyomo's HiGHS interface has no warm-start option, but it is persistent: after `update()` its highspy
        model holds this Pyomo model, and a solution set there is used as the start of the next run.
        """
        highs = getattr(self.solver, "_solver_model", None)
        var_map = getattr(self.solver, "_pyomo_var_to_solver_var_map", None)
        if highs is None or var_map is None:
            return  # a Pyomo without these internals: solve cold, same result, slower
        self.solver.update()
        values = np.zeros(highs.getNumCol())
        for j in self.m.P:
            values[var_map[id(self.m.x[j])]] = float(start[j])
        if self.share is not None:
            for o, v in zip(self.m.F, self.share.start(start), strict=True):
                values[var_map[id(self.m.within_share[o])]] = float(v)
        sol = highspy.HighsSolution()
        sol.col_value = list(values)
        sol.value_valid = True
        highs.setSolution(sol)

    def add_min_persons(self, persons: float) -> None:
        self.m.keep_persons = pyo.Constraint(expr=self.m.persons_placed >= persons)
        self.m.max_persons.deactivate()
        self._quality_objective().activate()

    def _quality_objective(self) -> pyo.Objective:
        balanced = getattr(self.m, "max_quality_balanced", None)  # a Pyomo objective has no truth value
        return self.m.max_quality if balanced is None else balanced

    def add_fair_share(self, fair: FairShare, pair_o: np.ndarray) -> None:
        """The balanced-fill term (`FairShare`): persons within each offer's share, `fair.weight` points each."""
        m = self.m
        share = fair.columns(pair_o, self.model.persons)
        m.F = pyo.RangeSet(0, len(share.offers) - 1)  # the rows of `ShareColumns.rows`, one per offer with room
        m.within_share = pyo.Var(m.F, bounds=lambda mm, i: (0.0, float(share.room[i])))
        rows, n = share.rows, self.model.n_cols

        def row(mm: pyo.ConcreteModel, i: int) -> object:
            lo, hi = rows.indptr[i], rows.indptr[i + 1]
            return mm.within_share[i] + sum(float(v) * mm.x[int(j)] for j, v in
                                            zip(rows.indices[lo:hi], rows.data[lo:hi], strict=True) if j < n) <= 0

        m.within_share_rows = pyo.Constraint(m.F, rule=row)
        active = m.max_quality.active
        m.max_quality.deactivate()
        m.max_quality_balanced = pyo.Objective(
            expr=m.quality + fair.weight * sum(m.within_share[i] for i in m.F), sense=pyo.maximize)
        if not active:  # before `add_min_persons`: the persons objective stays the one solved
            m.max_quality_balanced.deactivate()
        self.share = share

    def solve(self, phase: str, objective: np.ndarray, time_limit: float, rel_gap: float = 0.0,
              abs_gap: float = 1e-6, start: np.ndarray | None = None, max_nodes: int | None = None) -> PhaseResult:
        """`max_nodes` bounds branch and bound by work, the same on every machine; `time_limit` is only the safety
        net of the round's deadline."""
        del objective  # the Pyomo model carries both objectives; add_min_persons switches them
        if start is not None:
            self._warm_start(start)
        t0 = time.perf_counter()
        res = self.solver.solve(
            self.m, time_limit=max(1.0, float(time_limit)), rel_gap=rel_gap, abs_gap=abs_gap,
            threads=self.policy.solver.threads, load_solutions=False, raise_exception_on_nonoptimal_result=False,
            solver_options={**{k: v for k, v in highs_options(self.policy).items() if k != "threads"},
                            **({"mip_max_nodes": int(max_nodes)} if max_nodes is not None else {})},
        )
        seconds = time.perf_counter() - t0
        term = res.termination_condition
        if term not in PYOMO_ACCEPTED or res.solution_status not in (SolutionStatus.optimal,
                                                                     SolutionStatus.feasible):
            words = {
                TerminationCondition.provenInfeasible: "the model is infeasible",
                TerminationCondition.infeasibleOrUnbounded: "the model is infeasible or unbounded",
            }.get(term, f"the solver stopped with {term.name} and no usable solution")
            raise SolveError(f"{phase}: {words} after {seconds:.1f} s")
        res.solution_loader.load_vars()
        x = np.array([pyo.value(self.m.x[j]) for j in self.m.P])
        obj = float(res.incumbent_objective)
        bound = float(res.objective_bound) if res.objective_bound is not None else obj
        return PhaseResult(phase, PYOMO_ACCEPTED[term], obj, bound, seconds, x)
