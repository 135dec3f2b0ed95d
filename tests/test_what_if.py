"""Planning questions: variants of a simulation (`rematch simulate --what-if`) on the same arrivals, side by side."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from openpyxl import load_workbook

from rematch_pipeline.cli import build_parser, main
from rematch_pipeline.config import shipped_policy
from rematch_pipeline.reports.charts import signed
from rematch_pipeline.simulation import LOOK_AHEAD_WEIGHT, PLANS
from rematch_pipeline.simulation.arrivals import generate_weeks, municipality_ags
from rematch_pipeline.simulation.command import look_ahead_weight
from rematch_pipeline.simulation.report import summary_lines
from rematch_pipeline.simulation.runner import SimulationParameters
from rematch_pipeline.simulation.whatif import _base_value, change_note, gave_way, variant_parameters

START = date(2026, 11, 23)
BASE = SimulationParameters(weeks=4, arrivals_per_week=6, municipalities=3, seed=4, start=START)


def _rows(path: Path) -> list[dict[str, object]]:
    rows = list(load_workbook(path).worksheets[0].iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def _case_ids(path: Path) -> list[str]:
    return [str(r[0]) for r in load_workbook(path).worksheets[0].iter_rows(min_row=2, values_only=True)]


def test_a_variant_names_its_changes_and_keeps_the_rest() -> None:
    ags = municipality_ags(BASE.seed, BASE.municipalities)[0]
    v = variant_parameters(BASE, f"round-every=2; decline-share=0.3; add={ags}:units_3_rooms=5")
    assert (v.round_every_weeks, v.decline_share, v.added_capacity) == (2, 0.3, ((ags, "units_3_rooms", 5),))
    assert (v.weeks, v.seed, v.arrivals_per_week, v.response_days) == (4, 4, 6, BASE.response_days)
    assert v.accept_share == 0.7  # 0.8 would leave no room for 0.3 declines: the accepting share gives way
    v.check(shipped_policy())
    assert variant_parameters(BASE, "decline-share=0.05").accept_share == BASE.accept_share


def test_a_variant_key_is_the_name_of_the_simulate_option_that_sets_the_same_parameter() -> None:
    # Rule: one list names both, so "what if" speaks the command's language and the two cannot drift apart.
    for plan in PLANS:
        value = "2"
        args = build_parser().parse_args(["simulate", f"--{plan.key}", value])
        assert getattr(args, plan.field) == plan.read(value), plan.key
        assert getattr(variant_parameters(BASE, f"{plan.key}={value}"), plan.field) == plan.read(value), plan.key
    # Unset, an option leaves the parameter at the simulation's own default.
    args = build_parser().parse_args(["simulate"])
    assert all(getattr(args, p.field) == getattr(BASE, p.field) for p in PLANS if p.default is not None)


@pytest.mark.parametrize(("spec", "words"), [
    ("round-every", "each change is KEY=VALUE"),
    ("rounds=2", "unknown change 'rounds'"),
    ("round-every=two", "round-every takes a whole number, not 'two'"),
    ("decline-share=lots", "decline-share takes a number"),
    ("add=01001000:units_3_rooms=5", "AGS 01001000 is not one of the simulation's municipalities"),
    ("add=01001000:sauna=5", "add=AGS:COLUMN=N"),
    ("add=01001000:units_3_rooms=five", "add=AGS:COLUMN=N"),
])
def test_a_variant_that_cannot_be_read_is_refused_in_words_before_anything_runs(spec: str, words: str) -> None:
    with pytest.raises(ValueError, match=words.replace("(", r"\(")):
        variant_parameters(BASE, spec)


def test_the_look_ahead_run_takes_the_weight_given_else_the_policy_files_else_the_default() -> None:
    # Rule (red team's finding): a team whose policy file looks ahead simulates with its own weight, not ours.
    assert look_ahead_weight(None, 50.0) == 50.0
    assert look_ahead_weight(None, 0.0) == LOOK_AHEAD_WEIGHT
    assert look_ahead_weight(0.0, 50.0) == 0.0 and look_ahead_weight(3.0, 50.0) == 3.0


def test_a_round_interval_that_does_not_divide_the_weeks_is_refused() -> None:
    with pytest.raises(ValueError, match="divides the weeks"):
        variant_parameters(BASE, "round-every=3").check(shipped_policy())


def test_rounds_every_two_weeks_see_the_same_households_and_added_capacity_changes_only_its_offer(
        tmp_path: Path) -> None:
    # Rule: a variant changes what it names and nothing else: the same households arrive (two weeks' worth per
    # round), and capacity added to one municipality leaves every other offer and every household as it was.
    weekly = generate_weeks(tmp_path / "weekly", weeks=4, arrivals_per_week=6, municipalities=3, seed=4, start=START)
    biweekly = generate_weeks(tmp_path / "biweekly", weeks=2, arrivals_per_week=12, municipalities=3, seed=4,
                              start=START, interval_days=14)
    assert [w.round_date for w in biweekly] == [START, date(2026, 12, 7)]
    households = [f for w in weekly for f in w.files if f.name.startswith("households")]
    households2 = [f for w in biweekly for f in w.files if f.name.startswith("households")]
    assert [c for f in households for c in _case_ids(f)] == [c for f in households2 for c in _case_ids(f)]

    ags = municipality_ags(4, 3)[1]
    added = generate_weeks(tmp_path / "added", weeks=4, arrivals_per_week=6, municipalities=3, seed=4, start=START,
                           added=[(ags, "units_3_rooms", 5), (ags, "places_persons", 20)])
    before, after = _rows(weekly[0].files[0]), _rows(added[0].files[0])
    for b, a in zip(before, after, strict=True):
        if b["ags"] == ags:
            assert int(str(a["units_3_rooms"])) == int(str(b["units_3_rooms"])) + 5
            assert int(str(a["places_persons"])) == int(str(b["places_persons"])) + 20
            assert {k: v for k, v in a.items() if k not in ("units_3_rooms", "places_persons")} == \
                {k: v for k, v in b.items() if k not in ("units_3_rooms", "places_persons")}
        else:
            assert a == b
    assert [f.read_bytes() for w in weekly for f in w.files[1:]] == [f.read_bytes() for w in added for f in w.files[1:]]


def test_the_report_names_beside_a_variant_only_the_changes_its_name_does_not_say() -> None:
    more_declines = {"variant": "decline-share=0.4", "changed": {"decline-share": 0.4, "accept-share": 0.6}}
    assert gave_way(more_declines) == {"accept-share": 0.6}
    assert gave_way({"variant": "round-every=2", "changed": {"round-every": 2}}) == {}
    added = {"variant": "add=01002000:units_1_room=1; round-every=2",
             "changed": {"add": [["01002000", "units_1_room", 1]], "round-every": 2}}
    assert gave_way(added) == {} and gave_way({"variant": "without changes"}) == {}
    no_look_ahead = {"variant": "look-ahead-weight=0", "changed": {"look-ahead-weight": 0.0, "look-ahead-rounds": None}}
    assert gave_way(no_look_ahead) == {}  # not "look-ahead-rounds None": the rounds ahead are simply unused


def test_the_report_names_each_change_with_the_value_it_replaced() -> None:
    more_declines = {"variant": "decline-share=0.4", "changed": {"decline-share": 0.4, "accept-share": 0.6},
                     "was": {"decline-share": 0.1, "accept-share": 0.8}}
    assert change_note(more_declines) == "(decline-share 0.1 → 0.4; and so accept-share 0.8 → 0.6)"
    added = {"variant": "add=01002000:units_1_room=1; round-every=2", "was": {"add": [], "round-every": 1},
             "changed": {"add": [["01002000", "units_1_room", 1]], "round-every": 2}}
    assert change_note(added) == "(round-every 1 → 2)"  # the added capacity as the variant's name says it
    no_look_ahead = {"variant": "look-ahead-weight=0", "changed": {"look-ahead-weight": 0.0, "look-ahead-rounds": None},
                     "was": {"look-ahead-weight": 10.0, "look-ahead-rounds": 4}}
    assert change_note(no_look_ahead) == "(look-ahead-weight 10 → 0)"
    assert change_note({"variant": "without changes"}) == ""
    # In the order the planner wrote them; numbers as written, neither rounded nor in exponent form.
    both = {"variant": "round-every=2;accept-share=0.3333333;look-ahead-weight=999999.5",
            "changed": {"accept-share": 0.3333333, "look-ahead-weight": 999999.5, "round-every": 2},
            "was": {"accept-share": 0.8, "look-ahead-weight": 10.0, "round-every": 1}}
    assert change_note(both) == "(round-every 1 → 2, accept-share 0.8 → 0.3333333, look-ahead-weight 10 → 999999.5)"
    # A variant that changes nothing says so, rather than look like a name without its note.
    assert change_note({"variant": "decline-share=0.1", "changed": {}, "was": {}}) == "(the same as without changes)"


def test_a_change_to_the_answer_shares_names_the_share_left_unanswered_when_it_changes_too() -> None:
    # Fewer declines with the accept share as it was: the offers nobody answers grow, though nobody named them.
    fewer_declines = {"variant": "decline-share=0.05", "changed": {"decline-share": 0.05},
                      "was": {"decline-share": 0.1}, "parameters": {"accept_share": 0.8, "decline_share": 0.05}}
    assert change_note(fewer_declines) == "(decline-share 0.1 → 0.05; and so no-answer share 0.1 → 0.15)"
    more_declines = {"variant": "decline-share=0.4", "changed": {"decline-share": 0.4, "accept-share": 0.6},
                     "was": {"decline-share": 0.1, "accept-share": 0.8},
                     "parameters": {"accept_share": 0.6, "decline_share": 0.4}}
    assert gave_way(more_declines) == {"accept-share": 0.6, "no-answer share": 0.0}
    # Both shares moved so that the unanswered stay as they were: nothing more to say.
    swapped = {"variant": "decline-share=0.2;accept-share=0.7", "changed": {"decline-share": 0.2, "accept-share": 0.7},
               "was": {"decline-share": 0.1, "accept-share": 0.8},
               "parameters": {"accept_share": 0.7, "decline_share": 0.2}}
    assert change_note(swapped) == "(decline-share 0.1 → 0.2, accept-share 0.8 → 0.7)"


def test_a_setting_the_base_left_to_the_policy_is_named_by_the_value_the_policy_gave_it() -> None:
    base = {"parameters": {"look_ahead_rounds": None, "round_every_weeks": 1},
            "look_ahead": {"policy": {"look_ahead_rounds": 4}}, "policy": {"look_ahead_rounds": 4}}
    assert _base_value(base, "look_ahead_rounds") == 4 and _base_value(base, "round_every_weeks") == 1


def test_a_what_if_naming_a_setting_twice_is_refused_not_run_with_the_last_value() -> None:
    base = SimulationParameters(weeks=2, arrivals_per_week=4, municipalities=2, seed=1, start=START)
    with pytest.raises(ValueError, match="round-every is named twice"):
        variant_parameters(base, "round-every=2;round-every=4")


def test_a_change_in_persons_reads_with_a_minus_sign_not_a_hyphen() -> None:
    assert [signed(v) for v in (5, -5, 0, -1234)] == ["+5", "\u22125", "0", "\u22121,234"]


@pytest.mark.slow
def test_what_if_runs_each_variant_beside_the_base_in_one_summary_and_report(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ags = municipality_ags(4, 3)[0]
    # Every offer accepted: hindsight excludes what a household declined, and the policies' rounds (so their offers
    # and the declines) differ between variants, so only without declines is hindsight a function of capacity alone.
    assert main(["--no-progress", "simulate", "--weeks", "4", "--arrivals-per-week", "6", "--municipalities", "3",
                 "--seed", "4", "--start", START.isoformat(), "--accept-share", "1", "--decline-share", "0",
                 "--what-if", "round-every=2",
                 "--what-if", f"add={ags}:units_1_room=10;add={ags}:places_persons=10",
                 "--what-if", "look-ahead-weight=0", "--json", "--out", str(tmp_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    rows = summary["what_if"]
    assert [r["variant"] for r in rows] == ["without changes", "round-every=2",
                                            f"add={ags}:units_1_room=10;add={ags}:places_persons=10",
                                            "look-ahead-weight=0"]
    assert rows[0]["persons_placed"] == summary["persons_placed"]
    assert rows[1]["parameters"]["round_every_weeks"] == 2 and rows[1]["changed"] == {"round-every": 2}
    assert rows[2]["persons_placed_change"]["myopic"] == (rows[2]["persons_placed"]["myopic"]
                                                          - rows[0]["persons_placed"]["myopic"])
    # Waits are counted in weeks: with a round every two weeks every wait is a multiple of two.
    assert rows[1]["wait_weeks"]["myopic"]["max"] % 2 == 0
    # More places at one municipality never place fewer persons in hindsight.
    assert rows[2]["persons_placed"]["hindsight"] >= rows[0]["persons_placed"]["hindsight"]
    html = (tmp_path / "simulation_report.html").read_text(encoding="utf-8")
    assert "What if" in html and "round-every=2 <span class=\"note\">(round-every 1 → 2)</span>" in html
    # Each variant shows both policies, each with its own waits (the planner compares them side by side); one that
    # did not look ahead says so in the look-ahead's row rather than leave it out.
    what_if = html[html.index('<h2 id="what-if">'):]
    what_if = what_if[:what_if.index("</table>")]
    assert what_if.count("<td>myopic rounds</td>") == what_if.count("<td>rounds that look ahead</td>") == 4
    assert what_if.count("not run (look-ahead weight 0)") == 1
    lines = summary_lines(summary)
    assert sum(line.startswith(("what if ", "the simulation above, without changes: "))
               and line.count("longest wait beside a free place") == 2 for line in lines) == 3
    assert any(line.startswith("what if look-ahead-weight=0 (look-ahead-weight 10 → 0): ")
               and line.endswith("rounds that look ahead not run (look-ahead weight 0)") for line in lines)


@pytest.mark.slow
def test_a_variant_that_looks_ahead_beside_a_base_that_did_not_says_why_it_has_no_change_to_show(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--no-progress", "simulate", "--weeks", "2", "--arrivals-per-week", "4", "--municipalities", "2",
                 "--seed", "4", "--start", START.isoformat(), "--look-ahead-weight", "0",
                 "--what-if", "look-ahead-weight=10", "--json", "--out", str(tmp_path)]) == 0
    rows = json.loads(capsys.readouterr().out)["what_if"]
    assert rows[1]["persons_placed"]["look_ahead"] is not None
    assert rows[1]["persons_placed_change"]["look_ahead"] is None
    html = (tmp_path / "simulation_report.html").read_text(encoding="utf-8")
    what_if = html[html.index('<h2 id="what-if">'):]
    assert what_if[:what_if.index("</table>")].count("the simulation without changes did not run this policy") == 1
