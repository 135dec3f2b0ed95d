"""Matching engine rules: hard needs, capacity, never splitting, maximal persons, explanations, determinism."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import date

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rematch_pipeline.config import load_policy, policy_with
from rematch_pipeline.domain import (
    CAPACITY_DIMENSIONS,
    CapacityOffer,
    Consumption,
    Household,
    UnmatchedReason,
    demand_of,
)
from rematch_pipeline.matching.baselines import evaluate, greedy_by_score
from rematch_pipeline.matching.data import build_data
from rematch_pipeline.matching.engine import match
from rematch_pipeline.matching.reasons import words
from tests.factories import ROUND_DATE, adult, child, household, offer

POLICY = load_policy()


def run(hs: list[Household], os_: list[CapacityOffer], **kw: object):  # type: ignore[no-untyped-def]
    return match(hs, os_, ROUND_DATE, POLICY, "R-test", **kw)  # type: ignore[arg-type]


def placed(result) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {a.case_id: a.ags for a in result.assignments}


def test_persons_placed_is_maximal_not_households() -> None:
    # 5 places: by hand the optimum is the household of 4 plus the single (5), not 2+2+1 households-first.
    hs = [household("A", (adult(), adult("spouse"), child(), child())), household("B", (adult(), child())),
          household("C", (adult(), child())), household("D", (adult(),))]
    result = run(hs, [offer("05111000", places=5)])
    assert result.persons_placed == 5
    assert result.stats["lp_bound_persons"] >= 5 and result.stats["persons_proven_maximal"]


def test_wheelchair_household_only_goes_where_accessible_units_exist() -> None:
    hs = [household("A", (adult(mobility_impaired=True),))]
    result = run(hs, [offer("05111000", units_wheelchair=0), offer("05170008", units_wheelchair=1)])
    assert placed(result) == {"A": "05170008"}


def test_medical_need_excludes_municipalities_without_the_service() -> None:
    hs = [household("A", medical_needs=("dialysis",))]
    result = run(hs, [offer("05111000"), offer("05170008", medical_services=frozenset({"oncology"}))])
    assert result.assignments == []
    assert "dialysis" in result.unmatched[0].reason
    assert result.unmatched[0].reason.startswith("no eligible municipality")


def test_unmatched_reasons_name_health_and_disability_needs_only_with_consent() -> None:
    # The reason goes into assignments.csv, round.json, the audit export and the round report (contract §1).
    offers = [offer("05111000"), offer("05170008", medical_services=frozenset({"oncology"}))]
    wheelchair = (adult(mobility_impaired=True),)
    hs = [household("A", medical_needs=("dialysis",), consent_health_share=False),
          household("B", wheelchair, consent_health_share=False),
          household("C", medical_needs=("dialysis",), consent_health_share=True)]
    unmatched = run(hs, offers).unmatched
    reasons = {u.case_id: u.reason for u in unmatched}
    why = {u.case_id: u.why for u in unmatched}
    for case in ("A", "B"):
        assert "health or disability need not met" in reasons[case], reasons[case]
        assert not any(w in reasons[case] for w in ("dialysis", "medical", "wheelchair", "accessible"))
        # The codes stored beside the words (unmatched.reason_detail) say no more than the words.
        assert why[case] == UnmatchedReason("no_eligible", 2, (("health_need", 2),))
    assert "medical service not offered: dialysis" in reasons["C"]
    assert why["C"] == UnmatchedReason("no_eligible", 2, (("no_medical", 2),), ("dialysis",))
    # Capacity running out in the wheelchair dimension is a disability detail too.
    (left,) = run([household(c, wheelchair, consent_health_share=False) for c in "DE"],
                  [offer("05111000", units_wheelchair=1)]).unmatched
    assert "units for a health or disability need" in left.reason and "wheelchair" not in left.reason, left.reason
    assert left.why == UnmatchedReason("capacity", 1, (("units_health_need", 1),)) and left.reason == words(left.why)


def test_pets_need_pet_allowed_units() -> None:
    hs = [household("A", pets="dog")]
    result = run(hs, [offer("05111000"), offer("09162000", units_pets_allowed=2)])
    assert placed(result) == {"A": "09162000"}


def test_declined_municipality_is_never_offered_again() -> None:
    hs = [household("A")]
    result = run(hs, [offer("05111000"), offer("09162000")], declined={"A": {"05111000"}})
    assert placed(result) == {"A": "09162000"}


def test_offer_outside_its_validity_is_not_used() -> None:
    hs = [household("A")]
    expired = offer("05111000", valid_from=date(2026, 1, 1), valid_until=date(2026, 6, 30))
    result = run(hs, [expired])
    assert result.assignments == [] and "not valid" in result.unmatched[0].reason


def test_room_classes_follow_halls_condition() -> None:
    # Two 4-person households need >=3 rooms each; only one 3-room unit and many 1-room units.
    big = (adult(), adult("spouse"), child(), child())
    hs = [household("A", big), household("B", big), household("C", (adult(),))]
    result = run(hs, [offer("05111000", places=20, units=(5, 0, 1, 0))])
    rooms = [a.case_id for a in result.assignments if a.case_id in ("A", "B")]
    assert len(rooms) == 1 and "C" in placed(result)
    assert any("rooms" in u.reason for u in result.unmatched)


def test_kita_capacity_is_a_hard_bound() -> None:
    toddler = child(birth_year=ROUND_DATE.year - 1)
    hs = [household("A", (adult(), toddler)), household("B", (adult(), toddler))]
    result = run(hs, [offer("05111000", kita_u3=1)])
    assert len(result.assignments) == 1
    assert "Kita U3" in result.unmatched[0].reason


def test_earlier_accepted_matches_consume_capacity() -> None:
    hs = [household("A", (adult(), adult("spouse")))]
    used = {"OF-05111000": Consumption(dimensions={"places_persons": 9}, rooms_needed=(1,))}
    result = run(hs, [offer("05111000", places=10)], consumed=used)
    assert result.assignments == []


def test_ties_to_same_municipality_win_between_equal_placements() -> None:
    hs = [household("A", ties_ags="09162000")]
    result = run(hs, [offer("05111000"), offer("09162000")])
    assert placed(result) == {"A": "09162000"}
    assert result.assignments[0].score_terms["ties"] == POLICY.ties_same_municipality_bonus
    assert result.assignments[0].preference_rank == 1


def test_every_assignment_carries_its_score_breakdown() -> None:
    hs = [household("A", weights={"work": 5, "education": 0, "community": 3, "healthcare": 0, "housing": 0,
                                  "culture": 0}, members=(adult(occupation="it"),))]
    result = run(hs, [offer("05111000", job_sectors_shortage=frozenset({"it"}), ukrainian_community="large")])
    terms = result.assignments[0].score_terms
    assert terms["work"] == 5.0 and terms["community"] == 3.0
    assert abs(sum(terms.values()) - result.assignments[0].score) < 1e-6


def test_empty_round_is_reported_in_words() -> None:
    result = run([], [offer("05111000")])
    assert result.status == "empty" and "no households" in result.message
    result = run([household("A")], [])
    assert result.status == "empty" and result.unmatched[0].reason.startswith("no eligible municipality")


def test_all_ineligible_round_does_not_crash() -> None:
    hs = [household("A", wheelchair_access=True), household("B", pets="cat")]
    result = run(hs, [offer("05111000")])
    assert result.status == "empty" and len(result.unmatched) == 2


def test_same_input_gives_identical_assignments() -> None:
    hs = [household(f"H{i}", (adult(),) * (1 + i % 4)) for i in range(30)]
    os_ = [offer("05111000", places=20), offer("09162000", places=15), offer("01002000", places=12)]
    first = run(hs, os_)
    second = run(list(reversed(hs)), list(reversed(os_)))
    assert first.assignments == second.assignments


# --- property-based: random small instances against an independent brute force -------------------------------

def _units(o: CapacityOffer) -> list[int]:
    return [1] * o.units_1_room + [2] * o.units_2_rooms + [3] * o.units_3_rooms + [4] * o.units_4plus_rooms


def _rooms_fit(needs: list[int], units: list[int]) -> bool:
    # Independent of the model's cumulative constraints: try every assignment of households to actual units.
    if len(needs) > len(units):
        return False
    return any(all(u >= n for n, u in zip(needs, perm, strict=False))
               for perm in itertools.permutations(units, len(needs)))


def _feasible(group: list[Household], o: CapacityOffer, day: date) -> bool:
    if not group:
        return True
    dem = [demand_of(h, day, POLICY) for h in group]
    if not o.is_valid_on(day):
        return False
    for h in group:
        if h.hard_medical_needs - o.medical_services:
            return False
    for d in CAPACITY_DIMENSIONS:
        if sum(x.of(d) for x in dem) > o.capacity(d):
            return False
    return _rooms_fit([x.rooms_needed for x in dem], _units(o))


def brute_force_max_persons(hs: list[Household], os_: list[CapacityOffer],
                            declined: dict[str, set[str]] | None = None,
                            earlier: dict[str, list[Household]] | None = None) -> int:
    """Try every assignment; earlier accepted households sit in their offer's group as fixed occupants."""
    declined, earlier = declined or {}, earlier or {}
    best = 0
    for choice in itertools.product(range(len(os_) + 1), repeat=len(hs)):  # index len(os_) = unmatched
        if any(c < len(os_) and os_[c].ags in declined.get(h.case_id, set())
               for h, c in zip(hs, choice, strict=True)):
            continue
        groups = [[h for h, c in zip(hs, choice, strict=True) if c == o] for o in range(len(os_))]
        if all(_feasible(g + earlier.get(o.offer_id, []), o, ROUND_DATE) if g else True
               for g, o in zip(groups, os_, strict=True)):
            best = max(best, sum(h.persons for h, c in zip(hs, choice, strict=True) if c < len(os_)))
    return best


