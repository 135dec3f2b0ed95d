"""The week-by-week simulator: the hindsight optimum on a case checked by hand, myopic rounds against it through the
real pipeline, and the same seed giving the same summary and report."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest

from rematch_pipeline.cli import main
from rematch_pipeline.config import policy_with, shipped_policy
from rematch_pipeline.matching.solve import solve_model
from rematch_pipeline.scenario import _FEMALE_NAMES, _MALE_NAMES, _SURNAMES
from rematch_pipeline.simulation import LOOK_AHEAD_WEIGHT
from rematch_pipeline.simulation.arrivals import WeekFiles, week_dates
from rematch_pipeline.simulation.hindsight import hindsight_data, solve_hindsight
from rematch_pipeline.simulation.report import summary_json, summary_lines, timing_line, write_report
from rematch_pipeline.simulation.runner import SimulationParameters, run_simulation, wait_stats
from rematch_pipeline.simulation.whatif import variant_parameters
from tests import exports as x
from tests.factories import adult, household, offer

START = date(2026, 11, 23)


def test_hindsight_places_the_most_persons_respecting_arrival_and_validity() -> None:
    """Three weeks (W0, W1, W2), six single adults, three offers of one-room units:

    - X: 2 places, 2 units (1 of them accessible), valid throughout;
    - Y: 3 places, 3 units, valid only until the round of W0 (it ends that day);
    - Z: 1 place, 1 unit, valid from W2.

    A and B arrive in W0, C (needs an accessible unit) in W1, D, E, F in W2. Y can only take households that have
    arrived by W0: A and B (2 persons, its third place stays empty). C, D, E, F (4 persons) arrived when only X and
    Z are valid: 2 + 1 = 3 places. Optimum: 2 + 3 = 5 persons. Were validity ignored, Y would take a third
    household and all 6 would be placed; were arrival ignored, the same; so 5 checks both rules.
    """
    w0, w1, w2 = START, START + timedelta(days=7), START + timedelta(days=14)
    x_ = offer("05111000", places=2, units=(2, 0, 0, 0), units_wheelchair=1, offer_id="OF-X")
    y_ = offer("05170008", places=3, units=(3, 0, 0, 0), offer_id="OF-Y", valid_until=w0)
    z_ = offer("03101000", places=1, units=(1, 0, 0, 0), offer_id="OF-Z", valid_from=w2)
    weeks = [(w0, [household("A"), household("B")]), (w1, [household("C", wheelchair_access=True)]),
             (w2, [household("D"), household("E"), household("F")])]
    result = solve_hindsight(weeks, [x_, y_, z_], shipped_policy())
    assert (result.status, result.persons_placed, result.persons_arrived) == ("optimal", 5, 6)
    at_y = {c for c, o in result.placed.items() if o == "OF-Y"}
    assert at_y == {"A", "B"}  # Y ended before anyone else arrived
    assert {c for c, o in result.placed.items() if o == "OF-Z"} <= {"C", "D", "E", "F"}


def test_the_hindsight_yardstick_counts_persons_without_a_quality_phase() -> None:
    # Rule: the yardstick is persons placed; its quality phase (most of its time at scale) is not run, and the
    # persons are those the full solve of the same model places.
    weeks = [(START, [household("A"), household("B", members=(adult(), adult("spouse")))]),
             (START + timedelta(days=7), [household("C")])]
    offers = [offer("05111000", places=3, units=(2, 0, 0, 0)), offer("03101000", places=1, units=(1, 0, 0, 0))]
    result = solve_hindsight(weeks, offers, shipped_policy())
    assert result.persons_placed == 4 and result.status == "optimal"
    assert not {"max_quality", "quality_bound"} & set(result.phase_s)
    full = solve_model(hindsight_data(weeks, offers, shipped_policy()), shipped_policy())
    assert int(full.persons_placed) == 4 and "max_quality" in {p.phase for p in full.phases}


def test_hindsight_excludes_a_declined_municipality() -> None:
    """One household, one offer: declined there, it cannot be placed in hindsight either (the round's rule)."""
    weeks = [(START, [household("A")])]
    only = offer("05111000", offer_id="OF-X")
    assert solve_hindsight(weeks, [only], shipped_policy()).persons_placed == 1
    assert solve_hindsight(weeks, [only], shipped_policy(), {"A": {"05111000"}}).persons_placed == 0


def test_wait_statistics_use_the_nearest_rank_percentile() -> None:
    assert wait_stats([]) == {"mean": None, "p90": None, "max": None}
    assert wait_stats(list(range(1, 11))) == {"mean": 5.5, "p90": 9, "max": 10}
    assert wait_stats([3]) == {"mean": 3.0, "p90": 3, "max": 3}


def test_answer_shares_and_response_days_are_checked() -> None:
    policy = shipped_policy()
    with pytest.raises(ValueError, match="add up to at most 1"):
        SimulationParameters(1, 1, 1, accept_share=0.8, decline_share=0.3).check(policy)
    with pytest.raises(ValueError, match="response-days is 0 to 6"):
        SimulationParameters(1, 1, 1, response_days=7).check(policy)


def test_weekly_exports_are_reproducible_with_new_case_ids_each_week_and_renewals(tmp_path: Path) -> None:
    """Same seed, same bytes; a household arrives once (case ids never repeat); a renewal is a new offer of each
    municipality, valid from its week, at least the minimum offer."""
    from openpyxl import load_workbook

    from rematch_pipeline.contract import MIN_PLACES_PERSONS
    from rematch_pipeline.simulation.arrivals import generate_weeks

    def generate(folder: Path) -> list[WeekFiles]:
        return generate_weeks(folder, weeks=3, arrivals_per_week=4, municipalities=3, seed=7, start=START,
                              renew_every_weeks=2, renew_share=0.25)

    a, b = generate(tmp_path / "a"), generate(tmp_path / "b")
    assert [[f.read_bytes() for f in w.files] for w in a] == [[f.read_bytes() for f in w.files] for w in b]
    assert [[f.name for f in w.files] for w in a] == [
        ["capacity.xlsx", "households_kobo.xlsx"], ["households_kobo.xlsx"], ["capacity.xlsx", "households_kobo.xlsx"]]
    case_ids = [row[0] for w in a for row in load_workbook(w.files[-1]).worksheets[0].iter_rows(min_row=2,
                                                                                                values_only=True)]
    assert len(case_ids) == 12 == len(set(case_ids))

    def offers(path: Path) -> list[dict[str, object]]:
        rows = list(load_workbook(path).worksheets[0].iter_rows(values_only=True))
        return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]

    initial, renewed = offers(a[0].files[0]), offers(a[2].files[0])
    assert [o["offer_id"] for o in renewed] == [f"{o['offer_id']}-R02" for o in initial]
    assert {o["valid_from"].date() for o in renewed} == {a[2].round_date}  # type: ignore[attr-defined]
    assert min(int(str(o["places_persons"])) for o in renewed) >= MIN_PLACES_PERSONS


