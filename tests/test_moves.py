"""Quality by single moves and swaps over every eligible pair: what they may change, what they must keep."""

from __future__ import annotations

import numpy as np
import pytest

from rematch_pipeline.config import load_policy, policy_with
from rematch_pipeline.matching.baselines import greedy_by_score
from rematch_pipeline.matching.build import build_model
from rematch_pipeline.matching.data import MatchingData, build_data
from rematch_pipeline.matching.engine import match
from rematch_pipeline.matching.moves import improve_by_moves
from tests.factories import ROUND_DATE, adult, child, household, offer
from tests.test_matching import _scenario

POLICY = load_policy()
SINGLE, FAMILY = (adult(),), (adult(), adult("partner"), child())


def _two_full_offers(first: tuple, second: tuple) -> MatchingData:
    """A at offer X and B at offer Y, each offer with places for exactly the household it holds."""
    hs = [household("A", first), household("B", second)]
    os_ = [offer("05111000", places=len(first)), offer("09162000", places=len(second))]
    return build_data(hs, os_, ROUND_DATE, POLICY)


def _scores(data: MatchingData, rows: list[list[float]]) -> None:
    data.score = np.array(rows, dtype=np.float64)


def test_a_household_moves_to_the_municipality_it_prefers_where_it_still_fits() -> None:
    hs = [household("A", SINGLE)]
    data = build_data(hs, [offer("05111000", places=1), offer("09162000", places=1)], ROUND_DATE, POLICY)
    _scores(data, [[2.0, 5.0]])
    h, o, ended = improve_by_moves(data, np.array([0]), np.array([0]), sweeps=4)
    assert (h.tolist(), o.tolist(), ended) == ([0], [1], "heuristic")


def test_two_households_swap_when_neither_fits_alone_and_both_together_gain() -> None:
    data = _two_full_offers(SINGLE, SINGLE)
    _scores(data, [[1.0, 4.0], [3.0, 2.0]])  # A prefers Y (+3), B prefers X (+1): both offers are full
    h, o, _ = improve_by_moves(data, np.array([0, 1]), np.array([0, 1]), sweeps=4)
    assert dict(zip(h.tolist(), o.tolist(), strict=True)) == {0: 1, 1: 0}


def test_a_swap_that_one_gains_more_than_the_other_loses_is_made() -> None:
    data = _two_full_offers(SINGLE, SINGLE)
    _scores(data, [[1.0, 4.0], [2.0, 3.0]])  # A +3, B -1: the round's quality rises by 2
    h, o, _ = improve_by_moves(data, np.array([0, 1]), np.array([0, 1]), sweeps=4)
    assert dict(zip(h.tolist(), o.tolist(), strict=True)) == {0: 1, 1: 0}


def test_a_swap_that_loses_quality_is_not_made() -> None:
    data = _two_full_offers(SINGLE, SINGLE)
    _scores(data, [[1.0, 2.0], [0.0, 5.0]])  # A +1, B -5
    h, o, ended = improve_by_moves(data, np.array([0, 1]), np.array([0, 1]), sweeps=4)
    assert dict(zip(h.tolist(), o.tolist(), strict=True)) == {0: 0, 1: 1}
    assert ended == "heuristic"


def test_a_swap_that_would_put_a_family_where_one_place_is_left_is_not_made() -> None:
    data = _two_full_offers(FAMILY, SINGLE)  # X has 3 places (the family's), Y one (the single's)
    _scores(data, [[1.0, 9.0], [1.0, 9.0]])
    h, o, _ = improve_by_moves(data, np.array([0, 1]), np.array([0, 1]), sweeps=4)
    assert dict(zip(h.tolist(), o.tolist(), strict=True)) == {0: 0, 1: 1}


def test_a_swap_needs_both_households_eligible_where_the_other_was() -> None:
    data = _two_full_offers(SINGLE, SINGLE)
    _scores(data, [[1.0, 9.0], [9.0, 1.0]])
    data.codes[1, 0] = 1  # B may not go to X (any exclusion)
    h, o, _ = improve_by_moves(data, np.array([0, 1]), np.array([0, 1]), sweeps=4)
    assert dict(zip(h.tolist(), o.tolist(), strict=True)) == {0: 0, 1: 1}


