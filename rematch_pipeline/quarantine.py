"""The quarantine: every rejected row with its file, sheet, row, field, rule and message; listed and resubmitted."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, select, update

from rematch_pipeline import store
from rematch_pipeline.config import Settings
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import require_schema

# Quarantined rows of these tables belong to one thing to correct, named by these record fields.
_ENTITY = {"households": ("households", ("case_id",)), "members": ("households", ("case_id",)),
           "capacity_offers": ("capacity_offers", ("offer_id",)), "decisions": ("decisions", ("case_id", "round_id"))}
_FAMILY = {"households": ("households", "members"), "capacity_offers": ("capacity_offers",),
           "decisions": ("decisions",)}


COMMAND_LINE = "(rematch decide)"  # the "file" of a decision refused at the command line
FAILED_RULE = "ingest_failed"  # the whole-file row of a file whose processing failed (ingest.service)


def list_quarantine(settings: Settings, include_resolved: bool = False) -> list[dict[str, Any]]:
    require_schema(settings.database_url)
    q = (select(t.quarantine.c.id, t.raw_files.c.original_name.label("file"), t.raw_files.c.sha256,
                t.quarantine.c.table_name, t.quarantine.c.sheet, t.quarantine.c.source_row, t.quarantine.c.field,
                t.quarantine.c.rule, t.quarantine.c.message, t.quarantine.c.created_at, t.quarantine.c.resolved_at)
         # Outer: a decision refused at the command line (`rematch decide`) has no file but is kept here too.
         .outerjoin(t.raw_files, t.raw_files.c.id == t.quarantine.c.raw_file_id)
         .order_by(t.quarantine.c.id))
    if not include_resolved:
        q = q.where(t.quarantine.c.resolved_at.is_(None))
    with settings.engine().connect() as conn:
        return [{**r._mapping, "file": r.file or COMMAND_LINE} for r in conn.execute(q)]


def _key(table: str, record: Any) -> tuple[str, ...] | None:
    if table not in _ENTITY or not isinstance(record, dict):
        return None
    values = tuple(str(record.get(f) or "").strip() for f in _ENTITY[table][1])
    return values if all(values) else None


def _stored_from(conn: Connection, table: str, key: tuple[str, ...]) -> int | None:
    """The file the stored version of the thing came from (None: not stored)."""
    family, fields = _ENTITY[table]
    tbl = t.metadata.tables[family]
    q = select(tbl.c.raw_file_id).where(*(tbl.c[f] == v for f, v in zip(fields, key, strict=True)))
    return conn.execute(q).scalar()


def _applied_from(conn: Connection, table: str, key: tuple[str, ...], raw_file_id: int) -> bool:
    """Whether the corrected file's version of the thing is the one stored now."""
    return _stored_from(conn, table, key) == raw_file_id


@dataclass
class _Fix:
    """The corrected file a resubmission stored (or had stored before), and what it takes to count as a fix."""

    raw: Any  # its raw_files row
    clean: bool  # its ingest quarantined nothing
    settings: Settings
    originals: dict[int, bool] = field(default_factory=dict)  # per original file: every record of it stored since

    def fixed(self, conn: Connection, row: Any) -> bool:
        """Whether this file fixed the quarantine row: it came after the row, and stored the row's record (a row
        with a key) or, for a whole-file row, went in clean with every record of the original file stored since."""
        if row.rule == FAILED_RULE and self.raw.id == row.raw_file_id:
            return True  # the file that failed went through this time (its rows have quarantine rows of their own)
        later = (self.raw.id > row.raw_file_id if row.raw_file_id is not None
                 else self.raw.received_at > row.created_at)
        if not later:
            return False  # an older file cannot correct a newer one
        key = _key(row.table_name, row.record)
        if key is not None:
            return _applied_from(conn, row.table_name, key, self.raw.id)
        if row.raw_file_id not in self.originals:
            self.originals[row.raw_file_id] = _all_stored_since(conn, self.settings, row.raw_file_id)
        return self.clean and self.originals[row.raw_file_id]


def _all_stored_since(conn: Connection, settings: Settings, raw_file_id: int | None) -> bool:
    """Whether every record the original file holds is stored from a newer file: a held batch's valid rows have no
    quarantine row of their own, so a corrected file that leaves them out must not clear the batch. True for a file
    that cannot be read (refused, unrecognised): it holds no record to lose."""
    from rematch_pipeline.ingest.readers import UnrecognisedFileError, read_file
    from rematch_pipeline.ingest.safety import RefusedFileError

    raw = conn.execute(select(t.raw_files).where(t.raw_files.c.id == raw_file_id)).first()
    if raw is None or not raw.archived_path:  # no file, or one refused before it was archived
        return True
    try:
        batch = read_file(settings.home / raw.archived_path, name=raw.original_name)
    except (UnrecognisedFileError, RefusedFileError):
        return True
    # Invalid rows have quarantine rows of their own, resolved on their own; only the rows held with them count here.
    own = {(q.table_name, _key(q.table_name, q.record)) for q in conn.execute(
        select(t.quarantine.c.table_name, t.quarantine.c.record).where(t.quarantine.c.raw_file_id == raw.id))}
    for table, frame in batch.tables.items():
        if table not in _ENTITY or table == "members":  # members are stored with their household
            continue
        for record in frame.astype(object).where(frame.notna(), None).to_dict("records"):
            key = _key(table, record)
            if key is None or (table, key) in own:
                continue
            stored = _stored_from(conn, table, key)
            if stored is None or stored <= raw.id:
                return False
    return True