def _write_weeks(folder: Path, days: tuple[date, ...], files: dict[int, list[tuple[str, bytes]]]) -> list[WeekFiles]:
    weeks = []
    for w, day in enumerate(days):
        paths = []
        for name, data in files[w]:
            path = folder / name
            path.write_bytes(data)
            paths.append(path)
        weeks.append(WeekFiles(w, day, tuple(paths)))
    return weeks


def _hand_made_weeks(folder: Path) -> list[WeekFiles]:
    """Week 0: P (one adult) arrives; X offers one unit, accessible, valid throughout. Week 1: Q (one adult who
    needs an accessible unit) arrives; Y offers one unit, not accessible, valid from week 1.

    Myopic: week 0 can only place P at X; in week 1 X is full and Y has no accessible unit, so Q waits: 1 person.
    Hindsight: P at Y, Q at X: 2 persons.
    """
    d0, d1 = week_dates(START, 2)
    common = dict(units_1_room="1", units_2_rooms="0", units_3_rooms="0", units_4plus_rooms="0",
                  units_pets_allowed="0", places_persons="8")
    offer_x = x.offer("OF-X-1", ags="05111000", municipality_name="Düsseldorf", state="NW", units_wheelchair="1",
                      **common)
    offer_y = x.offer("OF-Y-1", ags="03101000", municipality_name="Braunschweig", state="NI", units_wheelchair="0",
                      valid_from=d1.strftime("%d.%m.%Y"), **common)
    p = x.household("RM-2026-00001")
    q = x.household("RM-2026-00002", wheelchair_access="yes", _uuid="uuid-q")
    files = {0: [("capacity_x.xlsx", x.capacity_xlsx([offer_x])),
                 ("households_0.xlsx", x.kobo_xlsx([p], {p["_uuid"]: [x.member()]}))],
             1: [("capacity_y.xlsx", x.capacity_xlsx([offer_y])),
                 ("households_1.xlsx", x.kobo_xlsx([q], {"uuid-q": [x.member(mobility_impaired="yes")]}))]}
    return _write_weeks(folder, (d0, d1), files)