member_st = st.sampled_from([adult(), adult("spouse"), child(), child(ROUND_DATE.year - 1),
                             adult("parent", birth_year=1950), adult("sibling", mobility_impaired=True)])
household_st = st.builds(
    lambda i, ms, med, pets: household(f"H{i}", (adult(), *ms), medical_needs=med, pets=pets),
    st.integers(0, 10**6), st.lists(member_st, max_size=4),
    st.sampled_from([("none",), ("none",), ("diabetes_care",)]), st.sampled_from(["none", "none", "cat"]),
)
offer_st = st.builds(
    lambda places, units, wc, pets, kita, med: offer(
        f"0511{places:04d}", places=places, units=units, units_wheelchair=wc, units_pets_allowed=pets,
        kita_u3=kita, medical_services=med),
    st.integers(1, 9), st.tuples(*[st.integers(0, 2)] * 4), st.integers(0, 1), st.integers(0, 1),
    st.integers(0, 1), st.sampled_from([frozenset(), frozenset({"diabetes_care"})]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs=st.lists(household_st, min_size=1, max_size=5, unique_by=lambda h: h.case_id),
       os_=st.lists(offer_st, min_size=1, max_size=2, unique_by=lambda o: o.ags))
def test_random_rounds_respect_every_rule_and_place_the_maximum(hs: list[Household],
                                                                os_: list[CapacityOffer]) -> None:
    result = run(hs, os_)
    by_ags = {o.ags: o for o in os_}
    # Never split: each household appears at most once, with all its persons.
    assert len({a.case_id for a in result.assignments}) == len(result.assignments)
    for a in result.assignments:
        assert a.persons == next(h.persons for h in hs if h.case_id == a.case_id)
    # No capacity dimension exceeded and no hard need violated, checked independently of the model.
    for ags, o in by_ags.items():
        group = [h for h in hs if placed(result).get(h.case_id) == ags]
        assert _feasible(group, o, ROUND_DATE)
        for h in group:
            assert not h.needs_accessible_unit or o.units_wheelchair > 0
            assert not h.needs_pet_unit or o.units_pets_allowed > 0
    # Persons placed equals the brute-force maximum.
    assert result.persons_placed == brute_force_max_persons(hs, os_)
    # And the greedy baseline never beats it.
    assert result.data is None or evaluate(result.data, *greedy_by_score(result.data))["persons_placed"] \
        <= result.persons_placed


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs=st.lists(household_st, min_size=1, max_size=4, unique_by=lambda h: h.case_id),
       os_=st.lists(offer_st, min_size=1, max_size=2, unique_by=lambda o: o.ags),
       declines=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1)), max_size=3),
       occupant=st.lists(st.sampled_from([None, (adult(),), (adult(), child())]), min_size=2, max_size=2))
