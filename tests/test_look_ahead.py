"""Look-ahead rounds: capacity priced by what the coming rounds' arrivals need (policy `look_ahead_weight`)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from rematch_pipeline.cli import round_summary_lines
from rematch_pipeline.config import Settings, load_policy, policy_with, validate_policy
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine
from rematch_pipeline.domain import CapacityOffer, Household
from rematch_pipeline.glossary import SCORE_TERMS as GLOSSARY_TERMS
from rematch_pipeline.matching.build import PERTURBATION_TOTAL
from rematch_pipeline.matching.engine import match
from rematch_pipeline.matching.look_ahead import FUTURE_WEIGHT, sample_seed
from rematch_pipeline.matching.scoring import ALL_TERMS
from rematch_pipeline.matching.solve import PRICING_MIN_GAIN
from rematch_pipeline.packets.letters import SCORE_TERMS, translations
from rematch_pipeline.reports.round_report import look_ahead_line, write_round_report
from rematch_pipeline.rounds import replay_round, run_round, summarize
from rematch_pipeline.scenario import DEFAULT_ROUND_DATE, generate_scenario
from rematch_pipeline.scenario_load import load_scenario
from rematch_pipeline.snapshot import unpack
from tests import exports as x
from tests.factories import ROUND_DATE, household, offer
from tests.test_lifecycle import R1, R2, _ingest, _seed
from tests.test_matching import placed

POLICY = load_policy()
NATIONAL = {"pyomo_max_pairs": 0}  # arrays to HiGHS and quality by neighbourhoods, as at national scale
NEAR, FAR = "05111000", "06411000"  # X has relatives in NEAR (+4 points); they lie in different districts


def _run(hs: list[Household], os_: list[CapacityOffer], weight: float, round_id: str = "R-ahead",
         **kw: object):  # type: ignore[no-untyped-def]
    policy = policy_with(POLICY, look_ahead_weight=weight, time_limit_s=30.0, **kw)
    return match(hs, os_, ROUND_DATE, policy, round_id)


def _case() -> tuple[list[Household], list[CapacityOffer]]:
    # NEAR has the only accessible units: 3 one-room units, all accessible. FAR has 10 one-room units, none
    # accessible. The pool, and so the mix of the coming rounds: X (no need, relatives in NEAR) and two wheelchair
    # users. Four coming rounds bring 12 households, about 8 of them wheelchair users: NEAR's units will all be
    # wanted (each worth one person placed later), FAR's will not (fewer than 10 households could use them).
    pool = [household("X", ties_ags=NEAR), household("W1", wheelchair_access=True),
            household("W2", wheelchair_access=True)]
    offers = [offer(NEAR, places=10, units=(3, 0, 0, 0), units_wheelchair=5),
              offer(FAR, places=10, units=(10, 0, 0, 0))]
    return pool, offers


METHODS = pytest.mark.parametrize("method", ["plan", "prices"])


@METHODS
@pytest.mark.parametrize("path", [{}, NATIONAL], ids=["pyomo", "national"])
def test_look_ahead_keeps_the_accessible_unit_for_the_coming_wheelchair_users_when_it_outweighs_preferences(
        path: dict, method: str) -> None:
    # By hand: X in NEAR spends a unit worth one person later (w points) and gains its relatives' 4 points, so X
    # goes to NEAR iff 4 > w. Persons placed are 3 either way. By plan: the LP over pool and futures keeps NEAR's
    # three accessible units for wheelchair users and puts X (one person) in FAR, so NEAR costs X w points too.
    pool, offers = _case()
    path = {**path, "look_ahead_method": method}
    off = _run(pool, offers, 0.0, **path)
    assert placed(off)["X"] == NEAR and "look_ahead" not in off.stats
    assert all("look_ahead" not in a.score_terms for a in off.assignments)  # off: the terms of rounds before
    weak = _run(pool, offers, 1.0, **path)
    assert placed(weak)["X"] == NEAR and weak.persons_placed == 3
    (x_weak,) = [a for a in weak.assignments if a.case_id == "X"]
    # One unit of NEAR: by plan X's one person off its planned place; by prices a wheelchair user of a coming round,
    # who counts FUTURE_WEIGHT of a person now. One point a person.
    assert x_weak.score_terms["look_ahead"] == pytest.approx(-1.0 if method == "plan" else -FUTURE_WEIGHT, abs=1e-3)
    strong = _run(pool, offers, 10.0, **path)
    assert placed(strong) == {"X": FAR, "W1": NEAR, "W2": NEAR} and strong.persons_placed == 3
    (x_strong,) = [a for a in strong.assignments if a.case_id == "X"]
    assert x_strong.score_terms["look_ahead"] == pytest.approx(0.0, abs=1e-3)  # its least costly place
    ahead = strong.stats["look_ahead"]
    assert ahead["status"] == "optimal" and ahead["arrivals"] == 3 and ahead["future_households"] == 12
    assert ahead["samples"] == POLICY.look_ahead_samples and ahead["priced_offers"] >= 1
    assert ahead["method"] == method and ahead["planned_households"] == 3  # the plan places the whole pool


@METHODS
@pytest.mark.parametrize("path", [{}, NATIONAL], ids=["pyomo", "national"])
def test_capacity_that_expires_before_the_coming_rounds_is_not_kept_for_them(path: dict, method: str) -> None:
    # The case above, but NEAR's offer ends before the next round (7 days on): the coming wheelchair users will
    # never find it, so its units are worth nothing later and X goes to its relatives there even at weight 10.
    pool, (near, far) = _case()
    path = {**path, "look_ahead_method": method}
    strong = _run(pool, [replace(near, valid_until=ROUND_DATE + timedelta(days=3)), far], 10.0, **path)
    assert placed(strong) == {"X": NEAR, "W1": NEAR, "W2": NEAR} and strong.persons_placed == 3
    (x_strong,) = [a for a in strong.assignments if a.case_id == "X"]
    assert x_strong.score_terms["look_ahead"] == pytest.approx(0.0, abs=1e-3)
    assert strong.stats["look_ahead"]["priced_offers"] == 0  # FAR has room for all the coming households
    # Ending in 20 days, NEAR serves the rounds 7 and 14 days on, and is kept; with 30 days between rounds, none.
    ending = [replace(near, valid_until=ROUND_DATE + timedelta(days=20)), far]
    assert placed(_run(pool, ending, 10.0, **path))["X"] == FAR
    assert placed(_run(pool, ending, 10.0, look_ahead_interval_days=30, **path))["X"] == NEAR


@METHODS
@pytest.mark.parametrize("path", [{}, NATIONAL], ids=["pyomo", "national"])
def test_capacity_that_opens_before_the_coming_rounds_is_planned_with(path: dict, method: str) -> None:
    # Rule: an offer that opens after the round date but before a coming round serves that round's households. Here a
    # third municipality opens 3 days on with room for every coming wheelchair user, so NEAR's accessible units are
    # not needed later and X joins its relatives there even at weight 10. Opening after the last coming round (60
    # days on), it changes nothing. The round itself places nobody in an offer not yet open.
    pool, offers = _case()
    policy = policy_with(POLICY, look_ahead_weight=10.0, time_limit_s=30.0, look_ahead_method=method, **path)
    later = offer("09162000", places=40, units=(20, 0, 0, 0), units_wheelchair=20)
    soon = replace(later, valid_from=ROUND_DATE + timedelta(days=3))
    opened = match(pool, offers, ROUND_DATE, policy, "R-ahead", later_offers=[soon])
    assert placed(opened) == {"X": NEAR, "W1": NEAR, "W2": NEAR} and opened.persons_placed == 3
    too_late = replace(later, valid_from=ROUND_DATE + timedelta(days=60))
    assert placed(match(pool, offers, ROUND_DATE, policy, "R-ahead", later_offers=[too_late]))["X"] == FAR
    assert placed(match(pool, offers, ROUND_DATE, policy, "R-ahead"))["X"] == FAR


def test_the_snapshot_keeps_the_offers_opening_within_the_look_ahead_and_the_round_replays(
        settings: Settings, tmp_path: Path) -> None:
    # Rule: what the look-ahead planned with is part of the round's inputs, so an auditor's replay sees it too.
    _seed(settings, tmp_path)
    opening = x.offer("OF-3", ags="08111000", municipality_name="Stuttgart", state="BW", valid_from="30.11.2026")
    _ingest(settings, tmp_path, "later.csv", x.capacity_csv([opening]), R1)
    r1 = run_round(settings, policy_with(load_policy(), look_ahead_weight=5.0), R1)
    with get_engine(settings.database_url).connect() as conn:
        (snap,) = [unpack(r.snapshot) for r in conn.execute(t.round_inputs.select())]
        placed_in = {r.ags for r in conn.execute(t.assignments.select())}
    assert [o["offer_id"] for o in snap["later_capacity_offers"]] == ["OF-3"]
    assert "OF-3" not in {o["offer_id"] for o in snap["capacity_offers"]}
    assert placed_in and "08111000" not in placed_in
    assert replay_round(settings, r1.round_id).identical
    # The round report and `rematch round status` say the look-ahead counted it.
    status = "\n".join(round_summary_lines(summarize(settings, r1.round_id)))
    assert "with 1 capacity offer opening before the last of those rounds" in status


@METHODS
@pytest.mark.parametrize("path", [{}, NATIONAL], ids=["pyomo", "national"])
def test_look_ahead_never_holds_back_a_household_whose_every_place_is_scarce(path: dict, method: str) -> None:
    # W's only place is NEAR's accessible unit, which the coming wheelchair users want as well: W is placed now
    # (the term counts only what a place spends beyond the household's least costly one), and nobody is left out.
    pool, offers = _case()
    result = _run(pool, offers, 1000.0, look_ahead_method=method, **path)
    assert result.persons_placed == 3 and set(placed(result)) == {"X", "W1", "W2"}
    for a in result.assignments:
        if a.case_id.startswith("W"):
            assert a.score_terms["look_ahead"] == pytest.approx(0.0, abs=1e-6)


def test_a_heavy_look_ahead_never_places_fewer_persons_on_a_generated_round(tmp_path: Path) -> None:
    # Rule: persons placed come first whatever the weight. Found by a red team: the persons LP's tie-break by quality
    # assumed quality never negative, and look-ahead points made it cost about half a person per pair (124 -> 123).
    files = generate_scenario(tmp_path, households=53, municipalities=6, seed=19)
    hs, os_ = load_scenario(files.households_xlsx, files.capacity_xlsx)
    placed_at = {w: match(hs, os_, DEFAULT_ROUND_DATE, policy_with(POLICY, look_ahead_weight=w, **NATIONAL), "R-19")
                 for w in (0.0, 1000.0, 1e6)}
    assert [r.persons_placed for r in placed_at.values()] == [124, 124, 124]
    # The bound stays as tight (it rose to 133.7 at the largest weight while the tie-break went negative).
    assert all(124 <= r.stats["lp_bound_persons"] < 126 for r in placed_at.values())


def test_a_round_draws_its_futures_from_its_id_so_a_rerun_draws_the_same() -> None:
    pool, offers = _case()
    first, again = _run(pool, offers, 10.0), _run(pool, offers, 10.0)
    assert first.assignments_sha256 == again.assignments_sha256
    assert first.stats["look_ahead"] == {**again.stats["look_ahead"], "seconds": first.stats["look_ahead"]["seconds"]}
    assert sample_seed("R-a", POLICY) == sample_seed("R-a", POLICY) != sample_seed("R-b", POLICY)
    assert sample_seed("R-a", POLICY) != sample_seed("R-a", policy_with(POLICY, random_seed=1))


def test_the_snapshot_names_the_arrivals_since_the_last_round_and_the_round_replays(
        settings: Settings, tmp_path: Path) -> None:
    # Rule: the futures are drawn from the households that entered the pool since the last round; the snapshot
    # keeps them, so a replay draws the same futures. A round that does not look ahead keeps no such list.
    _seed(settings, tmp_path)
    policy = policy_with(load_policy(), look_ahead_weight=5.0)
    r1 = run_round(settings, policy, R1)
    new = [x.household(c) for c in ("H7", "H8")]
    _ingest(settings, tmp_path, "more.xlsx", x.kobo_xlsx(new, {f"uuid-{c}": x.family("head") for c in ("H7", "H8")}),
            R2)
    r2 = run_round(settings, policy, R2)
    with get_engine(settings.database_url).connect() as conn:
        snaps = {r.round_id: unpack(r.snapshot) for r in conn.execute(t.round_inputs.select())}
    assert snaps[r1.round_id]["arrivals"] == [f"H{i}" for i in range(1, 7)]  # the first round: all of its pool
    pool2 = {h["case_id"] for h in snaps[r2.round_id]["households"]}
    assert {"H7", "H8"} < pool2 and snaps[r2.round_id]["arrivals"] == ["H7", "H8"]
    assert replay_round(settings, r2.round_id).identical
    # The round report says the round looked ahead, and from how many new households it drew.
    text = write_round_report(settings, r2.round_id, tmp_path / "report").read_text(encoding="utf-8")
    assert "look-ahead (places weighed for the coming rounds" in text
    assert r2.households_placed == 4  # what the capacity left holds: the plan places as many of the pool
    assert ("weight 5, 4 rounds ahead: each household&#39;s place weighed against a plan for this round and the "
            "coming ones (the plan places 4 households of the pool), judged from 3 simulated sets" in text
            and "sets of future arrivals of 8 households each (drawn from the 2 households new in the pool" in text)
    assert "look-ahead points included in match quality: " in text
    # So does `rematch round status`, where the data team looks first.
    status = "\n".join(round_summary_lines(summarize(settings, r2.round_id)))
    assert "  Look-ahead: weight 5, 4 rounds ahead: " in status and "future arrivals of 8 households each" in status


def test_a_round_that_does_not_look_ahead_keeps_its_snapshot_as_before(settings: Settings, tmp_path: Path) -> None:
    _seed(settings, tmp_path)
    r1 = run_round(settings, load_policy(), R1)
    with get_engine(settings.database_url).connect() as conn:
        (snap,) = [unpack(r.snapshot) for r in conn.execute(t.round_inputs.select())]
    assert "arrivals" not in snap and "later_capacity_offers" not in snap and r1.round_id == snap["round_id"]
    text = write_round_report(settings, r1.round_id, tmp_path / "report").read_text(encoding="utf-8")
    assert "look-ahead" not in text
    assert "Look-ahead" not in "\n".join(round_summary_lines(summarize(settings, r1.round_id)))


def test_a_round_without_new_households_says_so_in_words() -> None:
    assert look_ahead_line({"status": "no_arrivals", "arrivals": 0}) == \
        ("no effect this round: every household in the pool was already in an earlier round's pool, so there were no "
         "new arrivals to estimate the coming weeks from")


def test_the_look_ahead_term_is_named_in_every_letter_language_and_the_glossary() -> None:
    assert "look_ahead" in ALL_TERMS and "look_ahead" in GLOSSARY_TERMS
    for lang in ("de", "en", "pl", "ru", "uk"):
        label = translations(lang).gettext(SCORE_TERMS["look_ahead"])
        assert label and (lang == "en" or label != SCORE_TERMS["look_ahead"]), lang


@pytest.mark.parametrize(("name", "value"), [
    ("look_ahead_weight", -1.0), ("look_ahead_weight", float("nan")), ("look_ahead_weight", "abc"),
    ("look_ahead_rounds", 0), ("look_ahead_rounds", 2.5), ("look_ahead_rounds", True), ("look_ahead_rounds", 53),
    ("look_ahead_samples", 0), ("look_ahead_samples", 21), ("look_ahead_samples", "3"),
    ("look_ahead_interval_days", 0), ("look_ahead_interval_days", 366), ("look_ahead_interval_days", "7"),
    ("look_ahead_method", "duals"), ("look_ahead_method", 1), ("look_ahead_method", ""),
])
def test_look_ahead_settings_out_of_range_are_refused_in_words(name: str, value: object) -> None:
    with pytest.raises(ValueError, match=name):
        validate_policy(policy_with(POLICY, **{name: value}))


def test_each_coming_round_draws_at_most_future_draws_households(monkeypatch: pytest.MonkeyPatch) -> None:
    # Rule: the look-ahead LP's size is bounded however many households arrived: each coming round draws at most
    # FUTURE_DRAWS of them, each standing for its share of the arrivals (so the futures still bring as many).
    import rematch_pipeline.matching.look_ahead as la

    seen: list[tuple[int, float]] = []
    real = la.household_types

    def spy(data, group=None):  # type: ignore[no-untyped-def]
        seen.append((len(data.households), float(data.weight[group == 0].sum())))
        return real(data, group)

    monkeypatch.setattr(la, "household_types", spy)
    monkeypatch.setattr(la, "FUTURE_DRAWS", 2)
    pool = [household(f"H{i}") for i in range(10)]
    result = _run(pool, [offer(NEAR, places=40, units=(20, 0, 0, 0))], 10.0)
    assert result.stats["look_ahead"]["future_households"] == 40  # 10 arrivals x 4 rounds
    assert len(seen) == POLICY.look_ahead_samples
    for rows, future_households in seen:
        assert rows <= 10 + 4 * 2  # the pool and at most two drawn households a coming round
        assert future_households == pytest.approx(40.0)


def test_a_look_ahead_without_a_finished_lp_says_it_had_no_effect() -> None:
    assert look_ahead_line({"status": "time_limit", "samples": 3, "solved": 0}) == (
        "no effect this round: no LP of a simulated future finished within its limits (the time limit cut them, so a "
        "replay may differ)")
    assert look_ahead_line({"status": "work_limit", "samples": 3, "solved": 0}).endswith(
        "(each stopped at its work limit)")


def test_an_unknown_look_ahead_method_is_refused_by_the_round_too() -> None:
    pool, offers = _case()
    with pytest.raises(ValueError, match="look_ahead_method must be one of plan, prices"):
        _run(pool, offers, 1.0, look_ahead_method="duals")


def test_no_cost_to_the_coming_rounds_is_stored_as_zero_not_minus_zero() -> None:
    pool, offers = _case()
    for a in _run(pool, offers, 10.0).assignments:
        if a.score_terms["look_ahead"] == 0:
            assert math.copysign(1.0, a.score_terms["look_ahead"]) == 1.0, a.case_id


def test_the_look_ahead_line_counts_in_words_one_sample_and_one_household() -> None:
    line = look_ahead_line({"status": "optimal", "solved": 1, "samples": 1, "future_households": 1, "arrivals": 1,
                            "method": "plan", "planned_households": 1})
    assert "judged from 1 simulated set of future arrivals of 1 household each (drawn from the 1 household new" in line


def test_each_look_ahead_sample_starts_from_the_columns_the_sample_before_ended_with(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rule: the samples draw from the same arrivals, so a sample's LP starts from the columns the sample before priced
    # in (matched by type), sparing pricing rounds. Pricing stops, either way, once its bound is within
    # PRICING_MIN_GAIN of the LP, so the LPs agree to within that (plus the quality tie-break), not exactly.
    import rematch_pipeline.matching.look_ahead as la

    files = generate_scenario(tmp_path, households=80, municipalities=40, seed=3)
    hs, os_ = load_scenario(files.households_xlsx, files.capacity_xlsx)
    rounds: list[int] = []
    real = la.price_out

    def spy(data, policy, deadline, **kw):  # type: ignore[no-untyped-def]
        bound = real(data, policy, deadline, **kw)
        rounds.append(bound.rounds)  # LPs this sample solved
        return bound

    monkeypatch.setattr(la, "price_out", spy)
    policy = policy_with(POLICY, look_ahead_weight=10.0, candidates_per_household=1, **NATIONAL)
    carried = match(hs, os_, DEFAULT_ROUND_DATE, policy, "R-carry").stats["look_ahead"]["lp_persons"]
    with_carry, rounds[:] = list(rounds), []
    monkeypatch.setattr(la, "_with_carried", lambda tdata, keys, carried, pairs: pairs)
    alone = match(hs, os_, DEFAULT_ROUND_DATE, policy, "R-carry").stats["look_ahead"]["lp_persons"]
    assert len(with_carry) == len(rounds) == POLICY.look_ahead_samples > 1
    assert with_carry[0] == rounds[0] > 1  # the first sample has nothing to start from
    assert sum(with_carry[1:]) < sum(rounds[1:]), (with_carry, rounds)
    assert all(abs(a - b) <= PRICING_MIN_GAIN + PERTURBATION_TOTAL for a, b in zip(carried, alone, strict=True))


@pytest.mark.parametrize("own_types_up_to", [2, 1], ids=["own types", "by kind"])
def test_each_pool_household_has_a_plan_of_its_own_while_the_pool_is_small(
        monkeypatch: pytest.MonkeyPatch, own_types_up_to: int) -> None:
    # Rule (OWN_TYPES_UP_TO): up to that many pool households, each is a type of its own in the look-ahead LP, so
    # two alike households (the same needs and places they may go) are planned each where it fits best; above it
    # they form one type and its plan is spread evenly over them. A1 has relatives in NEAR, A2 in FAR; one place each.
    import rematch_pipeline.matching.look_ahead as la

    seen = _plans(monkeypatch)
    monkeypatch.setattr(la, "OWN_TYPES_UP_TO", own_types_up_to)
    pool = [household("A1", ties_ags=NEAR), household("A2", ties_ags=FAR)]
    offers = [offer(NEAR, places=1, units=(1, 0, 0, 0)), offer(FAR, places=1, units=(1, 0, 0, 0))]
    result = _run(pool, offers, 10.0, look_ahead_method="plan")
    if own_types_up_to >= len(pool):
        assert seen == {"A1": [1.0, 0.0], "A2": [0.0, 1.0]}
    else:  # one type: whatever its plan, the same for both (how much of it, pricing's tolerance decides)
        assert seen["A1"] == seen["A2"] and 0.0 < seen["A1"][0] < 1.0
    assert placed(result) == {"A1": NEAR, "A2": FAR}


@pytest.mark.parametrize("path", [{}, NATIONAL], ids=["pyomo", "national"])
def test_a_small_look_ahead_plans_the_pool_before_the_futures_whatever_their_scores(
        monkeypatch: pytest.MonkeyPatch, path: dict) -> None:
    # Rule (PAIR_TIE_BREAK_MAX): a pair's tie-break by quality stays far below the twentieth of a person a coming
    # household counts less than one of the pool, however few households the LP holds. P (a wheelchair user) can
    # only go to NEAR; Q (relatives in NEAR) is the round's only arrival, so the futures are copies of Q. Placing P
    # at NEAR and Q at FAR plans two persons of the pool; Q at NEAR and a future Q at FAR only 1.95, however much
    # more Q scores at NEAR. Before, with six households in the LP, each pair's tie-break could reach 0.083 and the
    # plan left P out.
    seen = _plans(monkeypatch)
    pool = [household("P", wheelchair_access=True), household("Q", ties_ags=NEAR)]
    offers = [offer(NEAR, places=1, units=(1, 0, 0, 0), units_wheelchair=1), offer(FAR, places=1, units=(1, 0, 0, 0))]
    policy = policy_with(POLICY, look_ahead_weight=10.0, time_limit_s=30.0, look_ahead_method="plan", **path)
    result = match(pool, offers, ROUND_DATE, policy, "R-ahead", arrivals=["Q"])
    assert seen == {"P": [1.0, 0.0], "Q": [0.0, 1.0]}
    assert placed(result) == {"P": NEAR, "Q": FAR}
    (q,) = [a for a in result.assignments if a.case_id == "Q"]
    assert q.score_terms["look_ahead"] == pytest.approx(0.0, abs=1e-3)  # where the plan has it: nothing charged


def _plans(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[float]]:
    """Each pool household's plan (its share of each offer) as the round's look-ahead hands it on, by case id."""
    import rematch_pipeline.matching.engine as engine

    seen: dict[str, list[float]] = {}
    real = engine.apply_look_ahead

    def spy(data, future, policy):  # type: ignore[no-untyped-def]
        for i, h in enumerate(data.households):
            seen[h.case_id] = [float(v) for v in future.plan[i]]
        return real(data, future, policy)

    monkeypatch.setattr(engine, "apply_look_ahead", spy)
    return seen