def _look_ahead_weeks(folder: Path) -> list[WeekFiles]:
    """Week 0: X offers two units, both accessible; Y ten, none accessible; P (relatives in X) and W1 (needs an
    accessible unit) arrive. Week 1: W2 (needs one too) arrives.

    Myopic: week 0 places W1 at X and P at X (its relatives), so W2 finds no accessible unit left: 2 persons.
    Looking ahead (weight 10): the futures drawn from week 0's arrivals hold wheelchair users, so each of X's units is
    worth about a person later and Y's are not (ten, more than the drawn P-like households need); P in X would cost
    about 10 points against its relatives' 4, so P goes to Y and W2 finds X's second unit: 3 persons, the hindsight
    optimum.
    """
    d0, d1 = week_dates(START, 2)
    common = dict(units_2_rooms="0", units_3_rooms="0", units_4plus_rooms="0", units_pets_allowed="0",
                  places_persons="10")
    offer_x = x.offer("OF-X-1", ags="05111000", municipality_name="Düsseldorf", state="NW", units_wheelchair="2",
                      units_1_room="2", **common)
    offer_y = x.offer("OF-Y-1", ags="03101000", municipality_name="Braunschweig", state="NI", units_wheelchair="0",
                      units_1_room="10", **common)
    p = x.household("RM-2026-00001", ties_ags="05111000", weight_housing="0")  # Y's many units: no reason for P
    w1 = x.household("RM-2026-00002", wheelchair_access="yes", _uuid="uuid-w1")
    w2 = x.household("RM-2026-00003", wheelchair_access="yes", _uuid="uuid-w2")
    files = {0: [("capacity.xlsx", x.capacity_xlsx([offer_x, offer_y])),
                 ("households_0.xlsx", x.kobo_xlsx([p, w1], {p["_uuid"]: [x.member()],
                                                             "uuid-w1": [x.member(mobility_impaired="yes")]}))],
             1: [("households_1.xlsx", x.kobo_xlsx([w2], {"uuid-w2": [x.member(mobility_impaired="yes")]}))]}
    return _write_weeks(folder, (d0, d1), files)


@pytest.mark.slow
def test_rounds_that_look_ahead_keep_the_accessible_unit_the_next_week_needs(tmp_path: Path) -> None:
    params = SimulationParameters(weeks=2, arrivals_per_week=2, municipalities=2, accept_share=1.0,
                                  decline_share=0.0, start=START, look_ahead_weight=10.0, look_ahead_rounds=2)
    summary = run_simulation(params, shipped_policy(), weeks=_look_ahead_weeks(tmp_path)).summary
    assert summary["persons_placed"] == {"myopic": 2, "look_ahead": 3, "hindsight": 3}
    # The look-ahead run plans as many rounds ahead as asked, a week apart like the simulation's rounds.
    assert summary["look_ahead"]["policy"]["look_ahead_rounds"] == 2 != shipped_policy().look_ahead_rounds
    assert summary["look_ahead"]["policy"]["look_ahead_interval_days"] == 7
    assert summary["ratio_to_hindsight"] == {"myopic": 0.6667, "look_ahead": 1.0, "hindsight": 1.0}
    ahead = summary["look_ahead"]
    assert ahead["policy"]["look_ahead_weight"] == 10.0 and summary["policy"]["look_ahead_weight"] == 0.0
    assert ahead["totals"]["households_waiting_at_end"] == 0 and summary["totals"]["households_waiting_at_end"] == 1
    assert "absent" not in summary
    lines = summary_lines(summary)
    assert any(line.startswith("persons placed (accepted), rounds that look ahead (") and "3 (100" in line
               for line in lines), lines


