"""Every failure is recorded, never retried forever, never dumps data: a file that breaks ingest ends `failed`."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from rematch_pipeline import orchestration
from rematch_pipeline.cli import main
from rematch_pipeline.config import Settings, load_settings
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine, migrate
from rematch_pipeline.ingest import service
from rematch_pipeline.ingest.service import ingest_file
from rematch_pipeline.quarantine import list_quarantine, resubmit
from tests import exports as x

CANARY = "Kanarienvogel Privat"  # stands for personal data in a row: it must never reach a message or a log
HUGE = "99999999999999999999"  # more than any integer column holds


def _poison(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A file the database refuses (every value the contract allows is checked before; the refusal is injected, and
    quotes the value as database errors do)."""
    path = tmp_path / "poison.csv"
    path.write_bytes(x.capacity_csv([x.offer("OF-1"), x.offer("OF-2", places_persons=HUGE, contact_name=CANARY)]))

    def refusing(*args: Any, **kwargs: Any) -> Any:
        raise DataError("INSERT INTO capacity_offers ...", {"contact_name": CANARY}, Exception(f"too long: {CANARY}"))

    monkeypatch.setattr(service.store, "apply_offers", refusing)
    return path


def _count(settings: Settings, table: Any) -> int:
    with get_engine(settings.database_url).connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_a_file_the_database_refuses_is_recorded_failed_with_its_rows_and_a_plain_reason(
        settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    path = _poison(tmp_path, monkeypatch)
    report = ingest_file(path, settings)
    assert (report.status, report.rows_read, report.accepted, report.quarantined, report.held) == ("failed", 2, 0, 0, 2)
    assert report.counts == {"capacity_offers": {"rows": 2, "accepted": 0, "quarantined": 0, "held": 2}}
    assert "too long or too large" in report.message and "resubmit" in report.message
    with get_engine(settings.database_url).connect() as conn:
        raw = conn.execute(select(t.raw_files)).one()
        events = conn.execute(select(t.audit_events.c.event)).scalars().all()
    assert (raw.status, raw.kind, raw.format) == ("failed", "capacity", "capacity_csv")
    assert _count(settings, t.capacity_offers) == 0 and "file_failed" in events  # nothing half-applied
    (row,) = list_quarantine(settings)
    assert (row["rule"], row["file"], row["table_name"]) == ("ingest_failed", "poison.csv", "file")
    # The same bytes again: reported failed (exit 1), not retried, not "already ingested"; the scan leaves it.
    capsys.readouterr()
    assert main(["ingest", str(path), "--json"], settings=settings) == 1
    (again,) = json.loads(capsys.readouterr().out)
    assert again["status"] == "failed" and again["duplicate"] is True
    (settings.inbox / "poison.csv").write_bytes(path.read_bytes())
    assert orchestration.scan_inbox(settings) == []
    shown = caplog.text + json.dumps(report.to_json()) + json.dumps(list_quarantine(settings), default=str)
    assert CANARY not in shown and HUGE not in shown


@pytest.mark.full
def test_a_failed_file_is_tried_again_when_resubmitted_and_its_row_resolves(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "capacity.csv"
    path.write_bytes(x.capacity_csv([x.offer("OF-1")]))
    real = service.store.apply_offers

    def locked(*args: Any, **kwargs: Any) -> Any:
        raise OperationalError("INSERT ...", {}, Exception("database is locked"))

    monkeypatch.setattr(service.store, "apply_offers", locked)
    first = ingest_file(path, settings)
    assert first.status == "failed" and "could not be written just now" in first.message
    monkeypatch.setattr(service.store, "apply_offers", real)
    assert ingest_file(path, settings).status == "failed"  # not retried by itself
    (row,) = list_quarantine(settings)
    result = resubmit(settings, row["id"], path)
    assert result["resolved"] is True and result["ingest"]["status"] == "ingested"
    with get_engine(settings.database_url).connect() as conn:
        raws = conn.execute(select(t.raw_files.c.id, t.raw_files.c.status)).all()
    assert raws == [(first.raw_file_id, "ingested")] and _count(settings, t.capacity_offers) == 1
    assert list_quarantine(settings) == []


def test_an_unexpected_error_is_recorded_by_its_class_never_by_its_text(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ValueError(f"cannot handle {CANARY}")  # as library errors do: they quote the value

    monkeypatch.setattr("rematch_pipeline.validation.validate_batch", broken)
    path = tmp_path / "households.xlsx"
    path.write_bytes(x.kobo_xlsx([x.household("RM-A")], {"uuid-RM-A": x.family("head", "child")}))
    report = ingest_file(path, settings)
    assert report.status == "failed" and "(ValueError)" in report.message
    assert (report.rows_read, report.held) == (3, 3)  # one household and its two members, none applied
    assert "ingest" in caplog.text and "ValueError" in caplog.text
    assert CANARY not in caplog.text + report.message + json.dumps(list_quarantine(settings), default=str)


def test_database_errors_never_show_the_rows_they_were_given(settings: Settings) -> None:
    migrate(settings.database_url)
    engine = get_engine(settings.database_url)
    assert engine.hide_parameters
    row = dict(sha256="a" * 64, original_name=CANARY, archived_path="x", size_bytes=1, status="ingested",
               received_at=settings.clock.now())
    with engine.begin() as conn:
        conn.execute(insert(t.raw_files).values(**row))
    with pytest.raises(IntegrityError) as err, engine.begin() as conn:
        conn.execute(insert(t.raw_files).values(**row))
    assert CANARY not in str(err.value) and "parameters hidden" in str(err.value)


@pytest.mark.full
def test_a_locked_database_stops_ingest_with_exit_3_and_records_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], clock: Any) -> None:
    import sqlite3

    db = tmp_path / "locked.sqlite"
    settings = load_settings({"REMATCH_HOME": str(tmp_path / "home"), "REMATCH_DATABASE_URL": f"sqlite:///{db}",
                              "REMATCH_SQLITE_BUSY_TIMEOUT_S": "0.2"}, clock=clock)
    assert settings.sqlite_busy_timeout_s == 0.2
    migrate(settings.database_url)
    path = tmp_path / "capacity.csv"
    path.write_bytes(x.capacity_csv([x.offer("OF-1")]))
    other = sqlite3.connect(db)
    other.execute("BEGIN IMMEDIATE")  # another run is writing
    try:
        assert main(["ingest", str(path)], settings=settings) == 3
        err = capsys.readouterr().err
        assert "being worked on by another run" in err and "Traceback" not in err
    finally:
        other.rollback()
        other.close()
    assert _count(settings, t.raw_files) == 0  # nothing recorded: the same command works now
    assert main(["ingest", str(path)], settings=settings) == 0


@pytest.mark.full
def test_the_same_file_ingested_twice_at_once_is_stored_once(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from rematch_pipeline import validation

    path = tmp_path / "capacity.csv"
    path.write_bytes(x.capacity_csv([x.offer("OF-1")]))
    both_validated = threading.Barrier(2, timeout=30)
    one_at_a_time = threading.Lock()  # GX's context is not shared across threads; Airflow runs tasks as processes
    real = validation.validate_batch

    def in_step(*args: Any, **kwargs: Any) -> Any:
        with one_at_a_time:
            result = real(*args, **kwargs)
        both_validated.wait()  # neither has stored anything yet: both saw the file as new
        return result

    monkeypatch.setattr(validation, "validate_batch", in_step)
    statuses: list[str] = []
    runs = [threading.Thread(target=lambda: statuses.append(ingest_file(path, settings).status))
            for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(60)
    assert sorted(statuses) == ["duplicate", "ingested"]
    assert _count(settings, t.raw_files) == 1 and _count(settings, t.capacity_offers) == 1


def test_two_runs_archiving_the_same_bytes_at_once_both_succeed(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    path = tmp_path / "capacity.csv"
    path.write_bytes(x.capacity_csv([x.offer("OF-1")]))
    settings.ensure_dirs()
    both_copied = threading.Barrier(2, timeout=30)
    real = service.shutil.copyfile

    def in_step(src: Any, dst: Any) -> Any:
        result = real(src, dst)
        both_copied.wait()  # both have written their partial copy; neither has moved it into place yet
        return result

    monkeypatch.setattr(service.shutil, "copyfile", in_step)
    digest = service.sha256_of(path)
    archived: list[Path] = []
    runs = [threading.Thread(target=lambda: archived.append(service.archive_file(path, settings, digest)))
            for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(60)
    assert len(archived) == 2 and archived[0] == archived[1] and archived[0].read_bytes() == path.read_bytes()
    assert [p.name for p in archived[0].parent.iterdir()] == [archived[0].name]  # no partial file left behind


def test_an_unwritable_home_is_one_plain_line_without_a_traceback(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "capacity.csv"
    path.write_bytes(x.capacity_csv([x.offer("OF-1")]))
    (settings.home / "archive").rmdir()
    (settings.home / "archive").write_text("not a folder")  # as a full or read-only disk would, even for root
    assert main(["ingest", str(path)], settings=settings) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot read or write") and "REMATCH_HOME" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