def test_a_household_left_out_joins_where_a_move_freed_room_it_fits() -> None:
    hs = [household("A", SINGLE), household("U", (adult(), adult("partner")))]
    data = build_data(hs, [offer("05111000", places=2), offer("09162000", places=1)], ROUND_DATE, POLICY)
    _scores(data, [[1.0, 5.0], [3.0, 3.0]])  # A at X prefers Y; U, left out, fits X only once A has gone
    h, o, _ = improve_by_moves(data, np.array([0]), np.array([0]), sweeps=4)
    assert dict(zip(h.tolist(), o.tolist(), strict=True)) == {0: 1, 1: 0}


def test_the_passes_are_the_work_limit() -> None:
    data = _two_full_offers(SINGLE, SINGLE)
    _scores(data, [[1.0, 4.0], [3.0, 2.0]])
    h, o, ended = improve_by_moves(data, np.array([0, 1]), np.array([0, 1]), sweeps=0)
    assert (dict(zip(h.tolist(), o.tolist(), strict=True)), ended) == ({0: 0, 1: 1}, "work_limit")


@pytest.mark.parametrize("seed", range(6))
def test_moves_keep_who_is_placed_every_capacity_row_and_eligibility_and_never_lower_quality(seed: int) -> None:
    hs, os_ = _scenario(40)
    data = build_data(hs, os_, ROUND_DATE, POLICY)
    rng = np.random.default_rng(seed)
    data.score = rng.uniform(0, 10, size=data.score.shape)
    data.codes[rng.uniform(size=data.codes.shape) < 0.2] = 1
    h0, o0 = greedy_by_score(data)
    h, o, _ = improve_by_moves(data, h0, o0, sweeps=10)
    assert set(h.tolist()) >= set(h0.tolist())
    assert data.eligible[h, o].all()
    assert data.score[h, o].sum() >= data.score[h0, o0].sum()
    # Capacity as the model states it (its own rows, not the moves' bookkeeping), over every eligible pair.
    every = np.nonzero(data.eligible)
    data.set_pairs(every[0].astype(np.int64), every[1].astype(np.int64))
    model = build_model(data)
    x = np.isin(data.pair_h * len(os_) + data.pair_o, h * len(os_) + o).astype(np.float64)
    assert (model.matrix @ x <= model.upper + 1e-9).all()


def test_a_round_beyond_the_pyomo_size_ends_its_quality_search_with_moves_and_keeps_them() -> None:
    hs, os_ = _scenario(24)
    result = match(hs, os_, ROUND_DATE, policy_with(POLICY, pyomo_max_pairs=0), "R")
    phases = {p["phase"]: p for p in result.stats["phases"]}
    assert phases["quality_moves"]["objective"] >= phases["max_quality_lns"]["objective"] - 1e-9
    assert result.stats["quality"] == pytest.approx(phases["quality_moves"]["objective"])
    assert result.stats["quality_bound"] >= result.stats["quality"] - 1e-6


def test_a_household_that_joins_by_the_moves_is_in_the_round_and_its_persons_counted(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from rematch_pipeline.matching import solve

    real = solve.improve_by_moves
    joined: list[int] = []

    def one_more(data: MatchingData, h: np.ndarray, o: np.ndarray, sweeps: int,
                 deadline: float) -> tuple[np.ndarray, np.ndarray, str]:
        h, o, ended = real(data, h, o, sweeps, deadline)
        out = [u for u in range(len(data.households)) if u not in set(h.tolist()) and data.eligible[u].any()]
        joined.append(out[0])  # as if a move had freed room for it (the fake does not check capacity)
        return np.append(h, out[0]), np.append(o, int(np.argmax(data.eligible[out[0]]))), ended

    monkeypatch.setattr(solve, "improve_by_moves", one_more)
    hs, os_ = _scenario(24)
    result = match(hs, os_, ROUND_DATE, policy_with(POLICY, pyomo_max_pairs=0), "R")
    assert hs[joined[0]].case_id in {a.case_id for a in result.assignments}
    assert result.stats["persons_placed"] == result.persons_placed == sum(a.persons for a in result.assignments)
