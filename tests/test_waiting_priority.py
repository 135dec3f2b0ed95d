"""Waiting priority: the optional term of the quality phase (policy `waiting_weight_per_week`)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from rematch_pipeline.config import load_policy, policy_with, validate_policy
from rematch_pipeline.domain import CapacityOffer, Household, weeks_waiting
from rematch_pipeline.matching.engine import match
from rematch_pipeline.packets.letters import SCORE_TERMS, translations
from tests.factories import ROUND_DATE, adult, household, offer
from tests.test_matching import placed

POLICY = load_policy()
NATIONAL = {"pyomo_max_pairs": 0}  # arrays to HiGHS and quality by neighbourhoods, as at national scale


def _run(hs: list[Household], os_: list[CapacityOffer], weight: float, **kw: object):  # type: ignore[no-untyped-def]
    policy = policy_with(POLICY, waiting_weight_per_week=weight, time_limit_s=20.0, **kw)
    return match(hs, os_, ROUND_DATE, policy, "R-wait")


def _interviewed(weeks: int, days: int = 0) -> date:
    return ROUND_DATE - timedelta(weeks=weeks, days=days)


def test_weeks_waiting_are_full_weeks_from_the_interview_to_the_round() -> None:
    assert [weeks_waiting(household("H", interview_date=_interviewed(0, d)), ROUND_DATE) for d in (0, 6, 7, 13, 14)] \
        == [0, 0, 1, 1, 2]
    assert weeks_waiting(household("H", interview_date=ROUND_DATE + timedelta(days=9)), ROUND_DATE) == 0


@pytest.mark.parametrize("path", [{}, NATIONAL], ids=["pyomo", "national"])
def test_waiting_priority_places_the_longer_waiting_household_only_when_it_outweighs_preferences(path: dict) -> None:
    # One place in a mid-sized town. A was interviewed this week and prefers such a town (+2 settlement bonus); B has
    # waited 8 full weeks and has no preference. By hand: A wins at weight w iff 2 > 8w.
    a = household("A", interview_date=_interviewed(0, 3), pref_settlement="mid_city")
    b = household("B", interview_date=_interviewed(8, 2))
    places = [offer("05111000", places=1)]
    off = _run([a, b], places, 0.0, **path)
    assert placed(off) == {"A": "05111000"}
    assert "waiting" not in off.assignments[0].score_terms  # off: the terms of rounds before the option existed
    weak = _run([a, b], places, 0.2, **path)
    assert placed(weak) == {"A": "05111000"} and weak.stats["quality"] == pytest.approx(2.0)
    strong = _run([a, b], places, 0.5, **path)
    assert placed(strong) == {"B": "05111000"}
    (assignment,) = strong.assignments
    assert assignment.score_terms["waiting"] == pytest.approx(4.0) and assignment.score == pytest.approx(4.0)
    assert strong.stats["quality"] == pytest.approx(4.0)


@pytest.mark.parametrize("path", [{}, NATIONAL], ids=["pyomo", "national"])
def test_waiting_priority_never_places_fewer_persons(path: dict) -> None:
    # Two places: a couple interviewed this week, or a single who has waited 30 weeks at a weight worth 150 points.
    couple = household("C", interview_date=_interviewed(0), members=(adult(), adult("spouse")))
    single = household("S", interview_date=_interviewed(30))
    result = _run([couple, single], [offer("05111000", places=2)], 5.0, **path)
    assert placed(result) == {"C": "05111000"} and result.persons_placed == 2


def test_a_letter_names_the_waiting_priority_in_every_language() -> None:
    for lang in ("de", "en", "pl", "ru", "uk"):
        label = translations(lang).gettext(SCORE_TERMS["waiting"])
        assert label and (lang == "en" or label != SCORE_TERMS["waiting"]), lang


@pytest.mark.parametrize("name", ["waiting_weight_per_week", "balanced_fill_weight"])
@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf"), 1e300, "abc", True, [1]])
def test_a_weight_below_zero_not_a_number_or_absurdly_large_is_refused_in_words(name: str, weight: object) -> None:
    with pytest.raises(ValueError, match=f"{name} must be a number from 0 to"):
        validate_policy(policy_with(POLICY, **{name: weight}))


def test_whole_and_fractional_weights_are_taken() -> None:
    for weight in (0, 1, 2.5, 1e6):
        validate_policy(policy_with(POLICY, waiting_weight_per_week=weight, balanced_fill_weight=weight))