def resubmit(settings: Settings, quarantine_id: int, corrected: Path,
             actor: str = "cli") -> dict[str, Any]:
    """Ingest a corrected file through the normal path; mark the quarantine row resolved when the fix was applied.

    A row naming a household, offer or decision is resolved when the corrected file's version of it is stored now;
    every other open row of the same household (its members too), offer or decision is resolved with it. A
    whole-file row (unrecognised, refused, held), or a row without a usable key, is resolved when the corrected file
    was ingested with no row quarantined and every record of the original file is stored since (`_Fix`). The other
    open rows of the same original file are resolved as far as the corrected file fixes them (a held batch sent
    again whole clears every row). A corrected file ingested before counts with what it stored then, if it came
    after the row.
    """
    from rematch_pipeline.ingest.service import ingest_file

    require_schema(settings.database_url)
    engine = settings.engine()
    with engine.connect() as conn:
        row = conn.execute(select(t.quarantine).where(t.quarantine.c.id == quarantine_id)).first()
    if row is None:
        raise LookupError(f"no quarantine row {quarantine_id}; see `rematch quarantine list`")
    if row.resolved_at is not None:
        raise ValueError(f"quarantine row {quarantine_id} was already resolved on {row.resolved_at:%Y-%m-%d %H:%M}")
    report = ingest_file(Path(corrected), settings, actor=actor, retry_failed=True)
    key = _key(row.table_name, row.record)
    resolved_ids: list[int] = []
    at = settings.clock.now()
    with engine.begin() as conn:
        fix = None
        if report.status in ("ingested", "duplicate") and report.raw_file_id is not None:
            raw = conn.execute(select(t.raw_files).where(t.raw_files.c.id == report.raw_file_id)).one()
            clean = conn.execute(select(t.quarantine.c.id).where(t.quarantine.c.raw_file_id == raw.id)
                                 .limit(1)).first() is None
            fix = _Fix(raw, clean, settings)
        ok = fix is not None and fix.fixed(conn, row)
        if ok and fix is not None:  # (`fix` is known to be set once `ok`; said again for the type checker)
            resolved_ids = [quarantine_id]
            family = _FAMILY[_ENTITY[row.table_name][0]] if key is not None else ()
            others = conn.execute(select(t.quarantine.c.id, t.quarantine.c.table_name, t.quarantine.c.record,
                                         t.quarantine.c.raw_file_id, t.quarantine.c.rule, t.quarantine.c.created_at)
                                  .where(t.quarantine.c.resolved_at.is_(None), t.quarantine.c.id != quarantine_id)
                                  ).all()
            resolved_ids += [
                o.id for o in others
                if ((o.table_name in family and _key(o.table_name, o.record) == key)  # the same record
                    or (row.raw_file_id is not None and o.raw_file_id == row.raw_file_id))  # the same file
                and fix.fixed(conn, o)]  # each only if this file fixed it (a newer bad version stays)
            conn.execute(update(t.quarantine).where(t.quarantine.c.id.in_(resolved_ids))
                         .values(resolved_at=at, resolved_by_raw_file_id=report.raw_file_id))
            store.audit(conn, actor, "quarantine_resolved", str(quarantine_id),
                        {"resolved_ids": resolved_ids, "raw_file_id": report.raw_file_id, "file": report.file,
                         "rule": row.rule}, at=at)
        else:
            store.audit(conn, actor, "quarantine_resubmit_failed", str(quarantine_id),
                        {"raw_file_id": report.raw_file_id, "file": report.file, "status": report.status}, at=at)
    if ok:
        message = (f"quarantine row {quarantine_id} resolved by {report.file}"
                   + (f" (with {len(resolved_ids) - 1} more row(s) of the same record or file)"
                      if len(resolved_ids) > 1 else ""))
    elif report.status == "duplicate":
        message = (f"{report.file} was ingested before and did not fix row {quarantine_id}; correct the file and "
                   "resubmit it (the row stays)")
    else:
        message = (f"{report.file} did not fix quarantine row {quarantine_id} ({report.status}: the corrected "
                   f"record was not stored; see `rematch quarantine list`)")
    return {"quarantine_id": quarantine_id, "resolved": ok, "resolved_ids": resolved_ids, "message": message,
            "ingest": report.to_json()}
