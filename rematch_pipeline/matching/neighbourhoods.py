"""One neighbourhood search for every objective: a shared loop that draws, solves and keeps gains, stopped by work."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from rematch_pipeline.domain import Policy
from rematch_pipeline.matching.backends import HighsDirect, PhaseResult, SolveError
from rematch_pipeline.matching.bound import INTEGRAL, persons_target, proves_maximal
from rematch_pipeline.matching.budget import SearchWork, WorkBudget
from rematch_pipeline.matching.build import LinearModel
from rematch_pipeline.matching.data import MatchingData
from rematch_pipeline.matching.exchange import exchange_within_classes
from rematch_pipeline.matching.fair_share import FairShare, persons_by_offer

log = logging.getLogger(__name__)


@dataclass
class Step:
    """What one solved neighbourhood did."""

    termination: str  # of its MIP: optimal, solution_limit (its node limit), time_limit, ...
    improved: bool  # its solution replaced the incumbent
    whole: bool = False  # it was the whole model, so its optimum is the search's


class Strategy(Protocol):
    """One kind of neighbourhood: how it is drawn, and how it is solved and taken into the incumbent."""

    offers: int  # municipalities per neighbourhood, before the search grows them

    def value(self) -> float:
        """The incumbent's objective value, for the bound."""
        ...

    def draw(self, rng: np.random.Generator, offers: int, movers: int | None) -> np.ndarray | None:
        """The neighbourhood of `offers` municipalities, or None when nobody could gain anything anywhere."""
        ...

    def solve(self, hood: np.ndarray, nodes: int, deadline: float) -> Step:
        """The neighbourhood as its own MIP of at most `nodes` nodes; a better solution replaces the incumbent."""
        ...


@dataclass
class Outcome:
    termination: str  # work_limit, optimal or time_limit (the safety net)
    rounds: int  # neighbourhoods solved


