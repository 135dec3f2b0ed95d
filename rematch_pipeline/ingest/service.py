"""Ingest one file: archive it byte-for-byte, read it, validate it, quarantine bad rows, store good rows."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import insert, select

from rematch_pipeline import store
from rematch_pipeline.config import Settings
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine, migrate
from rematch_pipeline.domain import Policy

log = logging.getLogger(__name__)

DEFAULT_MAX_INVALID_SHARE = 0.5


@dataclass
class IngestReport:
    file: str
    sha256: str
    status: str  # ingested, duplicate, held, unrecognised
    message: str
    kind: str | None = None
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> {rows, valid, quarantined, ...}
    reports: dict[str, str] = field(default_factory=dict)  # table -> Data Docs page

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def archive_file(path: Path, settings: Settings, digest: str) -> Path:
    """Keep the raw bytes under their checksum before anything parses them; never overwritten."""
    target = settings.archive / digest[:2] / f"{digest}{''.join(path.suffixes[-1:])}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(target.suffix + ".part")
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)
    return target


def _max_invalid_share() -> float:
    return float(os.environ.get("REMATCH_MAX_INVALID_SHARE", DEFAULT_MAX_INVALID_SHARE))


def _record(df: pd.DataFrame, idx: Any) -> dict[str, Any]:
    # Quarantined rows keep their content so they can be corrected and re-submitted; NaN is not JSON.
    rec = df.loc[idx].to_dict()
    return {k: (None if v is None or (isinstance(v, float) and v != v) else v if isinstance(v, (int, float, str))
                else str(v)) for k, v in rec.items()}


def ingest_file(path: Path, settings: Settings, policy: Policy, actor: str = "cli",
                today: date | None = None) -> IngestReport:
    from rematch_pipeline.ingest.readers import UnrecognisedFileError, read_file
    from rematch_pipeline.validation import validate_batch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    settings.ensure_dirs()
    migrate(settings.database_url)
    engine = get_engine(settings.database_url)
    digest = sha256_of(path)
    with engine.connect() as conn:
        seen = conn.execute(select(t.raw_files).where(t.raw_files.c.sha256 == digest)).first()
        runs = [] if seen is None else conn.execute(
            select(t.validation_runs.c.table_name, t.validation_runs.c.report_path)
            .where(t.validation_runs.c.raw_file_id == seen.id)).all()
    if seen is not None:
        return IngestReport(path.name, digest, "duplicate",
                            f"{path.name} was already ingested as {seen.original_name} on "
                            f"{seen.received_at:%Y-%m-%d %H:%M} (sha256 {digest[:12]}…); nothing changed",
                            kind=seen.kind, reports={r.table_name: r.report_path for r in runs if r.report_path})
    archived = archive_file(path, settings, digest)
    raw = dict(sha256=digest, original_name=path.name, archived_path=str(archived.relative_to(settings.home)),
               size_bytes=archived.stat().st_size, received_at=store.now())
    try:
        batch = read_file(archived)
    except UnrecognisedFileError as exc:
        message = str(exc).replace(str(archived), path.name)
        with engine.begin() as conn:
            raw_id = conn.execute(insert(t.raw_files).values(kind=None, status="unrecognised", **raw)
                                  ).inserted_primary_key[0]  # type: ignore[index]
            conn.execute(insert(t.quarantine).values(raw_file_id=raw_id, table_name="file", sheet=None,
                                                     source_row=None, field=None, rule="unrecognised_file",
                                                     message=message, record=None, created_at=store.now()))
            store.audit(conn, actor, "file_rejected", digest[:12], {"file": path.name, "reason": message})
        return IngestReport(path.name, digest, "unrecognised", message)

    results = validate_batch(batch.tables, batch_id=digest[:12], settings=settings, today=today)
    total = sum(len(df) for df in batch.tables.values())
    invalid = sum(len(r.invalid_rows) for r in results.values())
    held = total > 0 and invalid / total > _max_invalid_share()
    report = IngestReport(path.name, digest, "held" if held else "ingested", "", kind=batch.kind)
    with engine.begin() as conn:  # the file's rows, its validation and its quarantine land together or not at all
        raw_id = conn.execute(insert(t.raw_files).values(kind=batch.kind, status=report.status, **raw)
                              ).inserted_primary_key[0]  # type: ignore[index]
        for table, res in results.items():
            df = batch.tables[table]
            conn.execute(insert(t.validation_runs).values(
                raw_file_id=raw_id, table_name=table, success=res.success, evaluated_rows=res.evaluated_rows,
                invalid_rows=len(res.invalid_rows), report_path=str(res.report_path) if res.report_path else None,
                statistics=res.statistics, created_at=store.now()))
            q_rows = []
            for err in res.row_errors:
                rec = _record(df, err.row_index)
                q_rows.append(dict(raw_file_id=raw_id, table_name=table, sheet=rec.get("source_sheet"),
                                   source_row=rec.get("source_row"), field=err.field, rule=err.rule,
                                   message=err.message, record=rec, created_at=store.now()))
            if held:
                # The whole batch waits for review: every row is kept, none is applied.
                q_rows.append(dict(raw_file_id=raw_id, table_name=table, sheet=None, source_row=None, field=None,
                                   rule="batch_held", record=None, created_at=store.now(),
                                   message=f"{invalid} of {total} rows invalid (more than "
                                           f"{_max_invalid_share():.0%}); batch held for review"))
            if q_rows:
                conn.execute(insert(t.quarantine), q_rows)
            report.counts[table] = {"rows": len(df), "valid": len(df) - len(res.invalid_rows),
                                    "quarantined": len(res.invalid_rows)}
            if res.report_path:
                report.reports[table] = str(res.report_path)
        if not held:
            _apply(conn, batch, results, raw_id, policy, report)
        store.audit(conn, actor, "file_ingested", digest[:12],
                    {"file": path.name, "kind": batch.kind, "status": report.status, "counts": report.counts})
    report.message = (f"{path.name}: {batch.kind}, {total - invalid} valid rows stored, {invalid} quarantined"
                      if not held else f"{path.name}: held for review, {invalid} of {total} rows invalid")
    for note in batch.notes:
        report.message += f"; {note}"
    log.info("ingest %s (%s): %s", digest[:12], batch.kind, report.status)
    return report


def _apply(conn: Any, batch: Any, results: dict[str, Any], raw_id: int, policy: Policy,
           report: IngestReport) -> None:
    if batch.kind == "households":
        hh, mem = batch.tables["households"], batch.tables["members"]
        bad_h = results["households"].invalid_rows
        bad_m = results["members"].invalid_rows
        good_members: dict[str, list[dict[str, Any]]] = {}
        for idx, rec in mem.iterrows():
            if idx not in bad_m and rec.get("case_id"):
                good_members.setdefault(str(rec["case_id"]).strip(), []).append(store.member_row(rec))
        outcomes: dict[str, int] = {}
        for idx, rec in hh.iterrows():
            if idx in bad_h:
                continue
            row = store.household_row(rec, raw_id, policy.pseudonym_salt)
            outcome = store.upsert_household(conn, row, good_members.get(row["case_id"], []))
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome == "replaced":
                store.audit(conn, "ingest", "household_replaced", row["pseudonym"], {"raw_file_id": raw_id})
        report.counts["households"].update(outcomes)
    elif batch.kind == "capacity":
        df = batch.tables["capacity_offers"]
        bad = results["capacity_offers"].invalid_rows
        outcomes = {}
        for idx, rec in df.iterrows():
            if idx in bad:
                continue
            outcome = store.upsert_offer(conn, store.offer_row(rec, raw_id))
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        report.counts["capacity_offers"].update(outcomes)
