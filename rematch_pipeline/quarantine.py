"""The quarantine: every rejected row with its file, sheet, row, field, rule and message; listed and resubmitted."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rematch_pipeline.config import Settings
from rematch_pipeline.db.engine import require_schema
from rematch_pipeline.domain import QuarantineRow, RawFile
from rematch_pipeline.repository import UnitOfWork, reading, unit_of_work

# Quarantined rows of these tables belong to one thing to correct, named by these record fields.
_ENTITY = {"households": ("households", ("case_id",)), "members": ("households", ("case_id",)),
           "capacity_offers": ("capacity_offers", ("offer_id",)), "decisions": ("decisions", ("case_id", "round_id"))}
_FAMILY = {"households": ("households", "members"), "capacity_offers": ("capacity_offers",),
           "decisions": ("decisions",)}


COMMAND_LINE = "(rematch decide)"  # the "file" of a decision refused at the command line
FAILED_RULE = "ingest_failed"  # the whole-file row of a file whose processing failed (ingest.service)


def _problem(row: QuarantineRow, same_content: bool = True) -> tuple[Any, ...] | None:
    """What makes two quarantine rows the same problem of the same record, wherever it sat in its file (with
    `same_content`, the record as sent word for word too); None for a whole-file row or a row without a record."""
    if row.record is None or row.raw_file_id is None:
        return None
    key = _key(row.table_name, row.record)
    if key is not None and row.table_name == "members":
        key += (str(row.record.get("member_no") or "").strip(),)
    content = tuple(sorted((k, str(v)) for k, v in row.record.items() if k not in ("source_row", "source_sheet")))
    return (row.table_name, row.rule, row.field, key if key is not None and not same_content else content)


def supersede_repeats(uow: UnitOfWork, raw_file_id: int, at: datetime, *,
                      of_record: tuple[str, tuple[str, ...]] | None = None) -> int:
    """Close each open row of an earlier file that this file's quarantine repeats, so each problem is listed once,
    under the newest file. A row sent again word for word (a weekly cumulative export) is repeated whatever order the
    files were ingested in; a record sent again changed but with the same problem only when the file was sent as its
    correction (`of_record`: the table and key of the row resubmitted), since ingest order does not say which version
    is newer. Returns how many rows were closed."""
    def problem(row: QuarantineRow) -> tuple[Any, ...] | None:
        corrected = of_record is not None and (_ENTITY.get(row.table_name, ("",))[0], _key(row.table_name, row.record)
                                               ) == of_record
        return _problem(row, same_content=not corrected)

    newer = {p: r.id for r in uow.quarantine.of_file(raw_file_id) if (p := problem(r)) is not None}
    replaced = {o.id: newer[p] for o in uow.quarantine.open_rows()
                if o.raw_file_id is not None and o.raw_file_id != raw_file_id
                and (of_record is None or o.raw_file_id < raw_file_id)
                and (p := problem(o)) is not None and p in newer}
    uow.quarantine.supersede(replaced, at)
    return len(replaced)


def list_quarantine(settings: Settings, include_resolved: bool = False) -> list[dict[str, Any]]:
    require_schema(settings.database_url)
    with reading(settings) as uow:
        return [{**r, "file": r["file"] or COMMAND_LINE} for r in uow.quarantine.listing(include_resolved)]


# What a quarantined row of each table holds, and what all of them are, for people.
_QUARANTINED_KIND = {"households": ("a household", "household rows"),
                     "members": ("a person of a household", "rows of persons"),
                     "capacity_offers": ("a capacity offer", "capacity offer rows"),
                     "decisions": ("a decision", "decision rows")}


def describe(r: Mapping[str, Any]) -> str:
    """One quarantined entry as a statement: which file, where in it and what it holds, what is wrong; the rule's
    name for reference."""
    kind, kinds = _QUARANTINED_KIND.get(r["table_name"], (None, None))
    if kind and r.get("case"):  # a case we hold (`Quarantine.listing`), never what the sender typed
        kind += f" of case {r['case']}"
    field = f", field {r['field']}" if r.get("field") else ""
    if r["file"] == COMMAND_LINE:
        where = f"{kind or 'an entry'} given with `rematch decide`{field}"
    else:
        sheet = f"sheet {r['sheet']}, " if r.get("sheet") and r["sheet"] != r["file"] else ""  # a CSV's is the file
        if r.get("source_row"):
            where = f"{r['file']}, {sheet}row {r['source_row']} ({kind or 'a row'}){field}"
        elif kind:  # a batch held for review: every row of that table waits
            where = f"{r['file']}, {sheet}all its {kinds}{field}"
        else:
            where = f"{r['file']}, {sheet or 'the whole file'}".removesuffix(", ")
    message = str(r["message"])
    if message.startswith(f"{r['file']}: "):  # the file is named already: the sentence starts after it
        message = message[len(r["file"]) + 2:]
        message = message[:1].upper() + message[1:]
    state = (f", sent again: see #{r['superseded_by']}" if r.get("superseded_by")
             else ", resolved" if r.get("resolved_at") else "")
    return f"#{r['id']} {where}: {message} [rule {r['rule']}{state}]"


def _key(table: str, record: Any) -> tuple[str, ...] | None:
    if table not in _ENTITY or not isinstance(record, Mapping):
        return None
    values = tuple(str(record.get(f) or "").strip() for f in _ENTITY[table][1])
    return values if all(values) else None


def _stored_from(uow: UnitOfWork, table: str, key: tuple[str, ...]) -> int | None:
    """The file the stored version of the thing came from (None: not stored)."""
    family, fields = _ENTITY[table]
    return uow.records.source_file(family, fields, key)


@dataclass
class _Fix:
    """The corrected file a resubmission stored (or had stored before), and what it takes to count as a fix."""

    raw: RawFile
    clean: bool  # its ingest quarantined nothing
    settings: Settings
    # per original file: whether every record of it is stored since
    originals: dict[int | None, bool] = field(default_factory=dict)

    def fixed(self, uow: UnitOfWork, row: QuarantineRow) -> bool:
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
            return _stored_from(uow, row.table_name, key) == self.raw.id
        if row.raw_file_id not in self.originals:
            self.originals[row.raw_file_id] = _all_stored_since(uow, self.settings, row.raw_file_id)
        return self.clean and self.originals[row.raw_file_id]


def _all_stored_since(uow: UnitOfWork, settings: Settings, raw_file_id: int | None) -> bool:
    """Whether every record the original file holds is stored from a newer file: a held batch's valid rows have no
    quarantine row of their own, so a corrected file that leaves them out must not clear the batch. True for a file
    that cannot be read (refused, unrecognised): it holds no record to lose."""
    from rematch_pipeline.ingest.readers import UnrecognisedFileError, read_file
    from rematch_pipeline.ingest.safety import RefusedFileError

    raw = None if raw_file_id is None else uow.raw_files.get(raw_file_id)
    if raw is None or not raw.archived_path:  # no file, or one refused before it was archived
        return True
    try:
        batch = read_file(settings.home / raw.archived_path, name=raw.original_name)
    except (UnrecognisedFileError, RefusedFileError):
        return True
    # Invalid rows have quarantine rows of their own, resolved on their own; only the rows held with them count here.
    own = {(q.table_name, _key(q.table_name, q.record)) for q in uow.quarantine.of_file(raw.id)}
    for table, frame in batch.tables.items():
        if table not in _ENTITY or table == "members":  # members are stored with their household
            continue
        for record in frame.astype(object).where(frame.notna(), None).to_dict("records"):
            key = _key(table, record)
            if key is None or (table, key) in own:
                continue
            stored = _stored_from(uow, table, key)
            if stored is None or stored <= raw.id:
                return False
    return True


def _resolved_by(uow: UnitOfWork, row: QuarantineRow, fix: _Fix) -> list[int]:
    """The rows a fix of `row` resolves: `row`, and each other open row of the same record or the same file that
    the corrected file fixed too (a newer bad version stays)."""
    key = _key(row.table_name, row.record)
    family = _FAMILY[_ENTITY[row.table_name][0]] if key is not None else ()
    return [row.id] + [
        o.id for o in uow.quarantine.open_rows()
        if o.id != row.id
        and ((o.table_name in family and _key(o.table_name, o.record) == key)  # the same record
             or (row.raw_file_id is not None and o.raw_file_id == row.raw_file_id))  # the same file
        and fix.fixed(uow, o)]


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
    with reading(settings) as uow:
        row = uow.quarantine.get(quarantine_id)
        while row is not None and row.superseded_by is not None:  # the problem sent again: its newest row counts
            row = uow.quarantine.get(row.superseded_by)
    if row is None:
        raise LookupError(f"no quarantine row {quarantine_id}; see `rematch quarantine list`")
    if row.resolved_at is not None:
        raise ValueError(f"quarantine row {quarantine_id} was already resolved on {row.resolved_at:%Y-%m-%d %H:%M}")
    report = ingest_file(Path(corrected), settings, actor=actor, retry_failed=True)
    resolved_ids: list[int] = []
    at = settings.clock.now()
    with unit_of_work(settings) as uow:
        raw = (uow.raw_files.get(report.raw_file_id)
               if report.status in ("ingested", "duplicate") and report.raw_file_id is not None else None)
        fix = None if raw is None else _Fix(raw, not uow.quarantine.of_file(raw.id), settings)
        if fix is not None and fix.fixed(uow, row):
            resolved_ids = _resolved_by(uow, row, fix)
            uow.quarantine.resolve(resolved_ids, at, report.raw_file_id)
            uow.audit(actor, "quarantine_resolved", str(quarantine_id),
                      {"resolved_ids": resolved_ids, "raw_file_id": report.raw_file_id, "file": report.file,
                       "rule": row.rule}, at)
        else:
            key = _key(row.table_name, row.record)
            if raw is not None and key is not None:  # sent as its correction: the same problem again replaces it
                supersede_repeats(uow, raw.id, at, of_record=(_ENTITY[row.table_name][0], key))
            uow.audit(actor, "quarantine_resubmit_failed", str(quarantine_id),
                      {"raw_file_id": report.raw_file_id, "file": report.file, "status": report.status}, at)
        now = uow.quarantine.get(row.id)
    ok = bool(resolved_ids)
    if now is not None and now.superseded_by is not None:
        message = (f"{report.file} was ingested but has the same problem as quarantine row {quarantine_id}; it is "
                   f"listed as row {now.superseded_by} now: correct that record and resubmit row {now.superseded_by}")
    elif ok:
        message = (f"quarantine row {quarantine_id} resolved by {report.file}"
                   + (f" (with {len(resolved_ids) - 1} more row(s) of the same record or file)"
                      if len(resolved_ids) > 1 else ""))
    elif report.status == "duplicate":
        message = (f"{report.file} was ingested before and did not fix row {quarantine_id}; correct the file and "
                   "resubmit it (the row stays)")
    elif report.status == "ingested":  # stored as any file would be, but not the record this row waits for
        message = (f"{report.file} was ingested (its valid rows are stored like those of any file), but it did not "
                   f"fix quarantine row {quarantine_id}: it does not hold that row's record corrected; the row stays "
                   "(see `rematch quarantine list`)")
    else:
        message = (f"{report.file} did not fix quarantine row {quarantine_id} ({report.status}: the corrected "
                   f"record was not stored; see `rematch quarantine list`)")
    return {"quarantine_id": quarantine_id, "resolved": ok, "resolved_ids": resolved_ids, "message": message,
            "ingest": report.to_json()}