def test_random_rounds_with_declines_and_earlier_acceptances_respect_every_rule(
        hs: list[Household], os_: list[CapacityOffer], declines: list[tuple[int, int]],
        occupant: list[tuple | None]) -> None:
    declined: dict[str, set[str]] = {}
    for hi, oi in declines:
        if hi < len(hs) and oi < len(os_):
            declined.setdefault(hs[hi].case_id, set()).add(os_[oi].ags)
    # Earlier accepted households: what they consume is passed to the engine, and sits in the brute force's groups.
    earlier = {o.offer_id: [household(f"old-{o.ags}", members)] for o, members in zip(os_, occupant, strict=False)
               if members is not None}
    consumed = {}
    for oid, olds in earlier.items():
        dem = [demand_of(h, ROUND_DATE, POLICY) for h in olds]
        consumed[oid] = Consumption(dimensions={d: sum(x.of(d) for x in dem) for d in CAPACITY_DIMENSIONS},
                                    rooms_needed=tuple(x.rooms_needed for x in dem))
    result = run(hs, os_, declined=declined, consumed=consumed)
    for a in result.assignments:
        assert a.ags not in declined.get(a.case_id, set())
    for o in os_:
        group = [h for h in hs if placed(result).get(h.case_id) == o.ags]
        assert not group or _feasible(group + earlier.get(o.offer_id, []), o, ROUND_DATE)
    assert result.persons_placed == brute_force_max_persons(hs, os_, declined, earlier)


def test_build_data_orders_inputs_canonically() -> None:
    hs = [household("B"), household("A")]
    data = build_data(hs, [offer("09162000"), offer("05111000")], ROUND_DATE, POLICY)
    assert [h.case_id for h in data.households] == ["A", "B"]
    assert [o.ags for o in data.offers] == ["05111000", "09162000"]


# --- solver interfaces, pricing, planning report, baselines -----------------------------------------------------

