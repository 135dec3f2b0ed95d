"""The one neighbourhood engine: its shared loop, stop rules and movers rule for every strategy; the work budget."""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rematch_pipeline.config import load_policy
from rematch_pipeline.matching import solve
from rematch_pipeline.matching.backends import SolveError
from rematch_pipeline.matching.baselines import greedy_by_score
from rematch_pipeline.matching.bound import persons_target
from rematch_pipeline.matching.budget import BUDGET, SearchWork
from rematch_pipeline.matching.build import build_model
from rematch_pipeline.matching.data import build_data
from rematch_pipeline.matching.exchange import capacity_classes
from rematch_pipeline.matching.neighbourhoods import (
    GuidedNeighbourhoods,
    KeptNeighbourhoods,
    PersonsNeighbourhoods,
    Placement,
    QualityNeighbourhoods,
    Step,
    Strategy,
    draw_offers,
    model_pairs,
    search,
    start_vector,
)
from rematch_pipeline.matching.types import (
    GuidedTypeNeighbourhoods,
    TypeAllocation,
    TypeNeighbourhoods,
    household_types,
    improve_by_neighbourhoods,
    starting_pairs,
)
from tests.factories import ROUND_DATE
from tests.test_matching import _scenario

POLICY = load_policy()
FAR = 1e9  # a deadline the clock never reaches: only the work stops these searches


class Fake:
    """A strategy that records what the loop gives it and answers as told."""

    def __init__(self, offers: int = 2, steps: list[Step] | None = None, value: float = 0.0) -> None:
        self.offers, self.steps, self._value = offers, steps or [], value
        self.sizes: list[int] = []
        self.movers: list[int | None] = []

    def value(self) -> float:
        return self._value

    def draw(self, rng: np.random.Generator, offers: int, movers: int | None) -> np.ndarray | None:
        self.sizes.append(offers)
        self.movers.append(movers)
        return np.zeros(1)

    def solve(self, hood: np.ndarray, nodes: int, deadline: float) -> Step:
        return self.steps.pop(0) if self.steps else Step("optimal", improved=False)


def _work(**changes: object) -> SearchWork:
    return dataclasses.replace(SearchWork(offers=2, rounds=10, nodes=100, stop_after=None), **changes)


def test_the_search_ends_after_its_rounds_or_a_run_of_neighbourhoods_without_gain() -> None:
    fake = Fake()
    outcome = search([fake], _work(rounds=7), 1, FAR, 1.0)
    assert (outcome.termination, outcome.rounds, len(fake.sizes)) == ("work_limit", 7, 7)
    gains = [Step("optimal", improved=True)] * 2
    assert search([Fake(steps=gains)], _work(stop_after=3), 1, FAR, 1.0).rounds == 2 + 3


def test_the_search_ends_at_the_bound_at_a_whole_model_solved_and_at_the_deadline() -> None:
    assert search([Fake(value=12.0)], _work(), 1, FAR, 1.0, bound=12.4).termination == "optimal"
    whole = search([Fake(steps=[Step("optimal", improved=True, whole=True)])], _work(), 1, FAR, 1.0)
    assert (whole.termination, whole.rounds) == ("optimal", 1)
    # A whole model stopped at its node limit proves nothing: the search goes on.
    assert search([Fake(steps=[Step("solution_limit", improved=False, whole=True)])], _work(), 1, FAR, 1.0).rounds == 10
    late = search([Fake()], _work(), 1, time.perf_counter() + 0.5, 1.0)
    assert (late.termination, late.rounds) == ("time_limit", 0)
    cut = search([Fake(steps=[Step("time_limit", improved=True)])], _work(), 1, FAR, 1.0)
    assert (cut.termination, cut.rounds) == ("time_limit", 1)


def test_the_search_ends_by_its_work_once_the_incumbent_reaches_the_persons_target() -> None:
    # Rule (search): reaching `target` ends the search as work done (the same everywhere), not as proven optimal.
    reached = search([Fake(value=25_337.0)], _work(), 1, FAR, 1.0, bound=25_341.16, target=25_337.0)
    assert (reached.termination, reached.rounds) == ("work_limit", 0)
    short = search([Fake(value=25_336.0)], _work(), 1, FAR, 1.0, bound=25_341.16, target=25_337.0)
    assert (short.termination, short.rounds) == ("work_limit", 10)


