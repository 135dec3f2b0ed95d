"""The command line explains itself: a version, help for every argument with its default, and output in plain
statements whose every count says what it counts."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from rematch_pipeline.cli import build_parser, main, round_summary_lines
from rematch_pipeline.quarantine import COMMAND_LINE, describe
from rematch_pipeline.rounds import RoundSummary


def _parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_every_argument_of_every_command_has_help_showing_its_real_default() -> None:
    missing, no_default = [], []
    for parser in _parsers(build_parser()):
        for a in parser._actions:
            if isinstance(a, (argparse._HelpAction, argparse._VersionAction)):
                continue
            if not a.help:
                missing.append(f"{parser.prog} {a.option_strings or a.dest}")
            # The default is filled in by argparse, so the help cannot drift from the code.
            elif a.default is not None and a.default is not False and not a.required \
                    and "%(default)s" not in a.help:  # (0 == False: a default of 0 is shown too)
                no_default.append(f"{parser.prog} {a.option_strings or a.dest}")
    assert (missing, no_default) == ([], [])


def test_every_command_says_what_it_does_in_its_list_and_its_own_help() -> None:
    silent = []
    for parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                listed = {c.dest: c.help for c in action._choices_actions}
                silent += [sub.prog for name, sub in action.choices.items()
                           if not listed.get(name) or not sub.description]
    assert silent == []


def test_help_of_a_command_shows_its_defaults_and_value_names(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["bench", "match", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--households N households to generate (default: 2000)" in text
    assert "--repeat K solve the same scenario K times" in text


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"rematch {version('rematch-pipeline')}"


def _summary(**kw: object) -> RoundSummary:
    fields: dict[str, Any] = dict(
        round_id="R-2026-11-23", round_date=date(2026, 11, 23), status="offered",
        message="1203 of 1290 persons placed (440 households), solver optimal", households=500,
        persons_in_pool=1290, households_placed=440, persons_placed=1203,
        fill=[{"ags": "09162000", "municipality": "München", "persons_placed": 1200, "persons_accepted": 30,
               "places_persons": 1500, "fill": 0.8},
              {"ags": "05315000", "municipality": "Köln", "persons_placed": 3, "persons_accepted": 0,
               "places_persons": 8, "fill": 0.375}],
        stats={"status": "optimal", "lp_bound_persons": 1203.5, "gap_to_lp": 0.000415,
               "persons_proven_maximal": True, "quality": 6781.25, "quality_bound": 6790.0, "quality_gap": 0.0013},
        offers={"offered": 440, "accepted": 12, "declined": 3, "expired": 0, "pending": 425, "persons_accepted": 30})
    return RoundSummary(**{**fields, **kw})


def test_round_status_says_of_every_count_whether_it_counts_households_or_persons() -> None:
    assert round_summary_lines(_summary()) == [
        "Round R-2026-11-23 of 2026-11-23 is offered (solver: optimal).",
        "  In the pool: 500 households (1,290 persons).",
        "  Placed by the round: 440 households (1,203 persons); not placed: 60 households (87 persons). A placed "
        "household is offered its place and takes it by accepting.",
        "  Offers: 440 households offered a place; of them 12 accepted (30 persons), 3 declined, 0 expired and 425 "
        "wait for an answer.",
        "  1,203 persons placed by the round: the most possible (proven: persons are whole, and the persons bound, "
        "1,203.50, allows no whole person more).",
        "  Match quality: 6,781.2 points, bound 6,790 (gap 0.1\u00a0%).",  # number and unit never split
        "  Fill per municipality (persons placed by the round, of its places for persons):",
        "    09162000 München  1,200 persons placed of 1,500 places (80\u00a0%), 30 persons accepted",
        "    05315000 Köln         3 persons placed of     8 places (37.5\u00a0%), 0 persons accepted",
    ]
    unproven = _summary(stats={"status": "work_limit", "lp_bound_persons": 1210.0, "gap_to_lp": 0.00579,
                               "persons_proven_maximal": False})
    assert ("  1,203 persons placed by the round, maybe not the most possible: the persons bound, an LP over every "
            "eligible pair, is 1,210 persons (gap 0.6\u00a0%).") in round_summary_lines(unproven)
    assert round_summary_lines(_summary(already_existed=True))[0] == (
        "Round R-2026-11-23 of 2026-11-23 is offered (solver: optimal); it was solved before, nothing changed.")


def test_round_status_of_a_round_that_placed_nobody_says_why() -> None:
    lines = round_summary_lines(_summary(status="failed", message="the solver failed: out of memory",
                                         households_placed=0, persons_placed=0, fill=[], offers={},
                                         stats={"status": "infeasible"}))
    assert lines[:4] == ["Round R-2026-11-23 of 2026-11-23 failed (solver: infeasible).",
                         "  the solver failed: out of memory",
                         "  In the pool: 500 households (1,290 persons).",
                         "  Placed by the round: 0 households (0 persons); not placed: 500 households (1,290 "
                         "persons)."]


def _entry(**kw: object) -> dict[str, Any]:
    return {"id": 7, "file": "households.xlsx", "table_name": "households", "sheet": None, "source_row": None,
            "field": None, "rule": "r", "message": "What is wrong.", "resolved_at": None, **kw}


@pytest.mark.parametrize(("entry", "line"), [
    (_entry(sheet="members", source_row=4, field="birth_year", table_name="members"),
     "#7 households.xlsx, sheet members, row 4 (a person of a household), field birth_year: What is wrong. [rule r]"),
    (_entry(file="cap.csv", sheet="cap.csv", source_row=2, table_name="capacity_offers"),
     "#7 cap.csv, row 2 (a capacity offer): What is wrong. [rule r]"),
    (_entry(file="README.md", table_name="file", message="README.md: no header row found"),
     "#7 README.md, the whole file: No header row found [rule r]"),
    (_entry(table_name="file", sheet="Notes"), "#7 households.xlsx, sheet Notes: What is wrong. [rule r]"),
    (_entry(rule="batch_held"), "#7 households.xlsx, all its household rows: What is wrong. [rule batch_held]"),
    (_entry(file=COMMAND_LINE, table_name="decisions", field="case_id", resolved_at="2026-11-24"),
     "#7 a decision given with `rematch decide`, field case_id: What is wrong. [rule r, resolved]"),
])
def test_a_quarantine_entry_is_one_statement_of_where_what_and_why(entry: dict[str, Any], line: str) -> None:
    assert describe(entry) == line


def test_the_quarantine_list_says_how_each_kind_of_waiting_entry_is_corrected() -> None:
    # Rule: a file is resubmitted corrected; a decision refused on the command line has no file and is given again.
    from rematch_pipeline.cli import _quarantine_text

    def tail(*rows: dict[str, Any]) -> list[str]:
        return _quarantine_text(list(rows), include_resolved=True).splitlines()[len(rows) + 1:]

    decided = _entry(file=COMMAND_LINE, table_name="decisions", field="case_id")
    resubmit = "Correct the file and send it with `rematch quarantine resubmit ID --file CORRECTED`."
    assert tail(_entry()) == [resubmit]
    assert len(tail(decided)) == 1 and "give it again, corrected, with `rematch decide`" in tail(decided)[0]
    assert tail(_entry(), decided)[0] == resubmit and len(tail(_entry(), decided)) == 2
    assert tail(_entry(resolved_at="2026-11-24"), {**decided, "resolved_at": "2026-11-24"}) == []


def test_an_erasure_says_which_outbox_files_it_deleted_and_how_packets_come_back() -> None:
    from rematch_pipeline.cli import _documents_deleted
    from rematch_pipeline.retention import PurgeReport

    said = _documents_deleted(PurgeReport(households=1, packet_files=2, letter_files=2))
    assert "2 packet and 2 letter files deleted" in said and "render the round again" in said
    assert _documents_deleted(PurgeReport(households=1)) == ""


def test_verbose_logs_our_steps_not_great_expectations_internals(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Rule: -v logs what each step of ours does; GX's INFO lines (about 220 for one file) would bury them.
    import logging

    from rematch_pipeline.cli import main

    monkeypatch.setenv("REMATCH_HOME", str(tmp_path / "home"))
    gx = logging.getLogger("great_expectations")
    gx.setLevel(logging.INFO)  # as it is when the root logger logs INFO, which -v asks for
    try:
        assert main(["-v", "--no-progress", "config", "show"]) == 0
        assert gx.getEffectiveLevel() == logging.WARNING
    finally:
        gx.setLevel(logging.NOTSET)


def _readme_command_lines() -> list[str]:
    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = text.split("## Command line", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    lines: list[str] = []
    for line in block.splitlines():
        if line.startswith("rematch "):
            lines.append("")
        if lines and line.strip():  # a line that starts with spaces goes on the command above
            lines[-1] += " " + line.split("  #", 1)[0].strip()
    return [line.strip() for line in lines]


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return {name: sub for a in parser._actions if isinstance(a, argparse._SubParsersAction)
            for name, sub in a.choices.items()}


def test_the_readmes_command_reference_names_every_command_and_only_options_that_exist() -> None:
    # Rule: the README's command block is what a newcomer reads first; a command missing there, or an option the
    # command does not take, sends them astray (the full list of each command's options is its --help).
    root = build_parser()
    listed, wrong = set(), []
    for line in _readme_command_lines():
        parser, path = root, []
        for word in line.split()[1:]:
            sub = _subparsers(parser).get(word)
            if sub is None:
                break
            parser, path = sub, [*path, word]
        listed.add(" ".join(path))
        known = {s for a in parser._actions for s in a.option_strings}
        wrong += [f"{' '.join(path)} {o}" for o in re.findall(r"--[a-z][a-z-]*", line) if o not in known]

    def leaves(parser: argparse.ArgumentParser, path: list[str]) -> Iterator[str]:
        subs = _subparsers(parser)
        if not subs:
            yield " ".join(path)
        for name, sub in subs.items():
            yield from leaves(sub, [*path, name])

    assert (sorted(set(leaves(root, [])) - listed), wrong) == ([], [])