def _scenario(n: int) -> tuple[list[Household], list[CapacityOffer]]:
    hs = [household(f"H{i:03d}", (adult(occupation="it" if i % 3 else "retail"),) + (child(2015 + i % 10),) * (i % 4),
                    ties_ags="09162000" if i % 7 == 0 else None,
                    weights={"work": i % 6, "education": 3, "community": 2, "healthcare": 1, "housing": 2,
                             "culture": i % 5})
          for i in range(n)]
    os_ = [offer("05111000", places=14, units=(2, 2, 1, 1), job_sectors_shortage=frozenset({"it"})),
           offer("09162000", places=10, units=(1, 2, 1, 0), ukrainian_community="large"),
           offer("01002000", places=9, units=(3, 1, 0, 0), kita_u3=0, school_primary=2),
           offer("03101000", places=8, units=(1, 1, 1, 1), settlement_type="big_city")]
    return hs, os_


def test_pyomo_and_direct_highs_interfaces_agree() -> None:
    hs, os_ = _scenario(24)
    via_pyomo = match(hs, os_, ROUND_DATE, POLICY, "R")
    direct = match(hs, os_, ROUND_DATE, policy_with(POLICY, pyomo_max_pairs=0), "R")
    assert via_pyomo.stats["interface"] == "pyomo" and direct.stats["interface"] == "highspy"
    assert via_pyomo.persons_placed == direct.persons_placed
    tolerance = POLICY.solver.mip_rel_gap * via_pyomo.stats["quality"] + 1e-6
    assert abs(via_pyomo.stats["quality"] - direct.stats["quality"]) <= tolerance


def test_pruned_pairs_are_priced_back_in_when_they_can_place_more_persons() -> None:
    import time

    from rematch_pipeline.matching.solve import price_out

    # Everyone prefers München (ties); with one candidate each, only pricing finds room elsewhere.
    hs = [household(f"H{i}", ties_ags="09162000") for i in range(6)]
    os_ = [offer("09162000", places=2, units=(2, 0, 0, 0)), offer("05111000", places=8)]
    policy = policy_with(POLICY, candidates_per_household=1)
    data = build_data(hs, os_, ROUND_DATE, policy)
    assert data.n_pairs == 6
    bound = price_out(data, policy, time.perf_counter() + 30)
    assert bound.added > 0 and bound.rounds > 1
    assert float(bound.model.persons @ bound.lp.x) >= 6 - 1e-6
    assert bound.persons >= 6 - 1e-6
    pruned = match(hs, os_, ROUND_DATE, policy, "R")
    assert pruned.persons_placed == 6
    assert pruned.stats["persons_proven_maximal"]


def test_planning_report_names_the_binding_capacity() -> None:
    toddler = child(birth_year=ROUND_DATE.year - 1)
    hs = [household("A", (adult(), toddler)), household("B", (adult(), toddler))]
    result = run(hs, [offer("05111000", kita_u3=1)])
    assert result.planning and result.planning[0]["ags"] == "05111000"
    assert result.planning[0]["extra_capacity"][0]["capacity"] == "+1 Kita U3 place"


def test_baselines_are_reported_beside_the_round_and_ours_violates_no_hard_need() -> None:
    hs, os_ = _scenario(24)
    comparison = run(hs, os_).stats["comparison"]
    assert set(comparison) == {"rematch", "state_quota", "greedy_by_score"}
    assert comparison["rematch"]["hard_need_violations"] == 0
    assert comparison["rematch"]["capacity_violations"] == 0
    assert comparison["rematch"]["persons_placed"] >= comparison["greedy_by_score"]["persons_placed"]


# --- rules found in review: bounds, fallbacks, ranks, nested rooms, policy table, malformed ties ---------------

def test_lp_bound_never_exceeds_the_pool_and_a_full_placement_is_proven() -> None:
    from rematch_pipeline.contract import WEIGHT_ASPECTS

    hs = [household(f"H{i:04d}", weights=dict.fromkeys(WEIGHT_ASPECTS, 5)) for i in range(1200)]
    os_ = [offer(f"05{j:03d}000", places=100, units=(100, 0, 0, 0), ukrainian_community="large") for j in range(30)]
    result = match(hs, os_, ROUND_DATE, policy_with(POLICY, candidates_per_household=5), "R")
    assert result.persons_placed == 1200
    assert result.stats["lp_bound_persons"] <= result.stats["persons_in_pool"]
    assert result.stats["persons_proven_maximal"]