def test_the_persons_target_is_the_fewest_whole_persons_within_the_gap_never_above_the_proof() -> None:
    # Rule (persons_target): 0.02 % of the bound, rounded up to whole persons; the goals of issue 18 at 10,000 x 400.
    assert [persons_target(b, 200) for b in (25_341.156219, 22_685.18, 22_429.66)] == [25_337, 22_681, 22_426]
    assert persons_target(10.5, 200) == 10  # within one person of the bound already proves maximal
    assert persons_target(float("inf"), 200) == float("inf")


def test_a_neighbourhood_without_a_solution_counts_as_one_without_gain() -> None:
    class Failing(Fake):
        def solve(self, hood: np.ndarray, nodes: int, deadline: float) -> Step:
            raise SolveError("max_quality_lns: the solver stopped with no usable solution")

    outcome = search([Failing()], _work(stop_after=4), 1, FAR, 1.0)
    assert (outcome.termination, outcome.rounds) == ("work_limit", 4)


def test_stalled_neighbourhoods_grow_up_to_their_largest_size_only_when_the_work_says_so() -> None:
    fake = Fake(offers=2)
    search([fake], _work(rounds=9, grow_after=2, max_offers=6), 1, FAR, 1.0)
    assert fake.sizes == [2, 2, 4, 4, 6, 6, 6, 6, 6]  # doubled after each two without gain, never past six
    fixed = Fake(offers=2)
    search([fixed], _work(rounds=5), 1, FAR, 1.0)
    assert fixed.sizes == [2] * 5


def test_strategies_take_turns_the_first_one_first() -> None:
    first, second = Fake(offers=4), Fake(offers=2)
    search([first, second], _work(rounds=5), 1, FAR, 1.0)
    assert (first.sizes, second.sizes) == ([4, 4, 4], [2, 2])


def _strategies() -> dict[str, Strategy]:
    """Every strategy of the matching search, on one small round."""
    hs, os_ = _scenario(60)
    data = build_data(hs, os_, ROUND_DATE, POLICY)
    greedy = greedy_by_score(data)
    model = build_model(data)
    x = start_vector(data, *greedy)
    persons = Placement(data, model, POLICY, x, model.persons, "max_persons_lns")
    quality = Placement(data, model, POLICY, x, model.quality, "max_quality_lns")
    classes, in_model = capacity_classes(data), model_pairs(data)
    types = household_types(data)
    types.data.set_pairs(*starting_pairs(types, *greedy))
    alloc = TypeAllocation.of_counts(types.data, *types.counts(*greedy))
    return {"persons": PersonsNeighbourhoods(persons, 4),
            "quality": QualityNeighbourhoods(quality, 2, classes, in_model),
            "kept": KeptNeighbourhoods(quality, 4, classes, in_model),
            "guided": GuidedNeighbourhoods(quality, 2, classes, in_model, 1.0 - x),
            "types": TypeNeighbourhoods(alloc, np.zeros(types.data.n_pairs), np.zeros(types.data.codes.shape), POLICY,
                                        2),
            "guided_types": GuidedTypeNeighbourhoods(alloc, alloc.counts[types.data.pair_h, types.data.pair_o] + 1.0,
                                                     np.zeros(types.data.codes.shape), POLICY, 4)}


@pytest.mark.parametrize("kind", ["persons", "quality", "kept", "guided", "types", "guided_types"])
def test_a_neighbourhood_stopped_at_its_node_limit_halves_the_next_ones_movers_for_every_strategy(kind: str) -> None:
    strategy = _strategies()[kind]
    seen: list[int | None] = []
    answers = iter(["solution_limit", "solution_limit", "solution_limit", "optimal", "optimal", "solution_limit"])

    class Recorded:
        offers = strategy.offers

        def value(self) -> float:
            return strategy.value()

        def draw(self, rng: np.random.Generator, offers: int, movers: int | None) -> np.ndarray | None:
            seen.append(movers)
            return strategy.draw(rng, offers, movers)

        def solve(self, hood: np.ndarray, nodes: int, deadline: float) -> Step:
            step = strategy.solve(hood, nodes, deadline)  # the real neighbourhood, reported as told
            return dataclasses.replace(step, termination=next(answers), whole=False)

    work = SearchWork(offers=strategy.offers, rounds=6, nodes=50, stop_after=None, movers=40, min_movers=8,
                      movers_step=10)
    assert search([Recorded()], work, POLICY.solver.random_seed, FAR, 1.0).rounds == 6
    # Halved after each node-limit stop down to the least, grown back by the step after each optimal one.
    assert seen == [40, 20, 10, 8, 18, 28]


