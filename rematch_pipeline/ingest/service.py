"""Ingest one file: archive it byte-for-byte, read it, validate it, quarantine bad rows, store good rows."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from rematch_pipeline import offers, progress, store
from rematch_pipeline.config import Settings
from rematch_pipeline.db.engine import is_busy, require_schema
from rematch_pipeline.domain import RawFile
from rematch_pipeline.ingest.safety import RefusedFileError, check_size
from rematch_pipeline.quarantine import FAILED_RULE, supersede_repeats
from rematch_pipeline.reports.charts import counted
from rematch_pipeline.repository import UnitOfWork, reading, unit_of_work

log = logging.getLogger(__name__)

FAILED = "failed"  # a file whose processing failed: recorded, nothing applied, tried again only on resubmission


@dataclass
class IngestReport:
    file: str
    sha256: str
    status: str  # ingested, duplicate, held, unrecognised, refused, failed
    message: str
    kind: str | None = None
    format: str | None = None
    duplicate: bool = False
    # Totals over every sheet of the file (households and their members count as rows each):
    # rows_read == accepted + quarantined + held + not_read.
    rows_read: int = 0
    accepted: int = 0
    replaced: int = 0
    quarantined: int = 0
    held: int = 0
    not_read: int = 0  # rows of sheets that hold no table of the contract (each such sheet is in the quarantine)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> {rows, accepted, quarantined, ...}
    reports: dict[str, str] = field(default_factory=dict)  # table -> Data Docs page of this run
    data_docs: str | None = None  # the Data Docs site index
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # parse_s, validate_s, store_s
    raw_file_id: int | None = None

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
    # The sender's extension, when it is one (a long last dot-segment of a name would make the path too long).
    suffix = path.suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", path.suffix) else ""
    target = settings.archive / digest[:2] / f"{digest}{suffix}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own per attempt: two runs archiving the same bytes at once must not share a partial file.
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{digest[:12]}.", suffix=".part")
        os.close(fd)
        try:
            shutil.copyfile(path, tmp_name)
            os.replace(tmp_name, target)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
    return target


def _record(df: pd.DataFrame, idx: Any) -> dict[str, Any]:
    # Quarantined rows keep their content so they can be corrected and re-submitted; NaN is not JSON.
    rec = df.loc[idx].to_dict()
    return {k: (None if v is None or (isinstance(v, float) and v != v) else v if isinstance(v, (int, float, str))
                else str(v)) for k, v in rec.items()}


@dataclass(frozen=True)
class _Reject:
    """A valid row that storing could not apply (it needs the database to judge)."""

    table: str
    index: Any
    field: str
    rule: str
    message: str


_APPLY_RULES = {
    "other_municipality": ("offer_id", "offer_id_of_another_municipality",
                           "This offer_id belongs to another municipality (AGS), which submitted it first; it was not "
                           "applied. Use an offer_id of your own, e.g. your AGS followed by a number."),
    "kept_newer": ("_submission_time", "older_submission_than_stored",
                   "A newer submission of this household (same case_id) is already stored; this older one was not "
                   "applied. Nothing to do unless the stored one is wrong."),
    **{f"{key}_looks_like_another": (key, f"{key}_looks_like_another",
                                      f"This {key} is drawn exactly like another one already stored or in this file "
                                      f"(letters of another alphabet that look the same, e.g. a Cyrillic Р for a "
                                      f"Latin P), so the two would be taken for one another; it was not applied. "
                                      f"Check which is meant and write it as that one is written.")
       for key in ("case_id", "offer_id")},
    "unknown": ("case_id", "household_unknown_without_members",
                "This household is not known yet and the file has no member rows (a KoboToolbox CSV export can only "
                "update known households); send the XLSX export with its members sheet or the ODK Central ZIP."),
    **offers.DECISION_REJECTS,
}
_MEMBER_REJECT = ("case_id", "member_of_unapplied_household",
                  "This person's household row was not applied (see the quarantine entry of the household row); "
                  "the person waits with it.")


def _duplicate_report(path_name: str, digest: str, seen: RawFile, reports: dict[str, str],
                      settings: Settings) -> IngestReport:
    """The same bytes again: nothing changes. If they were refused or held the first time, the report says so with
    that status (nothing of the file was ever applied), so the sender is not told all is well."""
    index = settings.data_docs / "index.html"
    when = f"{seen.received_at:%Y-%m-%d %H:%M} (sha256 {digest[:12]}…)"
    if seen.status != "ingested":
        status, message = seen.status, (
            f"{path_name} is the same file as {seen.original_name}, {seen.status} on {when}: none of its rows were "
            "applied; `rematch quarantine list` says why. " + (
                "Once the cause is mended, `rematch quarantine resubmit ID --file FILE` tries this file again"
                if seen.status == FAILED else "Correct the file and send the corrected one"))
    else:
        status, message = "duplicate", f"{path_name} was already ingested as {seen.original_name} on {when}; " \
            "nothing changed"
    return IngestReport(path_name, digest, status, message,
                        kind=seen.kind, format=seen.format, duplicate=True, raw_file_id=seen.id,
                        reports=reports,
                        data_docs=str(index) if index.exists() else None)


def ingest_file(path: Path, settings: Settings, actor: str = "cli",
                name: str | None = None, retry_failed: bool = False) -> IngestReport:
    """Archive, read, validate and store one file in one transaction; `name` is its original name (default: path's).

    Date rules (no interview or decision after today) are judged on the day of `settings.clock`. Whatever goes
    wrong on the way ends as an outcome: a file that fails is recorded `failed` with a plain reason, nothing of it
    applied; the same bytes again are a duplicate of that outcome unless `retry_failed` (a resubmission).
    """
    path = Path(path)
    name = name or path.name
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    require_schema(settings.database_url)
    settings.ensure_dirs()
    digest = sha256_of(path)
    with reading(settings) as uow:
        seen = uow.raw_files.by_digest(digest)
        reports = {} if seen is None else uow.raw_files.reports(seen.id)
    if seen is not None and not (retry_failed and seen.status == FAILED):
        return _duplicate_report(name, digest, seen, reports, settings)
    try:
        check_size(path, name, settings.limits)
        refused = None
    except RefusedFileError as exc:  # refused before a copy is made: the archive never holds it
        refused = exc
    archived = None if refused else archive_file(path, settings, digest)
    raw = dict(sha256=digest, original_name=name,
               archived_path="" if archived is None else str(archived.relative_to(settings.home)),
               size_bytes=path.stat().st_size if archived is None else archived.stat().st_size,
               received_at=settings.clock.now())
    attempt = _Attempt(raw, None if seen is None else seen.id, name, digest, actor)
    try:
        if archived is None:
            assert refused is not None
            return _refuse(attempt, "refused", refused.rule, str(refused), settings)
        return _ingest_archived(archived, attempt, settings)
    except Exception as exc:  # whatever the file made us fail on: recorded with its rows, never lost
        if is_busy(exc):
            raise  # another run holds the database: nothing was applied, the same command works once it ended
        with reading(settings) as uow:
            now_seen = uow.raw_files.by_digest(digest)
        if now_seen is not None and now_seen.id != attempt.retry_of:
            # The same bytes were ingested by another run at the same moment: that one counts.
            return _duplicate_report(name, digest, now_seen, {}, settings)
        return _record_failure(exc, attempt, settings)


@dataclass
class _Attempt:
    """One try at a file: its raw_files values, the failed row it retries (if any), and how far it got."""

    raw: dict[str, Any]
    retry_of: int | None
    name: str
    digest: str
    actor: str
    batch: Any = None  # the file as read, once it was
    stored: bool = False  # its outcome is committed


def _store_raw(uow: UnitOfWork, attempt: _Attempt, **values: Any) -> int:
    """The file's raw_files row: new, or the failed one it retries, now with this attempt's outcome."""
    return uow.raw_files.record({**attempt.raw, **values}, attempt.retry_of)


def _refuse(attempt: _Attempt, status: str, rule: str, message: str, settings: Settings) -> IngestReport:
    """Record a file refused or not recognised as a whole: its raw_files row and one quarantine row saying why."""
    at = settings.clock.now()
    with unit_of_work(settings) as uow:
        raw_id = _store_raw(uow, attempt, kind=None, status=status)
        uow.quarantine.add(raw_file_id=raw_id, table_name="file", field=None, rule=rule, message=message,
                           record=None, at=at)
        uow.audit(attempt.actor, "file_rejected", attempt.digest[:12], {"file": attempt.name, "rule": rule}, at=at)
    attempt.stored = True
    return IngestReport(attempt.name, attempt.digest, status, message, raw_file_id=raw_id)


def _ingest_archived(archived: Path, attempt: _Attempt, settings: Settings) -> IngestReport:
    from rematch_pipeline.ingest.readers import UnrecognisedFileError, read_file
    from rematch_pipeline.validation import RowError, SourceFile, report_refused_while_storing, validate_batch

    name, digest, actor = attempt.name, attempt.digest, attempt.actor
    started = time.perf_counter()
    try:
        with progress.step(f"reading {name}"):
            batch = read_file(archived, settings.limits, name=name)
    except (UnrecognisedFileError, RefusedFileError) as exc:
        status, rule = (("refused", exc.rule) if isinstance(exc, RefusedFileError)
                        else ("unrecognised", "unrecognised_file"))
        return _refuse(attempt, status, rule, str(exc).replace(str(archived), name), settings)
    attempt.batch = batch
    parsed = time.perf_counter()

    structure: dict[str, list[RowError]] = {}
    for issue in batch.issues:
        structure.setdefault(issue.table, []).append(RowError(issue.row, issue.field, issue.rule, issue.message))
    with progress.step(f"validating {name}") as validating:
        validating.note(counted(sum(len(df) for df in batch.tables.values()), "row"))
        results = validate_batch(batch.tables, batch_id=digest[:12], settings=settings, structure=structure,
                                 source=SourceFile(name, digest))
    validated = time.perf_counter()
    total = sum(len(df) for df in batch.tables.values())
    invalid = sum(len(r.invalid_rows) for r in results.values())
    held = total > 0 and invalid / total > settings.max_invalid_share
    report = IngestReport(name, digest, "held" if held else "ingested", "", kind=batch.kind, format=batch.format,
                          notes=list(batch.notes))
    at = settings.clock.now()
    # The file's rows, its validation and its quarantine land together or not at all.
    with progress.step(f"storing {name}", total=len(results), unit="tables") as storing, \
            unit_of_work(settings) as uow:
        raw_id = _store_raw(uow, attempt, kind=batch.kind, format=batch.format, status=report.status)
        report.raw_file_id = raw_id
        salt = settings.pseudonym_salt
        rejects: list[_Reject] = [] if held else _apply(uow, batch, results, raw_id, salt, report, actor, at)
        for table, res in results.items():  # on the batch's Data Docs page too, like the rows the rules refused
            report_refused_while_storing(res, batch.tables[table].index, [
                RowError(r.index, r.field, r.rule, r.message) for r in rejects if r.table == table])
        for table, res in results.items():
            df = batch.tables[table]
            uow.raw_files.add_validation(
                raw_id, table, success=res.success, evaluated_rows=res.evaluated_rows,
                invalid_rows=len(res.invalid_rows), report_path=str(res.report_path) if res.report_path else None,
                statistics=res.statistics, at=at)
            q_rows = []
            errors = [(e.row_index, e.field, e.rule, e.message) for e in res.row_errors]
            errors += [(r.index, r.field, r.rule, r.message) for r in rejects if r.table == table]
            for idx, fld, rule, message in errors:
                rec = _record(df, idx)
                sheet = rec.get("source_sheet")  # a CSV's sheet is its file name, which may be long
                q_rows.append(dict(raw_file_id=raw_id, table_name=table, sheet=_clip(sheet, SHEET_CHARS),
                                   source_row=rec.get("source_row"), field=fld, rule=rule,
                                   message=message, record=rec, at=at))
            if held:
                # The whole batch waits for review: every row is kept, none is applied.
                q_rows.append(dict(raw_file_id=raw_id, table_name=table, sheet=None, source_row=None, field=None,
                                   rule="batch_held", record=None, at=at,
                                   message=f"{invalid} of {total} rows invalid (more than "
                                           f"{settings.max_invalid_share:.0%}); batch held for review"))
            uow.quarantine.add_many(q_rows)
            bad = set(res.invalid_rows) | {r.index for r in rejects if r.table == table}
            counts = report.counts.setdefault(table, {})
            counts.update(rows=len(df), quarantined=len(bad), accepted=0 if held else len(df) - len(bad),
                          held=len(df) - len(bad) if held else 0)
            if res.report_path:
                report.reports[table] = str(res.report_path)
            storing.advance(detail=f"{counted(len(df), 'row')} of {table.replace('_', ' ')}")
        uow.quarantine.add_many([
            dict(raw_file_id=raw_id, table_name="file", sheet=_clip(sheet, SHEET_CHARS), source_row=None,
                 field=None, rule="sheet_not_read", record=None, at=at,
                 message=f"Sheet {_clip(sheet, SHEET_CHARS)!r} has {n} filled rows but no header row of the "
                         f"data contract, so none of them was read; if they are interviews or offers, copy them "
                         f"into the right sheet and send the file again.")
            for sheet, n in batch.unread.items()])
        repeated = supersede_repeats(uow, raw_id, at)
        if repeated:
            report.notes.append(f"{counted(repeated, 'quarantined row')} of earlier files came again with the same "
                                "problem; each is listed once, under this file")
        uow.audit(actor, "file_ingested", digest[:12],
                  {"file": name, "kind": batch.kind, "format": batch.format, "status": report.status,
                   "counts": report.counts, "superseded_quarantine_rows": repeated}, at=at)
    attempt.stored = True
    stored = time.perf_counter()
    report.timings = {"parse_s": round(parsed - started, 3), "validate_s": round(validated - parsed, 3),
                      "store_s": round(stored - validated, 3)}
    for key in ("rows_read", "accepted", "replaced", "quarantined", "held"):
        c = "rows" if key == "rows_read" else key
        setattr(report, key, sum(v.get(c, 0) for v in report.counts.values()))
    report.not_read = sum(batch.unread.values())
    report.rows_read += report.not_read
    index = settings.data_docs / "index.html"
    report.data_docs = str(index) if index.exists() else None
    if held:
        report.message = f"{name}: held for review, {invalid} of {total} rows invalid"
    else:
        report.message = (f"{name}: {batch.kind} ({batch.format}), {report.rows_read} rows read, "
                          f"{report.accepted} accepted ({report.replaced} replacing earlier versions), "
                          f"{report.quarantined} quarantined"
                          + (f", {report.not_read} not read" if report.not_read else ""))
    for note in report.notes:
        report.message += f"; {note}"
    log.info("ingest %s (%s): %s", digest[:12], batch.kind, report.status)
    return report


def _failure_reason(exc: BaseException) -> str:
    """What went wrong, in words a sender and the data team can act on; never the exception's text, which may quote
    the file's values (a database error names the value it refused)."""
    # By the DB-API's classes (PEP 249), which SQLAlchemy, sqlite3 and psycopg (COPY included) all use.
    # The repository's Conflict carries the database's IntegrityError as its cause.
    causes = (exc, exc.__cause__, getattr(exc, "orig", None), getattr(exc.__cause__, "orig", None))
    kinds = {c.__name__ for e in causes if e is not None for c in type(e).__mro__}
    if isinstance(exc, MemoryError):
        why = "it needs more memory than this machine has to read it. Split it into smaller files"
    elif isinstance(exc, UnicodeError):
        why = "its text could not be decoded. Export it again as UTF-8"
    elif isinstance(exc, OverflowError) or "DataError" in kinds:
        why = ("a value in it is too long or too large for the database. Check the numbers and lengths in the file "
               "against the data contract")
    elif "IntegrityError" in kinds:
        why = "the database refused a row as conflicting with one already stored. Ask the data team to look"
    elif "OperationalError" in kinds:
        why = ("the database could not be written just now (busy, locked, full or unreachable). Send it again when "
               "the data team says the database is back")
    else:
        why = f"an error in this software stopped it ({type(exc).__name__}). The data team has been told in the log"
    return (f"This file could not be processed: {why}. Nothing of it was applied; send it again with "
            "`rematch quarantine resubmit ID --file FILE` (the same file is tried again).")


def _record_failure(exc: Exception, attempt: _Attempt, settings: Settings) -> IngestReport:
    """Record a file whose processing failed: raw_files row `failed`, one quarantine row with the reason, its rows
    counted as held (none applied), the audit trail; the inbox scan does not pick it up again."""
    if attempt.stored:
        raise exc  # the outcome is committed: only the report after it failed, a fault of this software
    name, digest = attempt.name, attempt.digest
    # Classes and the place it happened, never the exception's text: it may quote the file's values.
    orig = getattr(exc, "orig", None)
    frames = traceback.extract_tb(exc.__traceback__)
    where = next((f for f in reversed(frames) if "rematch_pipeline" in f.filename), frames[-1] if frames else None)
    log.error("ingest %s failed: %s%s at %s", digest[:12], type(exc).__name__,
              f" ({type(orig).__name__})" if orig is not None else "",
              f"{Path(where.filename).name}:{where.lineno}" if where else "?")
    message = _failure_reason(exc)
    batch = attempt.batch
    report = IngestReport(name, digest, FAILED, f"{name}: {message}",
                          kind=batch.kind if batch else None, format=batch.format if batch else None)
    for table, df in (batch.tables.items() if batch else ()):
        report.counts[table] = {"rows": len(df), "accepted": 0, "quarantined": 0, "held": len(df)}
    report.rows_read = report.held = sum(c["rows"] for c in report.counts.values())
    at = settings.clock.now()
    with unit_of_work(settings) as uow:
        report.raw_file_id = _store_raw(uow, attempt, kind=report.kind, format=report.format, status=FAILED)
        uow.quarantine.add(raw_file_id=report.raw_file_id, table_name="file", field=None, rule=FAILED_RULE,
                           message=message, record=None, at=at)
        uow.audit(attempt.actor, "file_failed", digest[:12],
                  {"file": name, "error": type(exc).__name__, "rows": report.rows_read}, at=at)
    return report


SHEET_CHARS = 128  # quarantine.sheet


def _clip(text: Any, limit: int) -> Any:
    return text[: limit - 1] + "…" if isinstance(text, str) and len(text) > limit else text


def _valid_records(df: pd.DataFrame, bad: set[Any]) -> list[tuple[Any, dict[str, Any]]]:
    good = df[~df.index.isin(list(bad))] if bad else df
    return list(zip(good.index, good.to_dict("records"), strict=True))


def _apply(uow: UnitOfWork, batch: Any, results: dict[str, Any], raw_id: int, salt: str,
           report: IngestReport, actor: str, at: datetime) -> list[_Reject]:
    """Store the valid rows at `at`; returns the valid rows storing could not apply (they go to the quarantine)."""
    rejects: list[_Reject] = []
    if batch.kind == "households":
        hh = batch.tables["households"]
        mem = batch.tables.get("members")
        members: dict[str, list[dict[str, Any]]] | None = None
        member_index: dict[str, list[Any]] = {}
        if mem is not None:
            members = {}
            for idx, rec in _valid_records(mem, results["members"].invalid_rows):
                if rec.get("case_id"):
                    row = store.member_row(rec)
                    members.setdefault(row["case_id"], []).append(row)
                    member_index.setdefault(row["case_id"], []).append(idx)
        rows, index_of = [], {}
        for idx, rec in _valid_records(hh, results["households"].invalid_rows):
            row = store.household_row(rec, raw_id, salt)
            rows.append(row)
            index_of[row["case_id"]] = idx
        outcomes = uow.households.apply(rows, members, at)
        for case_id, outcome in outcomes.items():
            if outcome in _APPLY_RULES:
                rejects.append(_Reject("households", index_of[case_id], *_APPLY_RULES[outcome]))
                rejects.extend(_Reject("members", i, *_MEMBER_REJECT) for i in member_index.get(case_id, []))
        _tally(report, "households", outcomes.values())
    elif batch.kind == "capacity":
        df = batch.tables["capacity_offers"]
        valid = _valid_records(df, results["capacity_offers"].invalid_rows)
        rows = [store.offer_row(rec, raw_id) for _, rec in valid]
        outcomes_o = uow.capacity_offers.apply(rows, at)
        for (idx, _), row in zip(valid, rows, strict=True):
            if outcomes_o[row["offer_id"]] in _APPLY_RULES:
                rejects.append(_Reject("capacity_offers", idx, *_APPLY_RULES[outcomes_o[row["offer_id"]]]))
        _tally(report, "capacity_offers", outcomes_o.values())
        replaced = [oid for oid, outcome in outcomes_o.items() if outcome == "replaced"]
        for offer_id, warning in offers.overcommitted(uow, replaced):
            report.notes.append(f"warning: {warning}")
            uow.audit(actor, "offer_overcommitted", offer_id, {"raw_file_id": raw_id, "warning": warning}, at=at)
    elif batch.kind == "decisions":
        df = batch.tables["decisions"]
        valid = _valid_records(df, results["decisions"].invalid_rows)
        outcomes_d = []
        for idx, rec in valid:
            outcome = offers.record_decision(
                uow, str(rec["case_id"]).strip(), str(rec["round_id"]).strip(), str(rec["decision"]).strip(),
                str(rec["decided_at"]), store.text_or_none(rec.get("reason")), actor="ingest", at=at,
                raw_file_id=raw_id)
            if outcome in _APPLY_RULES:
                rejects.append(_Reject("decisions", idx, *_APPLY_RULES[outcome]))
            outcomes_d.append(outcome)
        _tally(report, "decisions", outcomes_d)
    return rejects


def _tally(report: IngestReport, table: str, outcomes: Any) -> None:
    counts = report.counts.setdefault(table, {})
    for key in ("inserted", "replaced", "unchanged"):
        counts[key] = 0
    for outcome in outcomes:
        if outcome in counts:
            counts[outcome] += 1