@pytest.mark.slow
def test_match_quality_compares_policies_without_the_look_aheads_own_points(tmp_path: Path) -> None:
    # Rule: at weight 1 P keeps its relatives in X (4 points against about 1 for the unit a wheelchair user will want),
    # so both policies place alike; the look-ahead's minus points are its own price, not what P gets, and must not
    # make the same placement look worse.
    params = SimulationParameters(weeks=2, arrivals_per_week=2, municipalities=2, accept_share=1.0,
                                  decline_share=0.0, start=START, look_ahead_weight=1.0)
    summary = run_simulation(params, shipped_policy(), weeks=_look_ahead_weeks(tmp_path)).summary
    assert summary["persons_placed"]["myopic"] == summary["persons_placed"]["look_ahead"] == 2
    ahead = summary["look_ahead"]
    assert ahead["totals"]["quality_accepted"] == summary["totals"]["quality_accepted"] > 0
    assert [w["quality_round"] for w in ahead["weeks"]] == [w["quality_round"] for w in summary["weeks"]]


@pytest.mark.slow
def test_myopic_rounds_can_fall_short_of_hindsight(tmp_path: Path) -> None:
    params = SimulationParameters(weeks=2, arrivals_per_week=1, municipalities=2, accept_share=1.0,
                                  decline_share=0.0, start=START, look_ahead_weight=0.0)
    summary = run_simulation(params, shipped_policy(), weeks=_hand_made_weeks(tmp_path)).summary
    assert summary["persons_placed"] == {"myopic": 1, "look_ahead": None, "hindsight": 2}
    assert summary["absent"] == {"look_ahead": "not run (look-ahead weight 0)"}
    assert summary["ratio_to_hindsight"]["myopic"] == 0.5
    assert summary["weeks"][1]["households_waiting"] == 1
    # Q could take no place that stayed free (Y has no accessible unit): not counted as waiting beside a free place.
    assert summary["max_wait_weeks_with_free_place"] == 0


@pytest.mark.parametrize("rounds", [0, 53])
def test_look_ahead_rounds_out_of_range_are_refused_before_any_run(rounds: int) -> None:
    params = SimulationParameters(weeks=2, arrivals_per_week=1, municipalities=2, look_ahead_rounds=rounds)
    with pytest.raises(ValueError, match="look_ahead_rounds must be a whole number from 1 to 52"):
        params.check(shipped_policy())


def test_look_ahead_rounds_without_a_look_ahead_run_are_refused_not_ignored() -> None:
    # Rule: an option that would change nothing is refused with a sentence, never silently dropped.
    params = SimulationParameters(weeks=2, arrivals_per_week=1, municipalities=2, look_ahead_weight=0.0,
                                  look_ahead_rounds=3)
    with pytest.raises(ValueError, match="look-ahead-rounds needs a look-ahead run: leave look-ahead-rounds out, or "
                       "give a look-ahead-weight above 0"):
        params.check(shipped_policy())


def test_a_what_if_without_look_ahead_drops_the_base_runs_rounds_ahead() -> None:
    base = SimulationParameters(weeks=2, arrivals_per_week=1, municipalities=2, look_ahead_rounds=3)
    variant = variant_parameters(base, "look-ahead-weight=0")
    assert variant.look_ahead_weight == 0 and variant.look_ahead_rounds is None
    variant.check(shipped_policy())
    with pytest.raises(ValueError, match="look-ahead-rounds needs a look-ahead run"):
        variant_parameters(base, "look-ahead-weight=0;look-ahead-rounds=2").check(shipped_policy())


def test_a_refused_simulation_names_the_option_not_the_field() -> None:
    params = SimulationParameters(weeks=4, arrivals_per_week=1, municipalities=2, round_every_weeks=3)
    with pytest.raises(ValueError, match="^round-every is at least 1 and divides the weeks"):
        params.check(shipped_policy())


