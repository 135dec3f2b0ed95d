"""The room table and the capacity model (`domain.Capacity`), and that the matching arrays follow the same rule."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rematch_pipeline.config import shipped_policy
from rematch_pipeline.domain import (
    CAPACITY_DIMENSIONS,
    ROOM_CLASSES,
    Capacity,
    Consumption,
    Demand,
    demand_of,
    rooms_needed,
    units_taken,
)
from rematch_pipeline.matching.data import build_data, capacity_left, used_capacity
from rematch_pipeline.matching.units import ROOM_TABLE, units_for
from tests.factories import ROUND_DATE, adult, child, household, offer

POLICY = shipped_policy()
ONLY = {1: (1, 0, 0, 0), 2: (0, 1, 0, 0), 3: (0, 0, 1, 0), 4: (0, 0, 0, 1)}  # one unit of exactly k rooms


def _of_persons(n: int) -> Demand:
    return demand_of(household("H", (adult(),) + (child(),) * (n - 1)), ROUND_DATE, POLICY)


def _houses(persons: int) -> list[int]:
    """The unit sizes (rooms) an offer with a single unit may have for a household of `persons` to fit."""
    return [k for k in ROOM_CLASSES if Capacity.of(offer("05111000", units=ONLY[k])).fits(_of_persons(persons))]


@pytest.mark.parametrize("persons", [1, 2])
def test_a_household_of_one_or_two_needs_a_unit_with_at_least_one_room(persons: int) -> None:
    assert rooms_needed(persons, POLICY) == 1
    assert _houses(persons) == [1, 2, 3, 4]


def test_a_household_of_three_needs_a_unit_with_at_least_two_rooms() -> None:
    assert rooms_needed(3, POLICY) == 2
    assert _houses(3) == [2, 3, 4]


@pytest.mark.parametrize("persons", [4, 5])
def test_a_household_of_four_or_five_needs_a_unit_with_at_least_three_rooms(persons: int) -> None:
    assert rooms_needed(persons, POLICY) == 3
    assert _houses(persons) == [3, 4]


@pytest.mark.parametrize("persons", [6, 7, 10])
def test_a_household_of_six_or_more_needs_a_unit_with_four_or_more_rooms(persons: int) -> None:
    assert rooms_needed(persons, POLICY) == 4
    assert _houses(persons) == [4]


def test_a_larger_unit_houses_a_smaller_household_once() -> None:
    single = Capacity.of(offer("05111000", units=ONLY[4]))
    one = _of_persons(1)
    assert single.fits(one)
    assert not single.take(one).fits(one)
    # Counted as units with at least k rooms the 4-room unit still counts in classes 2-4, but every household takes
    # from class 1 as well, so no household of any size fits any more.
    assert single.take(one).units == (0, 1, 1, 1)
    assert not any(single.take(one).fits(_of_persons(n)) for n in range(1, 8))


def test_what_earlier_matches_hold_is_taken_from_every_class_up_to_their_need() -> None:
    left = Capacity.of(offer("05111000", places=10, units=(1, 1, 1, 1)),
                       Consumption(dimensions={"places_persons": 7}, rooms_needed=(3, 1)))
    assert left.dimensions[CAPACITY_DIMENSIONS.index("places_persons")] == 3
    # units with >= 1, 2, 3, 4 rooms: 4, 3, 2, 1 offered; the 3-room need takes from classes 1-3, the 1-room from 1.
    assert left.units == (2, 2, 1, 1)
    assert left.units_for(4) == 1 and left.units_for(3) == 1 and left.units_for(1) == 2


def test_an_overcommitted_offer_names_each_shortfall() -> None:
    left = Capacity.of(offer("05111000", places=2, units=(1, 0, 0, 0)),
                       Consumption(dimensions={"places_persons": 5}, rooms_needed=(1, 2)))
    assert left.shortfalls() == [("places_persons", 3), ("units_1_rooms_or_more", 1), ("units_2_rooms_or_more", 1)]
    assert not left.fits(_of_persons(1))


def test_a_need_of_zero_is_met_even_where_a_dimension_is_overcommitted() -> None:
    # A resubmission cut the Kita places below what is held; a household without small children still fits.
    left = Capacity.of(offer("05111000", kita_u3=0), Consumption(dimensions={"kita_u3": 2}))
    assert left.fits(_of_persons(1))


def _brute_force_fits(needs: list[int], units: tuple[int, int, int, int]) -> bool:
    """Independent of the cumulative counts: try every way of giving each household its own actual unit."""
    actual = [k for k, n in zip(ROOM_CLASSES, units, strict=True) for _ in range(n)]
    return len(needs) <= len(actual) and any(all(u >= n for n, u in zip(needs, perm, strict=False))
                                             for perm in itertools.permutations(actual, len(needs)))


@settings(max_examples=200, deadline=None)
@given(units=st.tuples(*[st.integers(0, 2)] * 4), needs=st.lists(st.sampled_from(ROOM_CLASSES), max_size=5))
def test_the_counts_by_room_class_fit_exactly_when_every_household_has_its_own_unit(
        units: tuple[int, int, int, int], needs: list[int]) -> None:
    left = Capacity.of(offer("05111000", units=units), Consumption(rooms_needed=tuple(needs)))
    assert (min(left.units) >= 0) == _brute_force_fits(needs, units)


def test_the_matching_arrays_follow_the_domain_room_rule() -> None:
    for r in ROOM_CLASSES:
        assert tuple(int(v) for v in ROOM_TABLE[r]) == units_taken(r)
    rng = np.random.default_rng(0)
    units = rng.integers(-2, 4, size=(50, len(ROOM_CLASSES)))
    for r in ROOM_CLASSES:
        expected = [Capacity((0,) * len(CAPACITY_DIMENSIONS), tuple(int(v) for v in row)).units_for(r)
                    for row in units]
        assert units_for(units, r).tolist() == expected
    needs = rng.integers(1, len(ROOM_CLASSES) + 1, size=20)
    assert units_for(units, needs).tolist() == [units_for(units, int(r)).tolist() for r in needs]


def test_the_matching_arrays_count_capacity_as_the_domain_does() -> None:
    hs = [household(f"H{i}", (adult(),) + (child(),) * i) for i in range(7)]
    offers = [offer("05111000", places=12, units=(1, 1, 1, 1)), offer("09162000", places=30, units=(0, 2, 0, 3))]
    held = {"OF-05111000": Consumption(dimensions={"places_persons": 4, "kita_u3": 1}, rooms_needed=(3,))}
    data = build_data(hs, offers, ROUND_DATE, POLICY, consumed=held)
    domain_left = [Capacity.of(o, held.get(o.offer_id)) for o in offers]
    assert data.of.remaining.tolist() == [list(c.dimensions) for c in domain_left]
    assert data.of.units_ge_left.tolist() == [list(c.units) for c in domain_left]
    cap, units = capacity_left(data)
    assert cap.tolist() == [[max(v, 0) for v in c.dimensions] for c in domain_left]
    # Households 1, 3 and 5 at the first offer, the rest at the second: used per offer as the domain takes it.
    h = np.arange(len(hs))
    o = np.array([1, 0, 1, 0, 1, 0, 1])
    used, used_units = used_capacity(data, h, o)
    for j, of in enumerate(offers):
        after = Capacity.of(of, held.get(of.offer_id))
        for i in h[o == j]:
            after = after.take(demand_of(data.households[i], ROUND_DATE, POLICY))
        assert (np.array(domain_left[j].dimensions) - used[j]).tolist() == list(after.dimensions)
        assert (np.array(domain_left[j].units) - used_units[j]).tolist() == list(after.units)
