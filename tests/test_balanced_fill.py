"""Balanced fill across municipalities: the optional term of the quality phase (policy `balanced_fill_weight`)."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rematch_pipeline.config import load_policy, policy_with
from rematch_pipeline.domain import CapacityOffer, Household, Policy
from rematch_pipeline.matching.backends import HighsDirect, PyomoHighs
from rematch_pipeline.matching.build import build_model
from rematch_pipeline.matching.data import build_data
from rematch_pipeline.matching.engine import match
from rematch_pipeline.matching.fair_share import FairShare, proportional_share
from tests.factories import ROUND_DATE, household, offer
from tests.test_matching import _feasible, brute_force_max_persons, household_st, offer_st, placed

POLICY = load_policy()
NATIONAL = {"pyomo_max_pairs": 0}  # arrays to HiGHS and quality by neighbourhoods, as at national scale


def _run(hs: list[Household], os_: list[CapacityOffer], weight: float, **kw: object):  # type: ignore[no-untyped-def]
    policy: Policy = policy_with(POLICY, balanced_fill_weight=weight, time_limit_s=20.0, **kw)  # type: ignore[arg-type]
    return match(hs, os_, ROUND_DATE, policy, "R-fill")


def _singles_tied_to_first(n: int) -> list[Household]:
    return [household(f"S{i}", ties_ags="05111000") for i in range(n)]


@pytest.mark.parametrize("path", [{}, NATIONAL], ids=["pyomo", "national"])
def test_balanced_fill_spreads_persons_by_places_left_only_when_it_outweighs_preferences(path: dict) -> None:
    # Four singles with ties to A (+4 there); A and B have 4 places each, so each one's share is 2.
    # By hand: all in A scores 16 + 2w (2 within A's share), two and two scores 8 + 4w: the split wins iff w > 4.
    hs, os_ = _singles_tied_to_first(4), [offer("05111000", places=4), offer("09162000", places=4)]
    off = _run(hs, os_, 0.0, **path)
    assert Counter(placed(off).values()) == {"05111000": 4}
    assert "balanced_fill" not in off.stats
    assert off.stats["comparison"]["rematch"]["persons_beyond_share"] == 2.0
    weak = _run(hs, os_, 1.0, **path)
    assert Counter(placed(weak).values()) == {"05111000": 4}
    assert weak.stats["quality"] == pytest.approx(16 + 2 * 1.0)
    strong = _run(hs, os_, 5.0, **path)
    assert Counter(placed(strong).values()) == {"05111000": 2, "09162000": 2}
    assert strong.persons_placed == 4
    assert strong.stats["quality"] == pytest.approx(8 + 4 * 5.0)
    assert strong.stats["balanced_fill"] == {"weight": 5.0, "points": 20.0, "persons_within_share": 4.0,
                                             "shares_of_persons": 4.0}
    assert strong.stats["comparison"]["rematch"]["persons_beyond_share"] == 0.0


@pytest.mark.parametrize("path", [{}, NATIONAL], ids=["pyomo", "national"])
def test_balanced_fill_moves_persons_between_municipalities_outside_the_preferred_kreis(path: dict) -> None:
    # Eight singles with ties to A: +4 in A, +2 in B (same Kreis), 0 in C and D; 4 places each, shares of 2.
    # Weight 5: each person within a share is worth more than the ties, so two go to each (quality 12 + 40).
    hs = _singles_tied_to_first(8)
    os_ = [offer(a, places=4) for a in ("05111000", "05111004", "09162000", "09162004")]
    result = _run(hs, os_, 5.0, **path)
    assert result.persons_placed == 8
    assert Counter(placed(result).values()) == dict.fromkeys((o.ags for o in os_), 2)
    assert result.stats["quality"] == pytest.approx(12 + 40)


def test_balanced_fill_never_costs_a_person() -> None:
    # A family of three needs two rooms, which only A has; balance would send the singles to A instead of B.
    family = household("F", tuple(household("x").members) * 3)
    hs = [family, *_singles_tied_to_first(2)]
    os_ = [offer("05111000", places=4, units=(0, 5, 0, 0)), offer("09162000", places=4, units=(5, 0, 0, 0))]
    for weight in (0.0, 100.0):
        result = _run(hs, os_, weight)
        assert result.persons_placed == 5 == brute_force_max_persons(hs, os_)
        assert placed(result)["F"] == "05111000"


def test_proportional_share_follows_places_left_of_valid_offers() -> None:
    os_ = [offer("05111000", places=6), offer("09162000", places=2),
           offer("09162004", places=8, valid_until=ROUND_DATE.replace(day=1))]  # expired before the round
    data = build_data([household("A")], os_, ROUND_DATE, POLICY)
    assert proportional_share(data, 4.0).tolist() == [3.0, 1.0, 0.0]


def test_a_neighbourhood_counts_the_persons_its_fixed_part_holds_towards_the_share() -> None:
    # One single, offers A (ties: +4) and B, shares of 1 each. Outside the neighbourhood A already holds its
    # share, so a point per person within a share (weight 5) sends the single to B; without that, to A.
    data = build_data([household("S", ties_ags="05111000")], [offer("05111000"), offer("09162000")], ROUND_DATE,
                      POLICY)
    model = build_model(data)
    fair = FairShare(5.0, np.array([1.0, 1.0]))
    chosen = {}
    for name, fixed in (("free", np.zeros(2)), ("A holds its share", np.array([1.0, 0.0]))):
        sub = HighsDirect(model, POLICY, integer=True)
        sub.add_fair_share(fair, data.pair_o, fixed=fixed)
        res = sub.solve("max_quality", model.quality, 10.0, start=np.zeros(model.n_cols))
        assert len(res.x) == model.n_cols  # the share columns are the solver's, not the round's
        chosen[name] = data.offers[int(data.pair_o[np.argmax(res.x)])].ags
        # Free: 4 + 5 at A. Fixed: A's share is taken, so 5 at B against 4 at A (no constant for the fixed part).
        assert res.objective == pytest.approx(9.0 if name == "free" else 5.0)
    assert chosen == {"free": "05111000", "A holds its share": "09162000"}


def test_a_share_the_fixed_part_fills_in_part_leaves_only_the_rest_to_earn() -> None:
    # A's share is 1.5 and the fixed part holds 1 there: a single at A earns 4 (ties) + 5 * 0.5, at B 5 * 1.
    data = build_data([household("S", ties_ags="05111000")], [offer("05111000"), offer("09162000")], ROUND_DATE,
                      POLICY)
    model = build_model(data)
    fair = FairShare(5.0, np.array([1.5, 1.0]))
    offers, room = fair.room(data.pair_o, np.array([1.0, 0.0]))
    assert offers.tolist() == [0, 1] and room.tolist() == [0.5, 1.0]
    sub = HighsDirect(model, POLICY, integer=True)
    sub.add_fair_share(fair, data.pair_o, fixed=np.array([1.0, 0.0]))
    res = sub.solve("max_quality", model.quality, 10.0, start=(data.pair_o == 0).astype(np.float64))
    assert data.offers[int(data.pair_o[np.argmax(res.x)])].ags == "05111000"
    assert res.objective == pytest.approx(4.0 + 2.5)


def test_no_places_left_anywhere_adds_no_share_column_and_earns_nothing() -> None:
    expired = ROUND_DATE.replace(day=1)
    os_ = [offer("05111000", valid_until=expired), offer("09162000", valid_until=expired)]
    data = build_data([household("A")], os_, ROUND_DATE, POLICY)
    fair = FairShare.of(data, 3.0, 5.0)
    assert fair.share.tolist() == [0.0, 0.0]
    offers, room = fair.room(np.array([0, 1]))
    assert len(offers) == len(room) == 0
    assert fair.points(np.array([0, 1]), np.array([1.0, 1.0]), np.array([1.0, 0.0])) == 0.0
    # A model over those pairs (built by hand: the offers are not eligible) takes the term with no column.
    data.set_pairs(np.array([0, 0]), np.array([0, 1]))
    model = build_model(data)
    sub = HighsDirect(model, POLICY, integer=True)
    sub.add_fair_share(fair, data.pair_o)
    assert sub.h.getNumCol() == model.n_cols
    assert len(sub.solve("max_quality", model.quality, 10.0, start=np.zeros(model.n_cols)).x) == model.n_cols


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs=st.lists(household_st, min_size=1, max_size=5, unique_by=lambda h: h.case_id),
       os_=st.lists(offer_st, min_size=1, max_size=3, unique_by=lambda o: o.ags),
       weight=st.sampled_from([0.5, 5.0, 100.0]), national=st.booleans())
def test_rounds_with_balanced_fill_respect_every_rule_and_place_the_maximum(
        hs: list[Household], os_: list[CapacityOffer], weight: float, national: bool) -> None:
    result = _run(hs, os_, weight, **(NATIONAL if national else {}))
    assert len({a.case_id for a in result.assignments}) == len(result.assignments)
    for o in os_:
        group = [h for h in hs if placed(result).get(h.case_id) == o.ags]
        assert _feasible(group, o, ROUND_DATE)
    assert result.persons_placed == brute_force_max_persons(hs, os_)
    if result.data is not None and result.assignments:
        # The reported points are those of the placement made, recomputed here from the shares.
        ours = result.stats["comparison"]["rematch"]
        share = proportional_share(result.data, float(ours["persons_placed"]))
        at = Counter()
        for a in result.assignments:
            at[next(j for j, o in enumerate(result.data.offers) if o.offer_id == a.offer_id)] += a.persons
        within = sum(min(at[j], s) for j, s in enumerate(share))
        assert result.stats["balanced_fill"]["points"] == pytest.approx(weight * within, abs=1e-5)
        assert ours["persons_beyond_share"] == pytest.approx(ours["persons_placed"] - within, abs=1e-3)


def _best_by_brute_force(data, weight: float) -> float:  # type: ignore[no-untyped-def]
    """Among the placements of the most persons, the best match score plus balanced-fill points, by trying all."""
    n_off = len(data.offers)
    results = []
    for choice in itertools.product(range(n_off + 1), repeat=len(data.households)):
        groups = [[h for h, c in zip(data.households, choice, strict=True) if c == o] for o in range(n_off)]
        if not all(_feasible(g, o, ROUND_DATE) for g, o in zip(groups, data.offers, strict=True)):
            continue
        if any(c < n_off and not data.eligible[i, c] for i, c in enumerate(choice)):
            continue
        persons = sum(int(data.hh.persons[i]) for i, c in enumerate(choice) if c < n_off)
        at = np.bincount([c for c in choice if c < n_off], weights=[data.hh.persons[i] for i, c in enumerate(choice)
                                                                   if c < n_off], minlength=n_off)
        results.append((persons, choice, at))
    most = max(p for p, _, _ in results)
    share = proportional_share(data, float(most))
    return max(sum(float(data.score[i, c]) for i, c in enumerate(choice) if c < n_off)
               + weight * float(np.minimum(at, share).sum()) for p, choice, at in results if p == most)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs=st.lists(household_st, min_size=1, max_size=4, unique_by=lambda h: h.case_id),
       os_=st.lists(offer_st, min_size=2, max_size=3, unique_by=lambda o: o.ags),
       weight=st.sampled_from([0.5, 5.0, 100.0]))
def test_a_small_round_with_balanced_fill_is_within_its_gap_of_the_best_by_brute_force(
        hs: list[Household], os_: list[CapacityOffer], weight: float) -> None:
    result = _run(hs, os_, weight)
    if result.data is None or not result.assignments:
        return
    best = _best_by_brute_force(result.data, weight)
    # HiGHS holds the continuous share columns to its feasibility tolerance (1e-7), worth up to 1e-5 at weight 100.
    assert result.stats["quality"] <= best + 1e-4
    assert result.stats["quality"] >= best * (1 - POLICY.solver.mip_rel_gap) - 1e-4


@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf")])
def test_a_negative_or_not_finite_balanced_fill_weight_is_refused_by_name(weight: float) -> None:
    with pytest.raises(ValueError, match="balanced_fill_weight"):
        load_policy(overrides={"balanced_fill_weight": weight})
    assert load_policy().balanced_fill_weight == 0.0  # off unless a coordination team switches it on


@pytest.mark.parametrize("order", ["persons row first", "share term first"])
def test_the_pyomo_quality_objective_with_balanced_fill_does_not_depend_on_call_order(order: str) -> None:
    # Two singles tied to A (+4 each), two offers of 2 places: shares of 1 each, weight 5 splits them (4 + 10).
    data = build_data(_singles_tied_to_first(2), [offer("05111000", places=2), offer("09162000", places=2)],
                      ROUND_DATE, POLICY)
    model = build_model(data)
    backend = PyomoHighs(model, POLICY)
    fair = FairShare.of(data, 2.0, 5.0)
    if order == "persons row first":
        backend.add_min_persons(2)
        backend.add_fair_share(fair, data.pair_o)
    else:
        backend.add_fair_share(fair, data.pair_o)
        backend.add_min_persons(2)
    res = backend.solve("max_quality", model.quality, 10.0, start=(data.pair_o == 0).astype(np.float64))
    assert res.objective == pytest.approx(4.0 + 10.0)
    assert sorted(data.offers[int(o)].ags for o in data.pair_o[res.x > 0.5]) == ["05111000", "09162000"]