def search(strategies: Sequence[Strategy], work: SearchWork, seed: int, deadline: float, margin_s: float,
           bound: float = float("inf"), target: float = float("inf")) -> Outcome:
    """The shared loop: the strategies take turns (the first one first), one neighbourhood each, until the work is done.

    Ends after `work.rounds` neighbourhoods, after `work.stop_after` in a row without a gain, when nobody could gain
    anything anywhere, or when the incumbent reaches `target` ("work_limit"); when it reaches `bound` or a
    neighbourhood was the whole model solved to optimality ("optimal"); or, as a safety net only, at `deadline`
    ("time_limit": then the result depends on the machine's speed). A neighbourhood that gives no solution counts
    as one without a gain. A neighbourhood stopped short of optimality (its node limit) was too large to solve: the
    next one takes half the movers, and they grow back while neighbourhoods solve.
    """
    rng = np.random.default_rng(seed)
    rounds, stalled, scale, termination = 0, 0, 1, "work_limit"
    most_movers = movers = work.movers

    def size(strategy: Strategy) -> int:
        grown = strategy.offers * scale
        return grown if work.grow_after is None else min(grown, work.max_offers)

    while rounds < work.rounds:
        if work.stop_after is not None and stalled >= work.stop_after:
            break  # the search has run dry
        if time.perf_counter() >= deadline - margin_s:
            termination = "time_limit"
            break
        if proves_maximal(strategies[0].value(), bound):
            termination = "optimal"  # the bound is reached: nothing left to find
            break
        if strategies[0].value() >= target - INTEGRAL:
            break  # the round's goal is reached: the rest of the work would buy little for its time
        strategy = strategies[rounds % len(strategies)]
        hood = strategy.draw(rng, size(strategy), movers)
        if hood is None:
            break
        rounds += 1
        try:
            step = strategy.solve(hood, work.nodes, deadline)
        except SolveError as exc:
            log.warning("a neighbourhood gave no solution (%s)", exc)
            step = Step("no_solution", improved=False)
        if step.termination == "time_limit":
            termination = "time_limit"  # cut by the deadline: what it found still counts
        elif movers is not None and most_movers is not None:
            movers = (min(most_movers, movers + work.movers_step) if step.termination == "optimal"
                      else max(work.min_movers, movers // 2))
        stalled = 0 if step.improved else stalled + 1
        if step.whole and step.termination == "optimal":
            termination = "optimal"
            break
        if termination == "time_limit":
            break
        if work.grow_after is not None and stalled >= work.grow_after and size(strategy) < work.max_offers:
            # Small neighbourhoods have run dry: what is left to gain needs more municipalities at once.
            scale, stalled = 2 * scale, 0
    return Outcome(termination, rounds)


def draw_offers(rng: np.random.Generator, weights: np.ndarray, size: int,
                reach: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray | None:
    """`size` municipalities (a mask) drawn without replacement with probabilities by `weights`; None when no weight
    is positive. When fewer than `size` have a weight, `reach` (of the mask so far) weighs the others."""
    # Weights may come from an LP solution, whose zeros can be -1e-13: a weight that is not positive is never drawn.
    weights = np.where(weights > 0, weights, 0.0)
    if not weights.any():
        return None
    n = len(weights)
    chosen = np.zeros(n, dtype=bool)
    chosen[rng.choice(n, size=min(size, int((weights > 0).sum())), replace=False, p=weights / weights.sum())] = True
    while reach is not None and chosen.sum() < size:
        more = reach(chosen)
        more = np.where(more > 0, more, 0.0)
        if not more.any():
            break
        chosen[rng.choice(n, size=min(size - int(chosen.sum()), int((more > 0).sum())), replace=False,
                          p=more / more.sum())] = True
    return chosen


# --- neighbourhoods over the household model's columns -------------------------------------------------------

def model_pairs(data: MatchingData) -> np.ndarray:
    """(H, O) True for the pairs the model has a column for."""
    candidate = np.zeros(data.codes.shape, dtype=bool)
    candidate[data.pair_h, data.pair_o] = True
    return candidate


def start_vector(data: MatchingData, h: np.ndarray, o: np.ndarray) -> np.ndarray:
    """Household pairs (h, o) as a 0/1 vector over the model's columns."""
    n_off = max(1, len(data.offers))
    x = np.isin(data.pair_h * n_off + data.pair_o, h * n_off + o)
    return x.astype(np.float64)


def exchange(data: MatchingData, x: np.ndarray, classes: np.ndarray, only: np.ndarray | None = None,
             in_model: np.ndarray | None = None) -> np.ndarray:
    """`x` with each capacity class's places given to the class's best-scoring households (`exchange`); the model's
    columns only (`in_model`, from `model_pairs`), so the result is a vector over the same columns. Persons and
    capacity stay as they are."""
    chosen = x > 0.5
    return start_vector(data, *exchange_within_classes(
        data, classes, data.pair_h[chosen], data.pair_o[chosen],
        allowed=model_pairs(data) if in_model is None else in_model, only=only))


def balanced_fill_points(data: MatchingData, model: LinearModel, fair: FairShare | None, x: np.ndarray) -> float:
    """The balanced-fill points of placement x over the model's columns (0 when the term is off)."""
    return 0.0 if fair is None else fair.points(data.pair_o, model.persons, x)


class Placement:
    """The incumbent over the household model's columns, which the neighbourhoods of one search share.

    `fair`: the balanced-fill term, added to the objective; each neighbourhood carries it for its offers, with the
    persons the fixed part holds there counted in.
    """

    def __init__(self, data: MatchingData, model: LinearModel, policy: Policy, x: np.ndarray, objective: np.ndarray,
                 phase: str, fair: FairShare | None = None) -> None:
        self.data, self.model, self.policy = data, model, policy
        self.objective, self.phase, self.fair = objective, phase, fair
        self.x = np.round(x)
        self.best = self.value_of(self.x)
        self.columns = model.matrix.tocsc()  # neighbourhoods take columns: a column slice of CSR costs far more

    def value_of(self, v: np.ndarray) -> float:
        return float(self.objective @ v) + balanced_fill_points(self.data, self.model, self.fair, v)


def _reachable(data: MatchingData, model: LinearModel, chosen_cols: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Per municipality outside `chosen`: the persons placed in `chosen` who could move there (have a column)."""
    n_off = max(1, len(data.offers))
    inside = np.zeros(data.hh.persons.shape[0], dtype=bool)
    inside[data.pair_h[chosen_cols & chosen[data.pair_o]]] = True
    reach = np.bincount(data.pair_o, weights=model.persons * inside[data.pair_h], minlength=n_off)
    reach[chosen] = 0.0
    return reach


class _Columns(ABC):
    """Frees every eligible pair of the households placed in, or wanting, a few drawn municipalities, and solves
    that part as its own small MIP; everything else stays as it is, so each neighbourhood starts feasible."""

    rel_gap, abs_gap = 0.0, 0.5

    def __init__(self, placement: Placement, offers: int) -> None:
        self.placement, self.offers = placement, offers

    def value(self) -> float:
        return self.placement.best

    @abstractmethod
    def gain(self, placed: np.ndarray, chosen_cols: np.ndarray) -> np.ndarray:
        """Per column: what the household would gain there; municipalities are drawn by their households' gains
        (each strategy says what a gain is)."""

    def constrain(self, sub: HighsDirect, sub_model: LinearModel, cols: np.ndarray, whole: bool) -> None:
        """Rows a neighbourhood adds so that it never loses what the search keeps."""
        return None  # by default none: the persons search keeps nothing beyond its objective

    def polish(self, candidate: np.ndarray, moved: np.ndarray) -> np.ndarray:
        """The improved incumbent made ready for the next neighbourhood."""
        return candidate

    def draw(self, rng: np.random.Generator, offers: int, movers: int | None) -> np.ndarray | None:
        """The columns to free. When fewer municipalities than `offers` have anyone to gain there, the neighbourhood
        grows along the chain of moves: to the municipalities the households placed in it could move to
        (`_reachable`), so a household that fits only where the gain is can take a place freed further along."""
        p = self.placement
        data, model = p.data, p.model
        placed = np.zeros(data.hh.persons.shape[0], dtype=bool)
        chosen_cols = p.x > 0.5
        placed[data.pair_h[chosen_cols]] = True
        gain = self.gain(placed, chosen_cols)
        wanted = np.bincount(data.pair_o, weights=gain, minlength=max(1, len(data.offers)))
        # Too few municipalities with a gain: their households can make room only by moving on, into places the
        # neighbourhood frees; a municipality with no gain of its own is otherwise never drawn and stays as it is.
        chosen = draw_offers(rng, wanted, offers, lambda inside: _reachable(data, model, chosen_cols, inside))
        if chosen is None:
            return None
        in_chosen = chosen[data.pair_o]
        movable = np.zeros_like(placed)
        movable[data.pair_h[in_chosen & chosen_cols]] = True
        wanting = in_chosen & (gain > 0)
        if movers is not None and wanting.sum() > movers:
            # Only the households that would gain most there, or the neighbourhood grows too large to solve.
            wanting[np.nonzero(wanting)[0][np.argsort(-gain[wanting], kind="stable")[movers:]]] = False
        movable[data.pair_h[wanting]] = True
        # A movable household may go anywhere it is eligible, so one placed in a chosen municipality can make room
        # there by moving to spare capacity elsewhere (the capacity left outside is what the fixed part leaves).
        free: np.ndarray = movable[data.pair_h]
        return free

    def solve(self, free: np.ndarray, nodes: int, deadline: float) -> Step:
        p = self.placement
        data, model, x = p.data, p.model, p.x
        # Only the freed columns, against the capacity the fixed part leaves (never negative: the incumbent is
        # feasible). Passing the whole model with fixed bounds costs more than solving the neighbourhood.
        cols = np.nonzero(free)[0]
        rest = np.where(free, 0.0, x)
        sub_model = LinearModel(matrix=p.columns[:, cols].tocsr(), upper=model.upper - p.columns @ rest,
                                blocks=model.blocks, offsets=model.offsets, persons=model.persons[cols],
                                quality=model.quality[cols])
        sub = HighsDirect(sub_model, p.policy, integer=True)
        whole = bool(free.all())
        self.constrain(sub, sub_model, cols, whole)
        if p.fair is not None:
            sub.add_fair_share(p.fair, data.pair_o[cols],
                               fixed=persons_by_offer(len(data.offers), data.pair_o, model.persons, rest))
        res = sub.solve(p.phase, p.objective[cols], deadline - time.perf_counter(), rel_gap=self.rel_gap,
                        abs_gap=self.abs_gap, start=x[cols], max_nodes=nodes)
        candidate = rest.copy()
        candidate[cols] = np.round(res.x)
        improved = (p.value_of(candidate) > p.best + INTEGRAL
                    and model.persons @ candidate >= model.persons @ x - INTEGRAL)
        if improved:
            moved = np.unique(data.pair_h[candidate != x])  # only their classes can have changed
            p.x = self.polish(candidate, moved)
            p.best = p.value_of(p.x)
        return Step(res.termination, bool(improved), whole)


class PersonsNeighbourhoods(_Columns):
    """Persons up: municipalities drawn by the persons still unplaced who could go there; optimal within half a
    person is optimal (fast)."""

    def gain(self, placed: np.ndarray, chosen_cols: np.ndarray) -> np.ndarray:
        p = self.placement
        gain: np.ndarray = np.where(placed[p.data.pair_h], 0.0, p.model.persons)
        return gain


class QualityNeighbourhoods(_Columns):
    """Quality up with the persons kept: municipalities drawn by how much households would gain there over where
    they are now (with balanced fill: also households leaving an offer beyond its share for one below it), the
    largest gains first among the movers. Each neighbourhood keeps at least the persons it held, so persons never
    drop, and each gain is followed by an exchange within capacity classes (`exchange`): the neighbourhood changes
    what a municipality holds, the exchange who of a class holds it."""

    def __init__(self, placement: Placement, offers: int, classes: np.ndarray, in_model: np.ndarray) -> None:
        super().__init__(placement, offers)
        self.classes, self.in_model = classes, in_model
        self.rel_gap, self.abs_gap = placement.policy.solver.mip_rel_gap, 1e-6

    def gain(self, placed: np.ndarray, chosen_cols: np.ndarray) -> np.ndarray:
        p = self.placement
        data, model, fair = p.data, p.model, p.fair
        current = np.zeros(data.hh.persons.shape[0])
        current[data.pair_h[chosen_cols]] = model.quality[chosen_cols]
        own = model.quality - current[data.pair_h]
        if fair is not None:
            at = persons_by_offer(max(1, len(data.offers)), data.pair_o, model.persons, p.x)
            beyond = np.zeros_like(placed)  # placed at an offer holding more than its share
            beyond[data.pair_h[chosen_cols]] = (at > fair.share + INTEGRAL)[data.pair_o[chosen_cols]]
            own = own + fair.weight * np.minimum(model.persons, np.maximum(fair.share - at, 0.0)[data.pair_o]) \
                * beyond[data.pair_h]
        gain: np.ndarray = np.maximum(own, 0.0) * placed[data.pair_h] + np.where(placed[data.pair_h], 0.0,
                                                                                   model.persons)
        return gain

    def constrain(self, sub: HighsDirect, sub_model: LinearModel, cols: np.ndarray, whole: bool) -> None:
        sub.add_min_persons(float(sub_model.persons @ self.placement.x[cols]))

    def polish(self, candidate: np.ndarray, moved: np.ndarray) -> np.ndarray:
        # The exchange keeps the persons at every offer, so the balanced-fill points with them.
        return exchange(self.placement.data, candidate, self.classes, self.classes[moved], self.in_model)


class KeptNeighbourhoods(QualityNeighbourhoods):
    """Quality up, each household the neighbourhood holds kept placed (anywhere) instead of only their persons:
    assignment rows solve faster than a persons knapsack, but only the knapsack lets a household give its place to
    one of another size, so the two take turns (docs/solver-tuning.md). A neighbourhood that is the whole model
    keeps only the persons row: its optimum ends the search."""

    def constrain(self, sub: HighsDirect, sub_model: LinearModel, cols: np.ndarray, whole: bool) -> None:
        if whole:
            super().constrain(sub, sub_model, cols, whole)
        else:
            x = self.placement.x
            sub.keep_placed(self.placement.model.household_rows(cols[x[cols] > 0.5]))


class GuidedNeighbourhoods(QualityNeighbourhoods):
    """Quality up where the quality LP places households the incumbent does not: municipalities drawn by the LP's
    quality there on households placed elsewhere (or not at all), those households first among the movers."""

    def __init__(self, placement: Placement, offers: int, classes: np.ndarray, in_model: np.ndarray,
                 guide: np.ndarray) -> None:
        super().__init__(placement, offers, classes, in_model)
        self.guide = guide

    def gain(self, placed: np.ndarray, chosen_cols: np.ndarray) -> np.ndarray:
        model = self.placement.model
        gain: np.ndarray = np.where(chosen_cols, 0.0, self.guide * np.maximum(model.quality, INTEGRAL))
        return gain


def _run(placement: Placement, strategies: Sequence[Strategy], work: SearchWork, budget: WorkBudget,
         deadline: float, bound: float = float("inf"), target: float = float("inf")) -> PhaseResult:
    t0 = time.perf_counter()
    start = placement.best
    outcome = search(strategies, work, placement.policy.solver.random_seed, deadline, budget.deadline_margin_s,
                     bound, target)
    log.info("neighbourhood search (%s): %d rounds, %.1f (from %.1f)", placement.phase, outcome.rounds,
             placement.best, start)
    return PhaseResult(placement.phase, outcome.termination, placement.best, float("inf"), time.perf_counter() - t0,
                       placement.x)


def persons_search(data: MatchingData, model: LinearModel, policy: Policy, incumbent: PhaseResult, deadline: float,
                   bound: float, budget: WorkBudget) -> PhaseResult:
    """Persons up from `incumbent` when the LP is out of reach (national scale), a few municipalities at a time."""
    placement = Placement(data, model, policy, incumbent.x, model.persons, "max_persons_lns")
    return _run(placement, [PersonsNeighbourhoods(placement, budget.persons.offers)], budget.persons, budget,
                deadline, bound, persons_target(bound, budget.persons_gap_ppm))


def quality_search(data: MatchingData, model: LinearModel, policy: Policy, incumbent: PhaseResult, deadline: float,
                   classes: np.ndarray, fair: FairShare | None, budget: WorkBudget,
                   guide: np.ndarray | None = None) -> PhaseResult:
    """Quality (plus balanced-fill points) up from `incumbent` with persons kept: kept and quality neighbourhoods
    take turns, a kept one first. With `guide` (the quality LP's solution over the model's columns), a neighbourhood
    guided by it comes first and after every `budget.lp_guided_every` of the others."""
    placement = Placement(data, model, policy, incumbent.x, model.quality, "max_quality_lns", fair)
    in_model = model_pairs(data)  # the model's columns do not change here
    strategies: list[Strategy] = [KeptNeighbourhoods(placement, budget.kept_offers, classes, in_model),
                                  QualityNeighbourhoods(placement, budget.quality.offers, classes, in_model)]
    if budget.lp_guided_every and guide is not None and len(guide) == len(model.quality):
        guided = GuidedNeighbourhoods(placement, budget.guided_offers, classes, in_model, guide)
        cheap = (strategies * budget.lp_guided_every)[:budget.lp_guided_every]
        strategies = [guided, *cheap]
        return _run(placement, strategies, replace(budget.quality, rounds=budget.guided_rounds), budget,
                    deadline)
    return _run(placement, strategies, budget.quality, budget, deadline)