def test_deterministic_work_reports_the_budgets_values(monkeypatch: pytest.MonkeyPatch) -> None:
    budget = dataclasses.replace(
        BUDGET, pricing_rounds=3, lp_ipm_iterations=4, lp_simplex_iterations=5, subgradient_steps=6,
        type_mip_nodes=7, exact_mip_nodes=27, persons_gap_ppm=26,
        types=dataclasses.replace(BUDGET.types, rounds=8, nodes=9),
        guided_types=dataclasses.replace(BUDGET.guided_types, rounds=23, offers=24, nodes=25),
        persons=dataclasses.replace(BUDGET.persons, rounds=10, nodes=11, stop_after=12),
        quality=dataclasses.replace(BUDGET.quality, rounds=13, nodes=14), quality_bound_lps=15,
        quality_bound_columns=16, quality_bound_candidates=17, quality_bound_ipm_iterations=18,
        quality_bound_crossover_iterations=19, quality_bound_subgradient_steps=28, lp_guided_every=20,
        guided_offers=21, guided_rounds=22, move_sweeps=29, near_tie_nodes=30)
    monkeypatch.setattr(solve, "BUDGET", budget)
    assert solve.deterministic_work() == {
        "pricing_rounds": 3, "lp_ipm_iterations": 4, "lp_simplex_iterations": 5, "subgradient_steps": 6,
        "type_mip_nodes": 7, "exact_mip_nodes": 27, "persons_gap_ppm": 26, "type_neighbourhoods": 8,
        "type_neighbourhood_nodes": 9, "near_relaxation_tie_break_nodes": 30,
        "guided_type_neighbourhoods": 23, "guided_type_offers": 24, "guided_type_nodes": 25,
        "persons_neighbourhoods": 10, "persons_neighbourhood_nodes": 11, "neighbourhoods_without_gain": 12,
        "move_sweeps": 29,
        "quality_neighbourhoods": 13, "quality_neighbourhood_nodes": 14, "quality_bound_lps": 15,
        "quality_bound_columns": 16, "quality_bound_candidates": 17, "quality_bound_ipm_iterations": 18,
        "quality_bound_crossover_iterations": 19, "quality_bound_subgradient_steps": 28,
        "lp_guided_every": 20, "guided_offers": 21, "guided_neighbourhoods": 22}


