"""Ingest service around the readers: CLI --json, quarantine list and resubmission, the inbox scan for Airflow."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from rematch_pipeline import orchestration
from rematch_pipeline.cli import main
from rematch_pipeline.config import Settings
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine
from rematch_pipeline.ingest.service import ingest_file
from rematch_pipeline.quarantine import list_quarantine, resubmit
from tests import exports as x

A, B = x.household("RM-A"), x.household("RM-B")
MEMBERS = {"uuid-RM-A": x.family("head", "child"), "uuid-RM-B": x.family("head")}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    # Most files here hold invalid rows on purpose: none of them is held back for their share.
    return replace(settings, max_invalid_share=1.0)


def test_ingest_json_reports_format_counts_duplicate_flag_and_data_docs(settings: Settings, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    kobo = tmp_path / "kobo.xlsx"
    kobo.write_bytes(x.kobo_xlsx([A, x.household("RM-B", german_level="c2")], MEMBERS))
    cap = tmp_path / "cap.csv"
    cap.write_bytes(x.capacity_csv([x.offer()]))
    assert main(["ingest", str(kobo), str(cap), str(kobo), "--json"], settings=settings) == 0
    first, offers, again = json.loads(capsys.readouterr().out)
    assert (first["format"], first["kind"], first["duplicate"]) == ("kobo_xlsx", "households", False)
    assert (first["rows_read"], first["accepted"], first["replaced"], first["quarantined"]) == (5, 3, 0, 2)
    assert first["counts"]["households"]["quarantined"] == 1 and first["counts"]["members"]["accepted"] == 2
    assert Path(first["reports"]["households"]).is_file() and Path(first["data_docs"]).name == "index.html"
    assert set(first["timings"]) == {"parse_s", "validate_s", "store_s"}
    assert (offers["format"], offers["accepted"]) == ("capacity_csv", 1)
    assert (again["status"], again["duplicate"], again["format"]) == ("duplicate", True, "kobo_xlsx")
    assert Path(again["reports"]["households"]).is_file()


def test_refused_file_makes_the_cli_fail_with_the_reason(settings: Settings, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    evil = tmp_path / "evil.zip"
    evil.write_bytes(x.zip_bytes({"../a.csv": b"case_id\n"}))
    assert main(["ingest", str(evil)], settings=settings) == 1
    assert "path traversal" in capsys.readouterr().out


def test_quarantine_list_json_names_file_row_rule_and_message(settings: Settings, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    cap = tmp_path / "cap.csv"
    cap.write_bytes(x.capacity_csv([x.offer("OF-1", places_persons="3")]))
    ingest_file(cap, settings)
    capsys.readouterr()
    assert main(["quarantine", "list", "--json"], settings=settings) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["file"], row["sheet"], row["source_row"], row["field"], row["rule"]) == (
        "cap.csv", "cap.csv", 2, "places_persons", "places_persons_at_least_8")
    assert "at least 8" in row["message"] and row["resolved_at"] is None
    # For people: which file, where in it, what the row holds, what is wrong; what to do about it.
    assert main(["quarantine", "list"], settings=settings) == 0
    assert capsys.readouterr().out.strip().splitlines() == [
        "In the quarantine: 1 entry waiting for a correction:",
        f"#{row['id']} cap.csv, row 2 (a capacity offer), field places_persons: {row['message']} "
        "[rule places_persons_at_least_8]",
        "Correct the file and send it with `rematch quarantine resubmit ID --file CORRECTED`."]


@pytest.mark.full
def test_quarantine_resubmit_resolves_the_row_through_the_normal_ingest(settings: Settings, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(x.kobo_xlsx([x.household("RM-A", interview_date="2030-01-01"), B], MEMBERS))
    ingest_file(bad, settings)
    rows = list_quarantine(settings)
    household_row = next(r for r in rows if r["table_name"] == "households")
    assert {r["rule"] for r in rows} == {"interview_date_not_in_future", "member_of_invalid_household"}

    # A "corrected" file that still has the error resolves nothing.
    still_bad = tmp_path / "still_bad.xlsx"
    only_a = {"uuid-RM-A": MEMBERS["uuid-RM-A"]}
    still_bad.write_bytes(x.kobo_xlsx([x.household("RM-A", interview_date="2031-01-01")], only_a))
    result = resubmit(settings, household_row["id"], still_bad)
    # The same problems again: listed once, under the newer file, and the message names the row to act on now.
    again = list_quarantine(settings)
    assert result["resolved"] is False and len(again) == len(rows)
    assert {r["file"] for r in again} == {"still_bad.xlsx"}
    new_id = next(r["id"] for r in again if r["table_name"] == "households")
    assert result["message"] == (
        f"still_bad.xlsx was ingested but has the same problem as quarantine row {household_row['id']}; it is "
        f"listed as row {new_id} now: correct that record and resubmit row {new_id}")

    fixed = tmp_path / "fixed.xlsx"
    fixed.write_bytes(x.kobo_xlsx([x.household("RM-A")], only_a))
    capsys.readouterr()
    assert main(["quarantine", "resubmit", str(household_row["id"]), "--file", str(fixed), "--json"],
                settings=settings) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["resolved"] is True and out["ingest"]["status"] == "ingested"
    # Resubmitted under the row's first number: the household row and its members' rows, as sent last, are resolved.
    assert list_quarantine(settings) == []
    with get_engine(settings.database_url).connect() as conn:
        stored = conn.execute(select(t.households.c.case_id, t.households.c.raw_file_id)).all()
        resolved = conn.execute(select(t.quarantine.c.resolved_by_raw_file_id).distinct()
                                .where(t.quarantine.c.superseded_by.is_(None))).scalars().all()
        event = conn.execute(select(t.audit_events.c.subject, t.audit_events.c.details)
                             .where(t.audit_events.c.event == "quarantine_resolved")).one()
    assert sorted(c for c, _ in stored) == ["RM-A", "RM-B"]
    assert resolved == [out["ingest"]["raw_file_id"]]
    assert event.subject == str(household_row["id"]) and len(event.details["resolved_ids"]) == len(rows)
    assert main(["quarantine", "list", "--all"], settings=settings) == 0
    listed = capsys.readouterr().out
    assert listed.startswith("In the quarantine: 0 entries waiting for a correction, ")
    assert listed.count(", resolved]") == len(rows) and listed.count(", sent again: see #") == len(rows)


def test_the_same_problem_sent_again_in_a_newer_export_is_listed_once(settings: Settings, tmp_path: Path) -> None:
    members = {**MEMBERS, "uuid-RM-C": x.family("head")}
    week1, week2 = tmp_path / "week1.xlsx", tmp_path / "week2.xlsx"
    late = x.household("RM-A", interview_date="2030-01-01")
    week1.write_bytes(x.kobo_xlsx([late, x.household("RM-C", ties_ags="123")],
                                  {k: v for k, v in members.items() if k != "uuid-RM-B"}))
    ingest_file(week1, settings)
    first = {(r["table_name"], r["rule"]): r["id"] for r in list_quarantine(settings)}
    # A cumulative export a week later: RM-A's problem again (a row further down), RM-C with another problem.
    week2.write_bytes(x.kobo_xlsx([B, late, x.household("RM-C", german_level="fluent")], members))
    report = ingest_file(week2, settings)
    # RM-A and its two members, and RM-C's member (whose household is invalid again), each listed once.
    assert "4 quarantined rows of earlier files came again with the same problem" in report.message
    waiting = {(r["file"], r["table_name"], r["rule"]) for r in list_quarantine(settings)}
    assert waiting == {("week2.xlsx", "households", "interview_date_not_in_future"),
                       ("week2.xlsx", "households", "german_level_allowed_value"),
                       ("week2.xlsx", "members", "member_of_invalid_household"),
                       ("week1.xlsx", "households", "ties_ags_eight_digits")}  # another problem: both stay
    assert sum(r["rule"] == "interview_date_not_in_future" for r in list_quarantine(settings)) == 1
    everything = {r["id"]: r for r in list_quarantine(settings, include_resolved=True)}
    replaced = everything[first[("households", "interview_date_not_in_future")]]
    assert replaced["resolved_at"] is not None and everything[replaced["superseded_by"]]["file"] == "week2.xlsx"


def test_quarantine_resubmit_of_a_refused_file(settings: Settings, tmp_path: Path) -> None:
    evil = tmp_path / "evil.zip"
    evil.write_bytes(x.zip_bytes({"../rematch_household.csv": b"case_id\n"}))
    ingest_file(evil, settings)
    (row,) = list_quarantine(settings)
    fixed = tmp_path / "fixed.zip"
    fixed.write_bytes(x.odk_zip([A], {"uuid-RM-A": x.family("head")}))
    result = resubmit(settings, row["id"], fixed)
    assert result["resolved"] is True and result["resolved_ids"] == [row["id"]]
    with pytest.raises(ValueError, match="already resolved"):
        resubmit(settings, row["id"], fixed)
    with pytest.raises(LookupError, match="no quarantine row"):
        resubmit(settings, 999, fixed)


@pytest.mark.full
def test_a_corrected_file_for_a_held_batch_resolves_every_row_of_it_that_it_fixes(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    settings = replace(settings, max_invalid_share=0.5)
    held = tmp_path / "held.csv"
    held.write_bytes(x.capacity_csv([x.offer("OF-1", ags="x"), x.offer("OF-2", state="HH"), x.offer("OF-3")]))
    assert ingest_file(held, settings).status == "held"
    rows = list_quarantine(settings)
    assert len(rows) == 3 and "batch_held" in {r["rule"] for r in rows}
    # The same bytes again are not "already ingested, nothing changed": the sender learns the file was held.
    capsys.readouterr()
    assert main(["ingest", str(held), "--json"], settings=settings) == 1
    again = json.loads(capsys.readouterr().out)[0]
    assert (again["status"], again["duplicate"]) == ("held", True)
    assert "same file as held.csv, held on" in again["message"]
    fixed = tmp_path / "fixed.csv"
    fixed.write_bytes(x.capacity_csv([x.offer("OF-1"), x.offer("OF-2"), x.offer("OF-3")]))
    result = resubmit(settings, rows[0]["id"], fixed)
    assert result["resolved"] is True and sorted(result["resolved_ids"]) == [r["id"] for r in rows]
    assert list_quarantine(settings) == []
    with get_engine(settings.database_url).connect() as conn:
        assert sorted(conn.execute(select(t.capacity_offers.c.offer_id)).scalars()) == ["OF-1", "OF-2", "OF-3"]


@pytest.mark.full
def test_a_held_batch_stays_quarantined_until_its_valid_rows_are_stored_too(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = replace(settings, max_invalid_share=0.5)
    held = tmp_path / "held.csv"
    held.write_bytes(x.capacity_csv([x.offer("OF-1", ags="x"), x.offer("OF-2", state="HH"), x.offer("OF-3")]))
    ingest_file(held, settings)
    rows = {r["rule"]: r for r in list_quarantine(settings)}
    # Only the two bad offers, corrected: OF-3 was held with them and is still not stored, so the batch stays.
    fixed = tmp_path / "fixed.csv"
    fixed.write_bytes(x.capacity_csv([x.offer("OF-1"), x.offer("OF-2")]))
    first = resubmit(settings, next(r["id"] for r in rows.values() if r["rule"] != "batch_held"), fixed)
    assert first["resolved"] is True
    assert [r["rule"] for r in list_quarantine(settings)] == ["batch_held"]
    rest = tmp_path / "rest.csv"
    rest.write_bytes(x.capacity_csv([x.offer("OF-3")]))
    assert resubmit(settings, rows["batch_held"]["id"], rest)["resolved"] is True
    assert list_quarantine(settings) == []


@pytest.mark.full
def test_an_older_file_does_not_resolve_a_newer_files_row(settings: Settings, tmp_path: Path) -> None:
    older = tmp_path / "older.csv"
    older.write_bytes(x.capacity_csv([x.offer("OF-1")]))
    ingest_file(older, settings)
    newer = tmp_path / "newer.csv"
    newer.write_bytes(x.capacity_csv([x.offer("OF-1", places_persons="3")]))
    ingest_file(newer, settings)
    (row,) = list_quarantine(settings)
    assert resubmit(settings, row["id"], older)["resolved"] is False
    assert len(list_quarantine(settings)) == 1
    # A correction resolves the rows of that offer it came after, not a bad version sent after it.
    fixed = tmp_path / "fixed.csv"
    fixed.write_bytes(x.capacity_csv([x.offer("OF-1", places_persons="14")]))
    ingest_file(fixed, settings)
    newest = tmp_path / "newest.csv"
    newest.write_bytes(x.capacity_csv([x.offer("OF-1", units_wheelchair="5")]))  # another problem
    ingest_file(newest, settings)
    result = resubmit(settings, row["id"], fixed)
    assert result["resolved"] is True and result["resolved_ids"] == [row["id"]]
    assert [r["file"] for r in list_quarantine(settings)] == ["newest.csv"]


@pytest.mark.full
def test_resubmitting_a_corrected_file_ingested_before_resolves_the_row(settings: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_bytes(x.capacity_csv([x.offer("OF-1", places_persons="3"), x.offer("OF-2")]))
    ingest_file(bad, settings)
    (row,) = list_quarantine(settings)
    fixed = tmp_path / "fixed.csv"
    fixed.write_bytes(x.capacity_csv([x.offer("OF-1")]))
    assert ingest_file(fixed, settings).status == "ingested"  # dropped in the inbox first
    result = resubmit(settings, row["id"], fixed)
    assert result["resolved"] is True and result["ingest"]["status"] == "duplicate"
    assert list_quarantine(settings) == []


def test_a_decision_refused_at_the_command_line_is_listed_in_the_quarantine(
        settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["decide", "RM-NOBODY", "R-2026-11-23", "accept"], settings=settings) == 2
    capsys.readouterr()
    assert main(["quarantine", "list", "--json"], settings=settings) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["file"], row["table_name"], row["resolved_at"]) == ("(rematch decide)", "decisions", None)


def test_a_refused_decision_is_named_by_its_case_only_when_the_case_is_one_we_hold(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Rule: the case field is whatever the sender typed (it may be a name or a note); only a held case is named.
    kobo = tmp_path / "kobo.xlsx"
    kobo.write_bytes(x.kobo_xlsx([A], {"uuid-RM-A": x.family("head")}))
    ingest_file(kobo, settings)
    assert main(["decide", "RM-A", "R-2026-11-23", "accept"], settings=settings) == 2  # no such round
    assert main(["decide", "Olena Petrenko, pregnant", "R-2026-11-23", "accept"], settings=settings) == 2
    capsys.readouterr()
    assert [r["case"] for r in list_quarantine(settings)] == ["RM-A", None]
    assert main(["quarantine", "list"], settings=settings) == 0
    out = capsys.readouterr().out
    assert "a decision of case RM-A given with `rematch decide`" in out
    assert "Olena" not in out and "pregnant" not in out
    # A case typed with a space is refused for it: naming the case it resembles would hide why.
    assert main(["decide", " RM-A", "R-2026-11-23", "accept"], settings=settings) == 2
    assert list_quarantine(settings)[-1]["case"] is None
    # The audit trail (exported to auditors) names the held case and not what was typed.
    with get_engine(settings.database_url).connect() as conn:
        details = [r.details for r in conn.execute(select(t.audit_events).where(
            t.audit_events.c.event == "decision_rejected").order_by(t.audit_events.c.id))]
    assert [d["case_id"] for d in details] == ["RM-A", None, None]


def test_inbox_scan_lists_only_files_not_ingested_before(settings: Settings) -> None:
    (settings.inbox / "a.xlsx").write_bytes(x.kobo_xlsx([A], {"uuid-RM-A": x.family("head")}))
    (settings.inbox / "b.csv").write_bytes(x.capacity_csv([x.offer()]))
    (settings.inbox / "photo.jpg").write_bytes(b"\xff\xd8")
    (settings.inbox / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504)
    found = orchestration.scan_inbox(settings)
    assert [Path(u.removeprefix("file://")).name for u in found] == ["a.xlsx", "b.csv", "old.xls"]
    first = orchestration.ingest_path(found[0], settings)
    assert (first["kind"], first["rows_added"]) == ("households", 1)
    # A file we cannot read is not left unnoticed: the sender learns what to do with it.
    old = orchestration.ingest_path(found[2], settings)
    assert old["status"] == "unrecognised" and "save it as .xlsx" in old["message"]
    assert [Path(u.removeprefix("file://")).name for u in orchestration.scan_inbox(settings)] == ["b.csv"]


def test_inbox_url_can_point_to_any_fsspec_location(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec
    from airflow.sdk.io import attach

    # Any fsspec filesystem Airflow knows works the same way (s3:// with the Amazon provider in production).
    mem = fsspec.filesystem("memory")
    attach("memory", fs=mem)
    mem.pipe("/rematch-inbox/cap.csv", x.capacity_csv([x.offer()]))
    settings = replace(settings, inbox_url="memory://rematch-inbox")
    (url,) = orchestration.scan_inbox(settings)
    assert url.startswith("memory://")
    report = orchestration.ingest_path(url, settings)
    assert (report["file"], report["kind"], report["rows_added"]) == ("cap.csv", "capacity", 1)
    assert orchestration.scan_inbox(settings) == []
    with get_engine(settings.database_url).connect() as conn:
        assert conn.execute(select(t.raw_files.c.original_name)).scalars().all() == ["cap.csv"]


def test_assets_are_updated_only_when_valid_rows_were_added() -> None:
    reports = [{"kind": "households", "rows_added": 0}, {"kind": "capacity", "rows_added": 3},
               {"kind": "households", "rows_added": 0, "status": "duplicate"}, {}]
    assert orchestration.rows_added(reports, "households") == 0
    assert orchestration.rows_added(reports, "capacity") == 3


def test_a_changed_record_with_the_same_problem_is_listed_under_both_files(settings: Settings, tmp_path: Path) -> None:
    # Ingest order does not say which export is newer (the inbox is ingested in parallel): a record sent again
    # changed keeps both rows open, so no newer version is ever closed in favour of an older one.
    newer, older = tmp_path / "week2.xlsx", tmp_path / "week1.xlsx"
    newer.write_bytes(x.kobo_xlsx([x.household("RM-A", german_level="zz"), B], MEMBERS))
    older.write_bytes(x.kobo_xlsx([x.household("RM-A", german_level="c9")], {"uuid-RM-A": MEMBERS["uuid-RM-A"]}))
    ingest_file(newer, settings)
    ingest_file(older, settings)
    open_rows = [(r["file"], r["rule"]) for r in list_quarantine(settings) if r["table_name"] == "households"]
    assert sorted(open_rows) == [("week1.xlsx", "german_level_allowed_value"),
                                 ("week2.xlsx", "german_level_allowed_value")]