def test_an_lp_that_stops_early_still_gives_a_valid_lagrangian_bound(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rematch_pipeline.matching import solve
    from rematch_pipeline.matching.backends import SolveError

    def stopped(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise SolveError("lp_persons: stopped (time_limit) before optimality; no bound")

    hs, os_ = _scenario(24)
    optimum = run(hs, os_)
    assert optimum.stats["persons_proven_maximal"]
    monkeypatch.setattr(solve, "solve_lp", stopped)
    result = match(hs, os_, ROUND_DATE, policy_with(POLICY, candidates_per_household=1), "R")
    assert result.stats["phases"][0]["phase"] == "lagrangian_bound"
    assert result.stats["lp_bound_persons"] >= optimum.persons_placed
    assert result.stats["persons_proven_maximal"] == (result.persons_placed >= int(result.stats["lp_bound_persons"]))
    assert len(result.assignments) + len(result.unmatched) == 24


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs=st.lists(household_st, min_size=1, max_size=5, unique_by=lambda h: h.case_id),
       os_=st.lists(offer_st, min_size=1, max_size=2, unique_by=lambda o: o.ags),
       seed=st.integers(0, 2**16), scale=st.sampled_from([0.0, 0.3, 1.0, 4.0]))
def test_lagrangian_bound_from_any_nonnegative_prices_is_never_below_the_optimum(
        hs: list[Household], os_: list[CapacityOffer], seed: int, scale: float) -> None:
    import numpy as np

    from rematch_pipeline.matching.bound import Prices, lagrangian_bound

    data = build_data(hs, os_, ROUND_DATE, POLICY)
    rng = np.random.default_rng(seed)
    prices = Prices(scale * rng.random((len(os_), len(CAPACITY_DIMENSIONS))), scale * rng.random((len(os_), 4)))
    bound, _ = lagrangian_bound(data, prices)
    assert bound >= brute_force_max_persons(hs, os_) - 1e-9


def test_lp_prices_give_a_bound_over_pairs_the_model_never_saw() -> None:
    # One candidate per household: the LP sees a sixth of the pairs, the bound still covers all of them.
    hs, os_ = _scenario(24)
    optimum = run(hs, os_)
    pruned = match(hs, os_, ROUND_DATE, policy_with(POLICY, candidates_per_household=1), "R")
    assert pruned.stats["lp_bound_persons"] >= optimum.persons_placed
    assert pruned.stats["lp_bound_persons"] <= optimum.stats["lp_bound_persons"] + 1.0


def test_a_failed_pyomo_solve_keeps_the_allocation_found_before_it(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rematch_pipeline.matching import backends
    from rematch_pipeline.matching.backends import SolveError

    def no_solution(self, phase, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise SolveError(f"{phase}: the solver stopped with maxTimeLimit and no usable solution")

    hs, os_ = _scenario(24)
    exact = run(hs, os_)
    monkeypatch.setattr(backends.PyomoHighs, "solve", no_solution)
    result = run(hs, os_)
    greedy = result.stats["comparison"]["greedy_by_score"]["persons_placed"]
    assert exact.persons_placed >= result.persons_placed >= greedy > 0  # the allocation over household types
    assert len(result.assignments) + len(result.unmatched) == 24
    assert result.stats["comparison"]["rematch"]["capacity_violations"] == 0
    # Proven only by the bound, as no exact solve finished.
    assert result.stats["persons_proven_maximal"] == (result.persons_placed >= int(result.stats["lp_bound_persons"]))


def test_preference_rank_counts_municipalities_and_ties_share_the_best_rank() -> None:
    hs = [household(f"H{i}") for i in range(3)]  # all weights 0: indifferent between three equal offers
    result = run(hs, [offer("05111000"), offer("05112000"), offer("05113000")])
    assert {a.preference_rank for a in result.assignments} == {1}
    two_offers_same_town = [offer("05111000", places=1, units=(1, 0, 0, 0)),
                            dataclasses.replace(offer("05111000", places=1, units=(1, 0, 0, 0)), offer_id="OF-2")]
    result = run([household("A", ties_ags="05111000"), household("B", ties_ags="05111000")], two_offers_same_town)
    assert [a.preference_rank for a in result.assignments] == [1, 1]


def test_a_filled_smaller_room_class_leaves_no_unit_for_a_larger_need() -> None:
    # Units: one 1-room and one 3-room; two earlier accepted singles hold both. A 3-person household needs 2 rooms.
    used = {"OF-05111000": Consumption(dimensions={"places_persons": 2}, rooms_needed=(1, 1))}
    hs = [household("A", (adult(), adult("spouse"), child()))]
    result = run(hs, [offer("05111000", places=10, units=(1, 0, 1, 0))], consumed=used)
    assert result.assignments == []
    assert "rooms" in result.unmatched[0].reason and result.unmatched[0].reason.startswith("no eligible")


def test_room_table_order_does_not_matter_and_unknown_classes_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from rematch_pipeline.config import load_policy as load
    from rematch_pipeline.domain import rooms_needed

    shuffled = load(overrides={"rooms_by_persons": [[6, 4], [1, 1], [4, 3], [3, 2]]})
    assert [rooms_needed(n, shuffled) for n in range(1, 9)] == [rooms_needed(n, POLICY) for n in range(1, 9)]
    with pytest.raises(ValueError, match="room classes"):
        load(overrides={"rooms_by_persons": [[1, 1], [8, 5]]})


def test_malformed_ties_ags_gives_no_bonus_and_no_crash() -> None:
    for bad in ("0916200²", " 09162000", "9162000"):
        result = run([household("A", ties_ags=bad)], [offer("09162000")])
        assert result.assignments[0].score_terms["ties"] == 0.0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs=st.lists(household_st, min_size=1, max_size=5, unique_by=lambda h: h.case_id),
       os_=st.lists(offer_st, min_size=1, max_size=2, unique_by=lambda o: o.ags))
def test_neighbourhood_search_without_an_lp_respects_every_rule_and_never_loses_to_greedy(
        hs: list[Household], os_: list[CapacityOffer]) -> None:
    from unittest import mock

    from rematch_pipeline.matching import solve
    from rematch_pipeline.matching.backends import SolveError

    def stopped(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise SolveError("lp_persons: stopped (time_limit) before optimality; no bound")

    # National-scale path on a small round with no LP in time: arrays to HiGHS, neighbourhood search.
    policy = policy_with(POLICY, pyomo_max_pairs=0, time_limit_s=5.0)
    with mock.patch.object(solve, "solve_lp", stopped):
        result = match(hs, os_, ROUND_DATE, policy, "R")
    if result.stats.get("phases"):  # a round with no eligible pair is decided without a solve
        assert result.stats["phases"][0]["phase"] == "lagrangian_bound"
        assert {"max_persons_lns", "max_quality_lns"} <= {p["phase"] for p in result.stats["phases"]}
    assert len({a.case_id for a in result.assignments}) == len(result.assignments)
    for o in os_:
        group = [h for h in hs if placed(result).get(h.case_id) == o.ags]
        assert _feasible(group, o, ROUND_DATE)
    greedy = result.stats.get("comparison", {}).get("greedy_by_score", {}).get("persons_placed", 0)
    assert greedy <= result.persons_placed <= brute_force_max_persons(hs, os_)
    # With at most four offers every neighbourhood is the whole round: the search finds the maximum.
    assert result.persons_placed == brute_force_max_persons(hs, os_)


def test_neighbourhood_search_without_an_lp_frees_the_offer_where_households_can_make_room() -> None:
    from unittest import mock

    from rematch_pipeline.matching import solve
    from rematch_pipeline.matching.backends import SolveError

    def stopped(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise SolveError("lp_persons: stopped (time_limit) before optimality; no bound")

    # Greedy puts H0 in the first offer's only unit and H1, H2 in the second's two units. H3 fits only the second
    # (diabetes care), where nobody else is left to place: the first offer has no unplaced person who could go
    # there. The maximum needs both offers in one neighbourhood: H0 out, H2 to the first offer, H3 in its unit.
    two = (adult(), adult("spouse"))
    hs = [household("H0"), household("H1", two), household("H2", two),
          household("H3", two, medical_needs=("diabetes_care",))]
    alike = dict(units_wheelchair=0, units_pets_allowed=0, kita_u3=0)
    os_ = [offer("05110002", places=2, units=(0, 0, 0, 1), medical_services=frozenset(), **alike),
           offer("05110004", places=4, units=(0, 0, 0, 2), medical_services=frozenset({"diabetes_care"}), **alike)]
    policy = policy_with(POLICY, pyomo_max_pairs=0, time_limit_s=5.0)
    with mock.patch.object(solve, "solve_lp", stopped):
        result = match(hs, os_, ROUND_DATE, policy, "R")
    assert "max_persons_lns" in {p["phase"] for p in result.stats["phases"]}
    assert brute_force_max_persons(hs, os_) == 6
    assert result.persons_placed == 6
    assert placed(result) == {"H2": "05110002", "H1": "05110004", "H3": "05110004"}
    for o in os_:
        assert _feasible([h for h in hs if placed(result).get(h.case_id) == o.ags], o, ROUND_DATE)


# --- national scale: the persons problem over household types ------------------------------------------------

LARGE = policy_with(POLICY, pyomo_max_pairs=0, time_limit_s=10.0)  # every round takes the national path


def _same_twice(hs: list[Household]) -> list[Household]:
    """Each household and an identical twin (same members, needs and so eligibility): types of two."""
    return [*hs, *(dataclasses.replace(h, case_id=f"{h.case_id}-twin") for h in hs)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs=st.lists(household_st, min_size=1, max_size=3, unique_by=lambda h: h.case_id),
       os_=st.lists(offer_st, min_size=1, max_size=2, unique_by=lambda o: o.ags),
       declines=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 1)), max_size=2))
def test_household_types_place_the_brute_force_maximum_and_respect_every_rule(
        hs: list[Household], os_: list[CapacityOffer], declines: list[tuple[int, int]]) -> None:
    hs = _same_twice(hs)
    declined: dict[str, set[str]] = {}
    for hi, oi in declines:
        if hi < len(hs) and oi < len(os_):
            declined.setdefault(hs[hi].case_id, set()).add(os_[oi].ags)
    result = match(hs, os_, ROUND_DATE, LARGE, "R", declined=declined)
    if result.stats.get("phases"):
        assert "max_persons_types" in {p["phase"] for p in result.stats["phases"]}
    assert len({a.case_id for a in result.assignments}) == len(result.assignments)  # never split
    for a in result.assignments:
        assert a.ags not in declined.get(a.case_id, set())
    for o in os_:
        assert _feasible([h for h in hs if placed(result).get(h.case_id) == o.ags], o, ROUND_DATE)
    best = brute_force_max_persons(hs, os_, declined)
    assert result.persons_placed == best
    assert result.stats["lp_bound_persons"] >= best - 1e-6  # the type LP bounds every eligible pair


def test_households_with_equal_needs_and_eligibility_form_one_type() -> None:
    import numpy as np

    from rematch_pipeline.matching.types import household_types

    hs = [household("A"), household("B"), household("C", (adult(), child())), household("D", pets="cat")]
    data = build_data(hs, [offer("05111000"), offer("05112000", units_pets_allowed=0)], ROUND_DATE, POLICY)
    types = household_types(data)
    assert types.n_types == 3  # A and B alike; C needs more; D may not go where pets are not allowed
    assert sorted(np.concatenate(types.members).tolist()) == list(range(4))  # a partition of the households
    assert sorted(types.data.weight.tolist()) == [1.0, 1.0, 2.0]
    for t, members in enumerate(types.members):
        assert (types.of_household[members] == t).all()
        assert (data.eligible[members] == types.data.eligible[t]).all()


def test_type_neighbourhoods_never_lose_persons_and_keep_every_capacity(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rematch_pipeline.matching import solve

    monkeypatch.setattr(solve, "TYPE_MIP_MAX_COLUMNS", -1)  # straight to the neighbourhood search
    hs, os_ = _scenario(60)
    exact = run(hs, os_)
    result = match(hs, os_, ROUND_DATE, LARGE, "R")
    assert result.stats["phases"][1]["phase"] == "max_persons_types"
    greedy = result.stats["comparison"]["greedy_by_score"]["persons_placed"]
    assert greedy <= result.persons_placed <= exact.persons_placed
    assert result.stats["comparison"]["rematch"]["capacity_violations"] == 0
    assert result.stats["comparison"]["rematch"]["hard_need_violations"] == 0
    assert result.stats["lp_bound_persons"] >= exact.persons_placed - 1e-6
    again = match(hs, os_, ROUND_DATE, LARGE, "R")  # a fixed number of seeded neighbourhoods: the same round
    assert [(a.case_id, a.offer_id) for a in again.assignments] == [(a.case_id, a.offer_id) for a in result.assignments]


def test_rounding_the_type_lp_stays_within_every_capacity() -> None:
    import numpy as np

    from rematch_pipeline.matching.solve import price_out
    from rematch_pipeline.matching.types import household_types, round_lp, starting_pairs

    hs, os_ = _scenario(60)
    data = build_data(hs, os_, ROUND_DATE, POLICY)
    types = household_types(data)
    types.data.set_pairs(*starting_pairs(types, *greedy_by_score(data)))
    import time
    bound = price_out(types.data, POLICY, time.perf_counter() + 30)
    types.data.set_pairs(bound.pair_h, bound.pair_o)
    alloc = round_lp(types.data, bound.lp.x)
    assert (alloc.left >= 0).all() and (alloc.units >= 0).all()
    assert (alloc.placed <= types.data.weight).all()
    assert (alloc.counts[~types.data.eligible] == 0).all()
    assert alloc.persons <= bound.persons + 1e-6 and np.isclose(alloc.counts.sum(), alloc.placed.sum())


# --- quality: exchange within capacity classes ----------------------------------------------------------------

def test_exchange_gives_a_place_to_the_household_of_the_same_class_that_values_it_more() -> None:
    import numpy as np

    from rematch_pipeline.matching.exchange import capacity_classes, exchange_within_classes

    # A and B need the same capacity; A holds the one place, but B has ties there. C (a family) is another class.
    hs = [household("A"), household("B", ties_ags="05111000"), household("C", (adult(), child()))]
    data = build_data(hs, [offer("05111000", places=3)], ROUND_DATE, POLICY)
    classes = capacity_classes(data)
    assert classes[0] == classes[1] != classes[2]
    a, b, c = (data.households.index(next(h for h in data.households if h.case_id == x)) for x in "ABC")
    h, o = exchange_within_classes(data, classes, np.array([a, c]), np.array([0, 0]))
    assert sorted(h.tolist()) == sorted([b, c]) and o.tolist() == [0, 0]


def test_an_unplaced_household_takes_one_place_only_when_places_are_exchanged_in_parts() -> None:
    from unittest import mock

    import numpy as np

    from rematch_pipeline.matching import exchange
    from rematch_pipeline.matching.exchange import capacity_classes, exchange_within_classes

    # C has family in the Kreis of both municipalities, so it is the best household for either place.
    hs = [household("A"), household("B"), household("C", ties_ags="05111000")]
    os_ = [offer("05111000", places=1), offer("05111004", places=1)]
    data = build_data(hs, os_, ROUND_DATE, POLICY)
    a, b, c = (next(i for i, h in enumerate(data.households) if h.case_id == x) for x in "ABC")
    assert data.score[c].min() > data.score[a].max()
    with mock.patch.object(exchange, "MAX_PLACES", 1):  # one assignment problem per place
        h, o = exchange_within_classes(data, capacity_classes(data), np.array([a, b]), np.array([0, 1]))
    assert sorted(o.tolist()) == [0, 1] and len(set(h.tolist())) == 2 and c in h.tolist()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hs=st.lists(household_st, min_size=1, max_size=6, unique_by=lambda h: h.case_id),
       os_=st.lists(offer_st, min_size=1, max_size=3, unique_by=lambda o: o.ags),
       declines=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 2)), max_size=3),
       max_places=st.sampled_from([1, 2, 400]))