def test_a_simulation_names_the_policy_its_rounds_weighed(tmp_path: Path) -> None:
    # Rule: a comparison of policies must say which each run used (the same seed and policy give the same report).
    params = SimulationParameters(weeks=2, arrivals_per_week=1, municipalities=2, start=START)
    policy = policy_with(shipped_policy(), waiting_weight_per_week=2.5)
    summary = run_simulation(params, policy, weeks=_hand_made_weeks(tmp_path)).summary
    assert summary["policy"]["waiting_weight_per_week"] == 2.5 and summary["policy"]["balanced_fill_weight"] == 0
    assert ("policy options of the myopic rounds: waiting priority 2.50 points a week, balanced fill off, "
            "look-ahead off" in summary_lines(summary))


def test_the_weeks_accepted_quality_adds_up_to_the_total_the_report_compares(tmp_path: Path) -> None:
    # Rule: the week-by-week table shows what was accepted each week beside what was offered, and the accepted
    # weeks add up to the policies' total (the offers made count declined offers too, so they need not).
    params = SimulationParameters(weeks=2, arrivals_per_week=1, municipalities=2, start=START)
    summary = run_simulation(params, weeks=_hand_made_weeks(tmp_path)).summary
    weeks = summary["weeks"]
    assert summary["totals"]["quality_accepted"] > 0
    assert sum(w["quality_accepted"] for w in weeks) == pytest.approx(summary["totals"]["quality_accepted"])
    html = write_report(summary, tmp_path / "report")[1].read_text(encoding="utf-8")
    assert "match quality of the offers accepted that week (points)" in html
    assert "match quality of the round" not in html


def test_the_timing_line_names_each_part_in_words_with_the_total_first() -> None:
    # Rule: people read the time line: no raw keys, the total first, the what-if variants not after the total.
    timings = {"generate_s": 0.01, "ingest_s": 7.2, "round_s": 1.4, "free_place_check_s": 0.0, "decisions_s": 1.2,
               "look_ahead_ingest_s": 5.5, "look_ahead_round_s": 1.1, "look_ahead_free_place_check_s": 0.0,
               "look_ahead_decisions_s": 1.4, "hindsight_s": 0.6, "hindsight_data_s": 0.0,
               "hindsight_max_persons_types_s": 0.4, "total_s": 21.8, "what_if_s": 3.0}
    line = timing_line(timings)
    assert line.startswith("time: 21.8 s in all; generating the weekly input files 0.0 s; myopic rounds: ingest 7.2 s, "
                           "rounds 1.4 s, free-place check 0.0 s, answers 1.2 s; rounds that look ahead: ingest 5.5 s")
    assert ("hindsight optimum 0.6 s (its data 0.0 s; solver phases: most persons placed, over household types "
            "0.4 s)") in line
    assert line.endswith("; what-if variants 3.0 s") and "_s" not in line
    # Run in two processes, the parts overlap: the line says so rather than let them seem to miss their total.
    assert "second process" not in line
    assert ("the myopic rounds and the hindsight optimum ran in a second process beside the rounds that look ahead, "
            "so the parts add up to more than the whole") in timing_line({**timings, "processes": 2})


def test_every_step_a_simulation_times_is_named_in_the_timing_line(tmp_path: Path) -> None:
    # Rule: the step names live in the runner and in the line's words; a step timed but not named would vanish.
    from rematch_pipeline.simulation.report import RUN_STEPS

    params = SimulationParameters(weeks=2, arrivals_per_week=1, municipalities=2, start=START)
    timings = run_simulation(params, weeks=_hand_made_weeks(tmp_path)).timings
    steps = {key.removeprefix("look_ahead_") for key in timings
             if not key.startswith("hindsight_") and key not in ("generate_s", "hindsight_s", "total_s")}
    assert steps and steps <= set(RUN_STEPS), sorted(steps - set(RUN_STEPS))
    assert any(key.startswith("look_ahead_") for key in timings)  # both runs were timed


