"""Progress of long steps: quiet unless a reporter is installed, a bar on a terminal, lines elsewhere, no personal
data, and never in a command's output."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from rematch_pipeline import progress
from rematch_pipeline.cli import main
from rematch_pipeline.config import Settings, load_policy
from rematch_pipeline.ingest.service import ingest_file
from rematch_pipeline.packets.service import render_round_packets
from rematch_pipeline.rounds import offer_round, run_round
from tests import exports as x
from tests.factories import ROUND_DATE

PHONE, MAIL, NOTE, PLACE = "+48 611 987 654", "halyna@example.org", "Brother in Kharkiv; needs quiet.", "Przemyśl"


def test_steps_without_a_reporter_are_silent_and_change_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with progress.step("solving", total=3, unit="phases") as s:
        s.advance(detail="persons")
    assert list(progress.track(range(4), "counting", total=4)) == [0, 1, 2, 3]
    assert capsys.readouterr() == ("", "")


def test_on_a_terminal_the_bar_is_drawn_in_place_and_cleared_at_the_end() -> None:
    out = io.StringIO()
    with progress.TerminalReporter(out, tty=True, redraw_s=0.02) as reporter, progress.reporting(reporter):
        for i in progress.track(range(4), "rendering packets", total=4, unit="packets"):
            time.sleep(0.05)  # a unit of work: longer than the reporter waits between two drawings
            if i == 2:
                drawn = out.getvalue()
    assert "\r\x1b[Krendering packets [##########----------] 2 of 4 packets (" in drawn
    assert "\n" not in out.getvalue() and out.getvalue().endswith("\r\x1b[K")  # nothing left on the line


def test_nested_steps_show_their_path_and_a_step_without_total_its_time() -> None:
    outer, inner = progress.Step("round R-2026-11-23"), progress.Step("solving", detail="412 candidate pairs")
    assert progress.describe([outer, inner]).startswith("round R-2026-11-23 › solving, 412 candidate pairs (")
    assert progress.describe([outer, inner], tick=1).endswith("\u00a0s) /")  # a spinner moves while nothing is counted
    # A narrow terminal shows the innermost step whole rather than cut; what is wider still is cut before its time,
    # one column short of the width, so the cursor stays on the line and the moving part in sight.
    assert progress.describe([outer, inner], width=50).startswith("solving, 412 candidate pairs (")
    narrow = progress.describe([outer, inner], tick=0, width=25)
    assert len(narrow) == 24 and narrow.startswith("solving, ") and "… (" in narrow and narrow.endswith("\u00a0s) |")


def test_without_a_terminal_short_steps_say_nothing_and_long_ones_a_line_each_interval() -> None:
    quiet, chatty = io.StringIO(), io.StringIO()
    for out, every in ((quiet, 60.0), (chatty, 0.0)):
        with progress.TerminalReporter(out, tty=False, line_every_s=every) as reporter, progress.reporting(reporter):
            list(progress.track(range(3), "storing households.xlsx", total=3, unit="tables"))
    assert quiet.getvalue() == ""
    lines = chatty.getvalue().splitlines()
    assert "\r" not in chatty.getvalue() and "\x1b" not in chatty.getvalue()
    assert lines[0].startswith("storing households.xlsx [--------------------] 0 of 3 tables (")
    assert lines[-1].startswith("storing households.xlsx: done, 3 of 3 tables (")


def test_the_cli_shows_progress_on_stderr_only(settings: Settings, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress, "LINE_EVERY_S", 0.0)  # every step says where it is, however short
    cap = tmp_path / "cap.csv"
    cap.write_bytes(x.capacity_csv([x.offer("OF-1")]))
    assert main(["ingest", str(cap)], settings=settings) == 0
    out, err = capsys.readouterr()
    assert "reading cap.csv" in err and "validating cap.csv" in err and "storing cap.csv" in err
    assert "cap.csv" in out and "reading" not in out and "validating" not in out
    assert main(["--no-progress", "ingest", str(cap)], settings=settings) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.full
def test_progress_of_ingest_round_and_packets_carries_no_personal_data(settings: Settings, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # Every update as a line: whatever a step shows at any moment is in the text.
    shown = io.StringIO()
    households = [x.household(c, contact_phone=PHONE, contact_email=MAIL, notes=NOTE, interview_location=PLACE,
                              medical_needs="dialysis" if c == "H2" else "none") for c in ("H1", "H2", "H3")]
    files = {"households.xlsx": x.kobo_xlsx(households, {f"uuid-H{i}": x.family("head", "child") for i in (1, 2, 3)}),
             "capacity.csv": x.capacity_csv([x.offer("OF-1")])}
    with progress.TerminalReporter(shown, tty=False, line_every_s=0) as reporter, progress.reporting(reporter):
        for name, data in files.items():
            (tmp_path / name).write_bytes(data)
            assert ingest_file(tmp_path / name, settings).status == "ingested"
        round_id = run_round(settings, load_policy(), ROUND_DATE).round_id
        offer_round(settings, round_id)
        assert render_round_packets(settings, load_policy(), round_id)
    text = shown.getvalue()
    assert "storing households.xlsx" in text and "solving" in text and "rendering packets" in text  # captured
    for secret in (PHONE, MAIL, NOTE, PLACE, "dialysis", "Kharkiv"):
        assert secret not in text


ESCAPES = "esc\x1b]0;TITLE\x07\x1b[2J\x1b[31mRED\rCR\nNL\b\u202e.xlsx"


def test_a_file_name_never_steers_the_terminal_in_progress_or_output(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rematch_pipeline.cli import main
    from rematch_pipeline.progress import Step, describe, visible

    line = describe([Step(f"reading {ESCAPES}")])
    assert not any(ch in line for ch in "\x1b\x07\r\n\b\u202e") and "\\u001b]0;TITLE" in line
    assert visible("a\nb\tc\x9bd") == "a\nb\tc\\u009bd"  # lines stay; a C1 control shows as its escape
    main(["ingest", str(tmp_path / ESCAPES)])
    out, err = capsys.readouterr()
    assert "TITLE" in err and not any(ch in out + err for ch in "\x1b\x07\r\b\u202e")