def test_exchange_keeps_every_capacity_and_the_persons_and_never_lowers_the_score(
        hs: list[Household], os_: list[CapacityOffer], declines: list[tuple[int, int]], max_places: int) -> None:
    from unittest import mock

    from rematch_pipeline.matching import exchange
    from rematch_pipeline.matching.exchange import capacity_classes, exchange_within_classes

    hs = _same_twice(hs)  # twins: classes with more than one member
    declined: dict[str, set[str]] = {}
    for hi, oi in declines:
        if hi < len(hs) and oi < len(os_):
            declined.setdefault(hs[hi].case_id, set()).add(os_[oi].ags)
    data = build_data(hs, os_, ROUND_DATE, POLICY, declined)
    h0, o0 = greedy_by_score(data)
    with mock.patch.object(exchange, "MAX_PLACES", max_places):  # places split into parts of this many
        h, o = exchange_within_classes(data, capacity_classes(data), h0, o0)
    assert len(set(h.tolist())) == len(h) == len(h0)  # nobody twice, every place still taken
    assert data.eligible[h, o].all()  # hard needs, validity and declines
    assert data.hh.persons[h].sum() == data.hh.persons[h0].sum()
    assert data.score[h, o].sum() >= data.score[h0, o0].sum() - 1e-9
    for oi, o_ in enumerate(data.offers):
        group = [data.households[i] for i in h[o == oi]]
        assert _feasible(group, o_, ROUND_DATE)