@pytest.mark.slow
def test_the_same_seed_gives_the_same_summary_and_report_and_leaves_the_users_home_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    user_home = tmp_path / "user_home"
    monkeypatch.setenv("REMATCH_HOME", str(user_home))
    monkeypatch.setenv("REMATCH_DATABASE_URL", f"sqlite:///{user_home / 'rematch.sqlite'}")
    params = SimulationParameters(weeks=2, arrivals_per_week=8, municipalities=3, seed=5, start=START)
    first = run_simulation(params)
    capsys.readouterr()
    assert main(["--no-progress", "simulate", "--weeks", "2", "--arrivals-per-week", "8", "--municipalities", "3",
                 "--seed", "5", "--start", START.isoformat(), "--json", "--out", str(tmp_path / "b")]) == 0
    printed = capsys.readouterr().out
    assert printed == summary_json(first.summary)
    assert not user_home.exists()  # a simulation runs on a home of its own
    s = first.summary
    # By default the same weeks also run with rounds that look ahead, side by side.
    assert s["look_ahead"]["policy"]["look_ahead_weight"] == LOOK_AHEAD_WEIGHT and "absent" not in s
    assert s["persons_placed"]["look_ahead"] <= s["persons_placed"]["hindsight"]
    assert s["persons_placed"]["myopic"] <= s["persons_placed"]["hindsight"]
    assert len(s["weeks"]) == 2 and s["totals"]["households_arrived"] > 0
    json_a, html_a = write_report(first.summary, tmp_path / "a")
    assert json_a.read_text(encoding="utf-8") == printed
    assert html_a.read_bytes() == (tmp_path / "b" / html_a.name).read_bytes()
    # No personal data: the generated households' names appear nowhere in the summary or the report.
    text = printed + html_a.read_text(encoding="utf-8")
    assert "<svg" in text
    assert not [n for n in (*_FEMALE_NAMES, *_MALE_NAMES, *_SURNAMES) if n in text]


@pytest.mark.parametrize("option", ["--capacity-share", "--renew-share", "--accept-share", "--look-ahead-weight"])
def test_not_a_number_is_refused_naming_the_option(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Rule: nan passes every range comparison, so it is refused as such (before: a crash, or renewals silently off).
    assert main(["simulate", "--weeks", "2", "--arrivals-per-week", "1", "--municipalities", "2", option, "nan"]) == 2
    assert f"{option[2:]} takes a number, not nan" in capsys.readouterr().err


def test_a_refused_what_if_variant_is_named_in_the_refusal(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--weeks", "2", "--arrivals-per-week", "1", "--municipalities", "2",
                 "--what-if", "decline-share=2"]) == 2
    assert "what-if 'decline-share=2': accept-share and decline-share are between 0 and 1" in capsys.readouterr().err


@pytest.mark.slow
def test_a_second_process_gives_the_same_summary_and_a_hindsight_that_respects_both_runs_declines(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rule: the myopic rounds and their hindsight may run in a second process beside the rounds that look ahead; the
    # summary is the one a single process gives, and where the look-ahead's rounds saw declines the myopic ones did
    # not, the hindsight is solved again respecting them all. Here P declines X in week 0 and accepts Y in week 1 in
    # the myopic rounds, and declines Y in week 0 and accepts X in week 1 in those that look ahead (seed 6's draws).
    from rematch_pipeline.simulation import runner

    params = SimulationParameters(weeks=2, arrivals_per_week=2, municipalities=2, seed=6, accept_share=0.5,
                                  decline_share=0.5, start=START, look_ahead_weight=10.0, look_ahead_rounds=2)
    one = run_simulation(params, shipped_policy(), weeks=_look_ahead_weeks(_folder(tmp_path / "one")), processes=1)
    solved_here: list[dict[str, set[str]]] = []
    real = runner._hindsight

    def counted(*args: object) -> object:
        solved_here.append(args[2])  # type: ignore[arg-type]
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(runner, "_hindsight", counted)  # this process only: the second one imports its own
    two = run_simulation(params, shipped_policy(), weeks=_look_ahead_weeks(_folder(tmp_path / "two")), processes=2)
    assert two.summary == one.summary
    assert two.timings["processes"] == 2 and len(solved_here) == 1, solved_here


def _folder(path: Path) -> Path:
    path.mkdir()
    return path