@pytest.mark.parametrize("phase", ["persons", "quality"])
def test_the_round_runs_its_neighbourhoods_by_the_budget_it_reports(phase: str,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    # The budget that deterministic_work reports is the one the searches stop by: never more neighbourhoods.
    from rematch_pipeline.config import policy_with
    from rematch_pipeline.matching import neighbourhoods
    from rematch_pipeline.matching.engine import match

    def stopped(*args: object, **kwargs: object) -> None:
        raise SolveError("lp_persons: stopped (time_limit) before optimality; no bound")

    ran: list[tuple[int, int]] = []
    real = neighbourhoods.search

    def counted(strategies: list[Strategy], work: SearchWork, *args: object, **kwargs: object) -> object:
        outcome = real(strategies, work, *args, **kwargs)  # type: ignore[arg-type]
        ran.append((work.rounds, outcome.rounds))
        return outcome

    budget = dataclasses.replace(BUDGET, **{phase: dataclasses.replace(getattr(BUDGET, phase), rounds=2)},
                                 **({"guided_rounds": 2} if phase == "quality" else {}))
    monkeypatch.setattr(solve, "BUDGET", budget)
    monkeypatch.setattr(solve, "solve_lp", stopped)  # no LP: persons by neighbourhoods too
    monkeypatch.setattr(neighbourhoods, "search", counted)
    hs, os_ = _scenario(40)
    result = match(hs, os_, ROUND_DATE, policy_with(POLICY, pyomo_max_pairs=0, time_limit_s=60.0), "R")
    assert {"max_persons_lns", "max_quality_lns"} <= {p["phase"] for p in result.stats["phases"]}
    assert solve.deterministic_work()[f"{phase}_neighbourhoods"] == 2
    assert 2 in {limit for limit, _ in ran}  # the search of this phase ran by the budget
    assert all(done <= limit for limit, done in ran)


def test_a_guided_neighbourhood_frees_where_the_quality_lp_places_a_household_the_incumbent_does_not() -> None:
    guided = _strategies()["guided"]
    assert isinstance(guided, GuidedNeighbourhoods)
    p = guided.placement
    data = p.data
    # The LP's whole weight on one pair the incumbent lacks: that municipality is drawn, that household moves.
    col = int(np.nonzero((p.x < 0.5) & (p.model.quality > 0))[0][-1])
    guided.guide = np.zeros_like(p.x)
    guided.guide[col] = 0.6
    free = guided.draw(np.random.default_rng(1), 1, movers=None)
    assert free is not None
    placed_there = (p.x > 0.5) & (data.pair_o == data.pair_o[col])
    assert set(data.pair_h[free]) == set(data.pair_h[placed_there]) | {int(data.pair_h[col])}
    assert free[data.pair_h == data.pair_h[col]].all()
    # Nothing where the LP agrees with the incumbent: a guide equal to it draws nothing.
    guided.guide = p.x.copy()
    assert guided.draw(np.random.default_rng(1), 1, movers=None) is None


def test_beyond_the_pyomo_size_the_quality_lp_guides_one_quality_neighbourhood_in_every_three(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The bound's LP comes before the quality neighbourhoods, and its solution (over the model's columns) guides
    # every third one: a guided one of `guided_offers` municipalities, then a kept and a quality one, for
    # `guided_rounds` neighbourhoods in all.
    from rematch_pipeline.config import policy_with
    from rematch_pipeline.matching import neighbourhoods
    from rematch_pipeline.matching.engine import match

    kinds: list[tuple[list[tuple[type, int]], int]] = []
    real = neighbourhoods.search

    def recorded(strategies: list[Strategy], work: SearchWork, *args: object, **kwargs: object) -> object:
        kinds.append(([(type(s), s.offers) for s in strategies], work.rounds))
        return real(strategies, work, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(neighbourhoods, "search", recorded)
    hs, os_ = _scenario(40)
    result = match(hs, os_, ROUND_DATE, policy_with(POLICY, pyomo_max_pairs=0, time_limit_s=60.0), "R")
    assert "max_quality_lns" in {p["phase"] for p in result.stats["phases"]}
    assert ([(GuidedNeighbourhoods, BUDGET.guided_offers), (KeptNeighbourhoods, BUDGET.kept_offers),
             (QualityNeighbourhoods, BUDGET.quality.offers)], BUDGET.guided_rounds) in kinds
    assert result.stats["quality"] <= result.stats["quality_bound"] + 1e-6


def test_a_guided_type_neighbourhood_joins_where_the_lp_places_a_type_to_where_the_allocation_has_it() -> None:
    # Rule (GuidedTypeNeighbourhoods): the first municipality is where the persons LP places a type the allocation
    # has elsewhere; the next one is where the allocation has that type beyond the LP, so the move fits in one MIP.
    guided = _strategies()["guided_types"]
    assert isinstance(guided, GuidedTypeNeighbourhoods)
    alloc = guided.alloc
    t, b = (int(v[0]) for v in np.nonzero(alloc.counts > 0.5))
    a = int(np.nonzero(alloc.data.eligible[t] & (np.arange(alloc.counts.shape[1]) != b))[0][-1])
    guided.lp_counts = alloc.counts.copy()
    guided.lp_counts[t, b] -= 1.0
    guided.lp_counts[t, a] += 1.0
    for seed in range(5):
        assert sorted(guided.draw(np.random.default_rng(seed), 2, movers=None).tolist()) == sorted([a, b])
    guided.lp_counts = alloc.counts.copy()  # the allocation holds every type where the LP does
    assert guided.draw(np.random.default_rng(1), 2, movers=None) is None


@pytest.mark.parametrize(("first_ends", "guided_rounds", "searches"), [
    ("work_limit", 2, [("TypeNeighbourhoods", 3), ("GuidedTypeNeighbourhoods", 2)]),
    ("optimal", 2, [("TypeNeighbourhoods", 3)]),
    ("work_limit", 0, [("TypeNeighbourhoods", 3)]),
])
def test_the_guided_type_search_follows_the_plain_one_by_its_own_budget(
        first_ends: str, guided_rounds: int, searches: list[tuple[str, int]], monkeypatch: pytest.MonkeyPatch) -> None:
    # Rule (improve_by_neighbourhoods): after the plain type neighbourhoods stop by their work, the guided ones run
    # `guided_types.rounds` more; none when the plain ones proved the optimum or the budget has none.
    from rematch_pipeline.matching import types as types_module
    from rematch_pipeline.matching.neighbourhoods import Outcome

    ran: list[tuple[str, int]] = []

    def recorded(strategies: list[Strategy], work: SearchWork, *args: object, **kwargs: object) -> Outcome:
        ran.append((type(strategies[0]).__name__, work.rounds))
        return Outcome(first_ends if len(ran) == 1 else "work_limit", work.rounds)

    monkeypatch.setattr(types_module, "search", recorded)
    guided = _strategies()["guided_types"]
    assert isinstance(guided, GuidedTypeNeighbourhoods)
    budget = dataclasses.replace(BUDGET, types=dataclasses.replace(BUDGET.types, rounds=3),
                                 guided_types=dataclasses.replace(BUDGET.guided_types, rounds=guided_rounds))
    termination, rounds = improve_by_neighbourhoods(guided.alloc, np.zeros(guided.alloc.data.n_pairs),
                                                    np.zeros(guided.alloc.data.codes.shape), POLICY, FAR,
                                                    float("inf"), budget)
    assert ran == searches
    assert (termination, rounds) == (first_ends, sum(r for _, r in searches))


def test_no_guided_type_search_once_the_plain_one_reached_the_persons_target(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rule (improve_by_neighbourhoods): the guided type neighbourhoods only run while persons are short of the
    # target (`persons_gap_ppm` of the bound); both searches are given that target.
    from rematch_pipeline.matching import types as types_module
    from rematch_pipeline.matching.neighbourhoods import Outcome

    targets: list[float] = []

    def recorded(strategies: list[Strategy], work: SearchWork, *args: object, **kwargs: object) -> Outcome:
        targets.append(float(args[-1]))  # type: ignore[arg-type]
        return Outcome("work_limit", work.rounds)

    monkeypatch.setattr(types_module, "search", recorded)
    guided = _strategies()["guided_types"]
    assert isinstance(guided, GuidedTypeNeighbourhoods)
    alloc = guided.alloc
    for bound, searches in ((alloc.persons + 0.3, 1), (alloc.persons + 3.0, 2)):
        targets.clear()
        improve_by_neighbourhoods(alloc, np.zeros(alloc.data.n_pairs), np.zeros(alloc.data.codes.shape), POLICY,
                                  FAR, bound, BUDGET)
        assert targets == [persons_target(bound, BUDGET.persons_gap_ppm)] * searches


def test_a_draw_never_takes_a_municipality_whose_weight_is_not_positive_even_a_rounding_negative() -> None:
    # Rule: weights from an LP solution carry zeros like -1e-13 (a 1,500 x 400 round crashed on one in the guided
    # quality search); such a municipality is simply not drawn.
    rng = np.random.default_rng(0)
    weights = np.array([0.0, -2.4e-13, 3.0, 1.0, -1e-9])
    for _ in range(50):
        chosen = draw_offers(rng, weights, 2)
        assert chosen is not None and list(np.flatnonzero(chosen)) == [2, 3]
    assert draw_offers(rng, np.array([0.0, -1e-13]), 2) is None
    # Grown by reach: again only where the reach is positive.
    grown = draw_offers(rng, np.array([0.0, 1.0, 0.0]), 2, lambda inside: np.array([-1e-13, 0.0, 5.0]))
    assert grown is not None and list(np.flatnonzero(grown)) == [1, 2]


def test_a_type_mip_optimal_over_its_columns_only_hands_on_to_the_neighbourhoods(tmp_path: Path) -> None:
    # Rule: "optimal" over the LP's columns proves nothing when more eligible (type, offer) pairs exist than branch
    # and bound takes; the neighbourhoods go on. A red team's sparse round (200 x 400, seed 3, national path) stopped
    # at 483 persons as "optimal" where the neighbourhoods reach 488.
    from rematch_pipeline.matching.engine import match
    from rematch_pipeline.scenario import DEFAULT_ROUND_DATE, generate_scenario
    from rematch_pipeline.scenario_load import load_scenario

    files = generate_scenario(tmp_path, households=200, municipalities=400, seed=3, round_date=DEFAULT_ROUND_DATE)
    households, offers = load_scenario(files.households_xlsx, files.capacity_xlsx)
    result = match(households, offers, DEFAULT_ROUND_DATE, load_policy(overrides={"pyomo_max_pairs": 0}), "R-T")
    types = next(p for p in result.stats["phases"] if p["phase"] == "max_persons_types")
    assert result.stats["persons_placed"] >= 488
    assert types["termination"] == "work_limit" or result.stats["persons_proven_maximal"]


@pytest.mark.parametrize("kind", ["types", "guided_types"])
@pytest.mark.parametrize("near", ["lp", "nothing", "below_bounds"])
def test_a_type_neighbourhood_near_its_lp_places_as_many_persons_as_its_whole_mip_and_skips_it(
        kind: str, near: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rule (TypeNeighbourhoods._near_relaxation): counts within one of the LP relaxation's that place as many persons
    # as the relaxation allows are the neighbourhood's optimum, so its whole MIP is not run; counts that fall short
    # leave it to the whole MIP ("nothing": the relaxation's solution moved to zero, so nothing near it gains). Each
    # neighbourhood ends with the persons the whole MIP finds, and within capacity: the box stays within the model's
    # bounds even where the LP's values lie a tolerance below them ("below_bounds").
    from rematch_pipeline.matching import types as types_module

    if near != "lp":
        real = types_module.relaxation

        def moved(*args: Any, **kwargs: Any) -> Any:
            res = real(*args, **kwargs)
            if res is None:
                return None
            return dataclasses.replace(res, x=np.zeros_like(res.x) if near == "nothing" else res.x - 2e-6)

        monkeypatch.setattr(types_module, "relaxation", moved)

    whole: list[int] = []

    class Counted(types_module.HighsDirect):
        def __init__(self, model: Any, policy: Any, integer: bool = True, fixed: Any = None) -> None:
            super().__init__(model, policy, integer, fixed)
            if integer and fixed is None:
                whole.append(1)

    monkeypatch.setattr(types_module, "HighsDirect", Counted)
    strategy = _strategies()[kind]
    assert isinstance(strategy, TypeNeighbourhoods)
    rng, gains, skipped = np.random.default_rng(3), 0, 0
    for _ in range(40):
        hood = strategy.draw(rng, strategy.offers, None)
        if hood is None:
            break
        alone = copy.deepcopy(strategy)
        with monkeypatch.context() as m:
            m.setattr(types_module.TypeNeighbourhoods, "_near_relaxation", lambda *args, **kwargs: None)
            alone.solve(hood, 200, FAR)
        before = len(whole)
        step = strategy.solve(hood, 200, FAR)
        assert strategy.alloc.persons == alone.alloc.persons
        held = strategy.alloc
        assert (held.counts >= 0).all() and (held.left >= 0).all() and (held.units >= 0).all()
        gains += step.improved
        skipped += step.improved and len(whole) == before
    assert gains > 0 and (skipped == 0 if near == "nothing" else skipped > 0)


@pytest.mark.parametrize("kind", ["types", "guided_types"])
def test_a_type_neighbourhood_whose_lp_cannot_add_a_person_skips_its_mip_and_ends_alike(
        kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rule (TypeNeighbourhoods.solve): persons are whole, so a neighbourhood whose LP relaxation stays below the
    # incumbent plus half a person cannot gain one; its MIP is not run, and the search ends exactly where it would.
    from rematch_pipeline.matching import types as types_module

    def run(screened: bool) -> tuple[np.ndarray, list[bool], int]:
        with monkeypatch.context() as m:
            # The screen alone: the try near the LP would find other allocations of as many persons.
            m.setattr(types_module.TypeNeighbourhoods, "_near_relaxation", lambda *args, **kwargs: None)
            if not screened:
                m.setattr(types_module, "relaxation", lambda *args, **kwargs: None)
            mips: list[int] = []

            class Counted(types_module.HighsDirect):
                def solve(self, *args: Any, **kwargs: Any) -> Any:
                    mips.append(1)
                    return super().solve(*args, **kwargs)

            m.setattr(types_module, "HighsDirect", Counted)
            strategy = _strategies()[kind]
            assert isinstance(strategy, TypeNeighbourhoods)  # the guided ones are a kind of them
            rng, steps = np.random.default_rng(3), []
            for _ in range(40):
                hood = strategy.draw(rng, strategy.offers, None)
                if hood is None:
                    break
                steps.append(strategy.solve(hood, 200, FAR).improved)
            return strategy.alloc.counts.copy(), steps, len(mips)

    counts, steps, mips = run(screened=True)
    counts_unscreened, steps_unscreened, mips_unscreened = run(screened=False)
    assert steps == steps_unscreened and np.array_equal(counts, counts_unscreened)
    assert any(steps) and mips_unscreened == len(steps)
    assert mips < mips_unscreened  # the neighbourhoods its LP ruled out