def test_a_small_round_solved_exactly_is_optimal_however_the_search_over_types_ended(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from rematch_pipeline.matching import solve

    monkeypatch.setattr(solve, "TYPE_MIP_MAX_COLUMNS", -1)  # no branch and bound over types
    monkeypatch.setattr(solve, "improve_by_neighbourhoods", lambda *a, **k: ("time_limit", 0))  # and no search
    hs, os_ = _scenario(24)
    result = run(hs, os_)
    phases = {p["phase"]: p["termination"] for p in result.stats["phases"]}
    assert phases["max_persons_types"] == "time_limit" and phases["max_persons"] == "optimal"
    assert result.status == "optimal" and result.stats["persons_proven_maximal"]


def test_a_kept_neighbourhood_keeps_each_household_it_holds_placed() -> None:
    import numpy as np

    from rematch_pipeline.matching.backends import HighsDirect
    from rematch_pipeline.matching.build import build_model

    # Two municipalities with one place each, A and C hold them; B values the first more than anyone (ties), so
    # quality alone places B there. Kept placed, A and C keep the two places between them.
    hs = [household("A"), household("B", ties_ags="05111000"), household("C")]
    data = build_data(hs, [offer("05111000", places=1), offer("09162000", places=1)], ROUND_DATE, POLICY)
    model = build_model(data)
    held = [i for i, h in enumerate(data.households) if h.case_id in "AC"]
    for keep in (False, True):
        direct = HighsDirect(model, POLICY)
        if keep:
            direct.keep_placed(model.household_rows(np.nonzero(np.isin(data.pair_h, held))[0]))
        res = direct.solve("max_quality", model.quality, 5.0)
        got = {data.households[h].case_id for h in data.pair_h[res.x > 0.5]}
        assert got == {"A", "C"} if keep else "B" in got


def test_planning_report_never_asks_for_capacity_whose_dual_is_negative() -> None:
    # Rule: only a binding capacity (a positive shadow price) is worth asking for; a negative dual on a <= row is the
    # solver's noise, read as the bound reads it (clipped at 0).
    import numpy as np

    from rematch_pipeline.domain import CAPACITY_DIMENSIONS
    from rematch_pipeline.matching.build import build_model
    from rematch_pipeline.matching.planning import planning_report

    toddler = child(birth_year=ROUND_DATE.year - 1)
    hs = [household("A", (adult(), toddler)), household("B", (adult(), toddler))]
    data = build_data(hs, [offer("05111000", kita_u3=1)], ROUND_DATE, POLICY)
    model = build_model(data)
    duals = np.zeros(model.matrix.shape[0])
    block, _ = model.block_duals(duals, "capacity_per_dimension")
    offset = next(off for b, off in zip(model.blocks, model.offsets, strict=True) if b is block)
    kita = offset + block.keys.index((0, CAPACITY_DIMENSIONS.index("kita_u3")))
    duals[kita] = -0.8
    assert planning_report(data, model, duals) == []
    duals[kita] = 0.8
    assert planning_report(data, model, duals)[0]["extra_capacity"] == [
        {"capacity": "+1 Kita U3 place", "persons_per_unit": 0.8}]
