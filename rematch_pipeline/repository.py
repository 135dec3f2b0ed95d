"""Repositories of what the services keep, and their unit of work: the only SQL the services need (ingest aside)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from sqlalchemy import Connection, and_, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError

from rematch_pipeline import store
from rematch_pipeline.clock import as_utc
from rematch_pipeline.db import tables as t
from rematch_pipeline.domain import (
    PENDING,
    Assignment,
    CapacityOffer,
    Document,
    Household,
    MatchingRound,
    MatchOffer,
    QuarantineRow,
    RawFile,
    Unmatched,
    pseudonym,
)

if TYPE_CHECKING:
    from rematch_pipeline.config import Settings


class RoundBusy(RuntimeError):
    """Another run holds this round right now; this attempt stops without writing anything."""


class StoredSnapshot(NamedTuple):
    data: bytes  # gzip-compressed canonical JSON
    purged_cases: int  # households of it erased or purged since (retention): then it cannot be replayed


class Rounds(Protocol):
    def get(self, round_id: str) -> MatchingRound | None: ...
    def save(self, rnd: MatchingRound) -> None: ...
    def assignments(self, round_id: str) -> list[Assignment]: ...
    def unmatched(self, round_id: str) -> list[Unmatched]: ...
    def snapshot(self, round_id: str) -> StoredSnapshot | None:
        """The input snapshot the round was solved on (None before it was solved)."""
        ...
    def lock(self, round_id: str) -> None:
        """Hold the round for this transaction; raises `RoundBusy` when another run holds it (PostgreSQL), waits for
        it otherwise (SQLite has one writer at a time)."""
        ...
    def add(self, rnd: MatchingRound) -> None: ...
    def record_solve(self, rnd: MatchingRound, snapshot: bytes, digest: str, assignments: Sequence[Assignment],
                     unmatched: Sequence[Unmatched]) -> None:
        """Store a solve: the round's state, policy, statistics and checksums, its snapshot and results (replacing
        those of an earlier failed attempt)."""
        ...
    def seen_before(self, round_date: date) -> set[str]:
        """Households an earlier round (by date) placed or left unplaced: a pool household not among them entered
        the pool since the last round."""
        ...
    def ids(self, states: Sequence[str] | None = None, newest_first: bool = False) -> list[str]:
        """Round ids by round date, of these states only (None: every round)."""
        ...


class MatchOffers(Protocol):
    def get(self, round_id: str, case_id: str) -> MatchOffer | None: ...
    def of_round(self, round_id: str) -> list[MatchOffer]: ...
    def with_status(self, states: Sequence[str]) -> list[MatchOffer]:
        """Every offer of every round in one of these states."""
        ...
    def pending_count(self, round_id: str) -> int: ...
    def due(self, today: date) -> list[MatchOffer]: ...
    def pending_of(self, case_id: str) -> list[MatchOffer]: ...
    def add(self, offers: Sequence[MatchOffer]) -> None: ...
    def save(self, offer: MatchOffer) -> None: ...


class Decisions(Protocol):
    def exists(self, case_id: str, round_id: str) -> bool: ...
    def add(self, values: Mapping[str, Any]) -> None: ...


class Households(Protocol):
    def get_many(self, case_ids: Iterable[str]) -> list[Household]: ...
    def apply(self, rows: list[dict[str, Any]], members: dict[str, list[dict[str, Any]]] | None,
              at: datetime) -> dict[str, str]:
        """Store validated households (and their members); returns an outcome per case_id."""
        ...

    def pool(self) -> list[Household]:
        """The households waiting in the pool (consenting to matching, not closed)."""
        ...
    def kept(self, case_ids: Iterable[str]) -> set[str]:
        """Those of these households whose details are still kept (not purged or erased)."""
        ...
    def close_accepted(self, case_id: str, at: datetime) -> None: ...


class CapacityOffers(Protocol):
    def all(self, valid_on: date | None = None) -> list[CapacityOffer]: ...
    def apply(self, rows: list[dict[str, Any]], at: datetime) -> dict[str, str]:
        """Store validated offers; returns an outcome per offer_id."""
        ...


class Quarantine(Protocol):
    def get(self, row_id: int) -> QuarantineRow | None: ...
    def open_rows(self) -> list[QuarantineRow]: ...
    def of_file(self, raw_file_id: int) -> list[QuarantineRow]: ...
    def resolve(self, row_ids: Sequence[int], at: datetime, by_raw_file_id: int | None) -> None: ...
    def listing(self, include_resolved: bool) -> list[dict[str, Any]]: ...
    def add(self, *, raw_file_id: int | None, table_name: str, field: str | None, rule: str, message: str,
            record: Mapping[str, Any] | None, at: datetime, sheet: str | None = None,
            source_row: int | None = None) -> None:
        """Keep a refused entry with what to do about it."""
        ...

    def add_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Keep many entries at once (each with the keyword arguments of `add`)."""
        ...

    def supersede(self, replaced: Mapping[int, int], at: datetime) -> None:
        """Close each open row (key) that a newer file's row (value) repeats."""
        ...


class RawFiles(Protocol):
    def get(self, raw_file_id: int) -> RawFile | None: ...
    def by_digest(self, sha256: str) -> RawFile | None: ...
    def digests(self) -> set[str]:
        """The sha256 of every file received, whatever became of it."""
        ...

    def record(self, values: Mapping[str, Any], retry_of: int | None) -> int:
        """Keep what became of a file: a new row, or the failed one this attempt retries; returns its id."""
        ...

    def reports(self, raw_file_id: int) -> dict[str, str]:
        """The validation report of each table of a file that has one."""
        ...

    def add_validation(self, raw_file_id: int, table_name: str, *, success: bool, evaluated_rows: int,
                       invalid_rows: int, report_path: str | None, statistics: Mapping[str, Any] | None,
                       at: datetime) -> None: ...


class Records(Protocol):
    def source_file(self, table: str, fields: Sequence[str], key: Sequence[str]) -> int | None:
        """The file the stored version of a record came from (None: not stored)."""
        ...


class CaseRef(NamedTuple):
    case_id: str
    pseudonym: str
    status: str
    purged_at: datetime | None = None  # when its personal details were erased or purged


class DocumentFile(NamedTuple):
    html_path: str
    pdf_path: str
    version: int


class PersonalData(Protocol):
    """Where a household's personal details are kept, for retention and erasure."""

    def closed_before(self, cutoff: datetime, states: Sequence[str]) -> list[CaseRef]: ...
    def case(self, case_id: str) -> CaseRef | None: ...
    def held(self, case_ids: Iterable[str]) -> set[str]:
        """Those of the ids that are cases we hold (`held_cases`)."""
        ...
    def withdraw(self, case_id: str, at: datetime) -> None: ...
    def scrub(self, case_ids: Sequence[str], household: Mapping[str, Any], member: Mapping[str, Any],
              at: datetime) -> int:
        """Overwrite these households' and members' fields and clear their decision reasons (returns how many)."""
        ...
    def letter_files(self, case_ids: Sequence[str]) -> list[DocumentFile]: ...
    def packet_files(self, case_ids: Sequence[str]) -> list[DocumentFile]:
        """Every version of every packet that lists one of these households."""
        ...
    def clear_quarantined_records(self, case_ids: Sequence[str]) -> int: ...
    def snapshots(self) -> list[tuple[str, bytes, int]]:
        """(round_id, compressed snapshot, households purged in it) of every round."""
        ...
    def save_snapshot(self, round_id: str, snapshot: bytes, purged_cases: int) -> None: ...
    def files_to_purge(self, kinds: Sequence[str]) -> list[RawFile]:
        """Files of these kinds not purged yet and holding no household whose details are still kept."""
        ...
    def holds_purged_household(self, raw_file_id: int) -> bool: ...
    def decided_only_for_purged(self, raw_file_id: int) -> bool:
        """Whether a decisions file names households and every one of them is purged."""
        ...
    def mark_purged(self, raw_file_id: int) -> None: ...


class Conflict(Exception):
    """Another transaction wrote the same row first (a unique key): the step is theirs, not to be done twice."""


class Documents(Protocol):
    def latest_packets(self, round_id: str) -> list[Document]:
        """The latest version of each packet, addressed to the contact of the offer the round placed households in."""
        ...
    def latest_letters(self, round_id: str, ags: str | None, salt: str) -> list[Document]:
        """The latest version of each letter of households still kept (not erased), optionally of one municipality."""
        ...


class StoredPaths:
    """Paths of files under REMATCH_HOME are stored relative to it, so a copy of the home on another machine (an
    auditor's) finds them; read back, they are under this machine's home. Rows stored absolute still read."""

    def __init__(self, home: Path | None) -> None:
        self.home = home

    def relative(self, path: Any) -> str | None:
        """The path relative to the home, or None for a path outside it."""
        if self.home is None:
            return None
        try:
            return Path(path).resolve().relative_to(self.home.resolve()).as_posix()
        except ValueError:
            return None

    def store(self, path: Any) -> Any:
        if not path:
            return None if path is None else str(path)
        return self.relative(path) or str(path)

    def shown(self, path: Any) -> Any:
        """A stored path as someone with a copy of the home finds it: relative to the home, never this machine's
        absolute path (outside the home only the file's name)."""
        return path and (self.relative(path) or Path(path).name)

    def load(self, stored: Any) -> Path:
        p = Path(stored)
        return p if p.is_absolute() or self.home is None else self.home / p


@dataclass(frozen=True)
class Ledger:
    """What the ledger holds for one document: the row with this content, and the latest version before it."""

    same: Any  # the row whose sha256 is this content, or None
    prior: Any  # the row of the latest version, or None

    @property
    def next_version(self) -> int:
        return (self.prior.version if self.prior is not None else 0) + 1


class DocumentVersions(Protocol):
    """Every rendered version of each packet (key: round_id, ags) and letter (key: round_id, case_id)."""

    def look_up(self, kind: str, key: Mapping[str, str], digest: str) -> Ledger: ...
    def add(self, kind: str, key: Mapping[str, str], ledger: Ledger, kept: Mapping[str, str],
            values: Mapping[str, Any]) -> None:
        """Record version `ledger.next_version` with `values`; the earlier one now points at its shelved files."""
        ...


class Deliveries(Protocol):
    """The ledger: one row per document version and channel."""

    def delivered_at(self, doc: Document, channel: str) -> datetime | None:
        """When the version was delivered on the channel, or None (never, or not yet confirmed)."""
        ...
    def claim(self, doc: Document, channel: str, at: datetime) -> str:
        """Reserve the delivery at `at`: 'new', 'retry' after an interrupted attempt, or 'done'; raises `Conflict`
        when another worker reserved it at the same moment."""
        ...
    def delivered(self, doc: Document, channel: str, at: datetime, message_id: str | None) -> None: ...


@dataclass(frozen=True)
class RoundRecord:
    """Everything stored about one round, as rows (column name -> value), in the order an auditor reads them."""

    events: list[dict[str, Any]]  # the round's own events, and every file received up to `cutoff`
    files: list[dict[str, Any]]
    validation_runs: list[dict[str, Any]]
    assignments: list[dict[str, Any]]
    unmatched: list[dict[str, Any]]
    offers: list[dict[str, Any]]
    decisions: list[dict[str, Any]]


class AuditTrail(Protocol):
    def round_record(self, round_id: str, cutoff: datetime | None) -> RoundRecord: ...
    def validations_until(self, cutoff: datetime | None) -> list[dict[str, Any]]:
        """Every validation run up to `cutoff`, with the name its file was sent under (`original_name`)."""
        ...


class UnitOfWork(Protocol):
    """What one lifecycle step reads and writes, applied together or not at all."""

    @property
    def rounds(self) -> Rounds: ...
    @property
    def offers(self) -> MatchOffers: ...
    @property
    def decisions(self) -> Decisions: ...
    @property
    def households(self) -> Households: ...
    @property
    def capacity_offers(self) -> CapacityOffers: ...
    @property
    def quarantine(self) -> Quarantine: ...
    @property
    def raw_files(self) -> RawFiles: ...
    @property
    def records(self) -> Records: ...
    @property
    def personal_data(self) -> PersonalData: ...
    @property
    def documents(self) -> Documents: ...
    @property
    def deliveries(self) -> Deliveries: ...
    @property
    def versions(self) -> DocumentVersions: ...
    @property
    def audit_trail(self) -> AuditTrail: ...

    def audit(self, actor: str, event: str, subject: str | None, detail: Mapping[str, Any], at: datetime) -> None: ...


def require_round(uow: UnitOfWork, round_id: str) -> MatchingRound:
    rnd = uow.rounds.get(round_id)
    if rnd is None:
        raise LookupError(f"round {round_id} does not exist; `rematch round status` shows the latest, `rematch round "
                          "run --date YYYY-MM-DD` solves one")
    return rnd


class SqlRounds:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, round_id: str) -> MatchingRound | None:
        r = self.conn.execute(select(t.rounds).where(t.rounds.c.round_id == round_id)).first()
        if r is None:
            return None
        return MatchingRound(r.round_id, r.round_date, r.status, solver_stats=dict(r.solver_stats or {}),
                             policy=dict(r.policy or {}), input_checksums=dict(r.input_checksums or {}),
                             created_at=_utc(r.created_at), solved_at=_utc(r.solved_at),
                             offered_at=_utc(r.offered_at), closed_at=_utc(r.closed_at))

    def save(self, rnd: MatchingRound) -> None:
        self.conn.execute(update(t.rounds).where(t.rounds.c.round_id == rnd.round_id).values(
            status=rnd.status, offered_at=rnd.offered_at, closed_at=rnd.closed_at))

    def assignments(self, round_id: str) -> list[Assignment]:
        return store.load_assignments(self.conn, round_id)

    def unmatched(self, round_id: str) -> list[Unmatched]:
        return store.load_unmatched(self.conn, round_id)

    def seen_before(self, round_date: date) -> set[str]:
        earlier = select(t.rounds.c.round_id).where(t.rounds.c.round_date < round_date)
        return {str(c) for table in (t.assignments, t.unmatched)
                for c in self.conn.execute(select(table.c.case_id).where(table.c.round_id.in_(earlier))).scalars()}

    def ids(self, states: Sequence[str] | None = None, newest_first: bool = False) -> list[str]:
        r = t.rounds.c
        q = select(r.round_id).order_by(r.round_date.desc() if newest_first else r.round_date, r.round_id)
        if states is not None:
            q = q.where(r.status.in_(list(states)))
        return [str(i) for i in self.conn.execute(q).scalars()]

    def snapshot(self, round_id: str) -> StoredSnapshot | None:
        r = self.conn.execute(select(t.round_inputs.c.snapshot, t.round_inputs.c.purged_cases)
                              .where(t.round_inputs.c.round_id == round_id)).first()
        return None if r is None else StoredSnapshot(r.snapshot, int(r.purged_cases or 0))

    def lock(self, round_id: str) -> None:
        if self.conn.dialect.name == "postgresql":
            # Advisory locks are shared by every schema of the database: the key names the schema the round is in,
            # so two deployments (or two test runs) in one database never hold each other's rounds.
            schema = self.conn.execute(text("SELECT current_schema()")).scalar()
            key = int.from_bytes(hashlib.sha256(f"{schema}\x00{round_id}".encode()).digest()[:8], "big", signed=True)
            if not self.conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": key}).scalar():
                raise RoundBusy(f"round {round_id} is being worked on by another run right now; this attempt stopped "
                                "without changing anything. Check the other run; rerun this one after it ended.")
        else:
            # Take SQLite's write lock at the start of the transaction, not at its first insert.
            self.conn.execute(update(t.rounds).where(t.rounds.c.round_id == round_id).values(status=t.rounds.c.status))

    def add(self, rnd: MatchingRound) -> None:
        self.conn.execute(insert(t.rounds).values(round_id=rnd.round_id, round_date=rnd.round_date, status=rnd.status,
                                                  policy=dict(rnd.policy), created_at=rnd.created_at))

    def record_solve(self, rnd: MatchingRound, snapshot: bytes, digest: str, assignments: Sequence[Assignment],
                     unmatched: Sequence[Unmatched]) -> None:
        for table in (t.assignments, t.unmatched, t.round_inputs):
            self.conn.execute(table.delete().where(table.c.round_id == rnd.round_id))
        self.conn.execute(insert(t.round_inputs).values(round_id=rnd.round_id, snapshot=snapshot, sha256=digest))
        self.conn.execute(update(t.rounds).where(t.rounds.c.round_id == rnd.round_id).values(
            status=rnd.status, policy=dict(rnd.policy), solver_stats=dict(rnd.solver_stats),
            input_checksums=dict(rnd.input_checksums), solved_at=rnd.solved_at))
        store.save_assignments(self.conn, list(assignments), list(unmatched))


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


def _offer(r: Any) -> MatchOffer:
    offered_at = _utc(r.offered_at)
    assert offered_at is not None
    return MatchOffer(r.round_id, r.case_id, r.ags, r.offer_id, r.persons, r.respond_by, offered_at, r.status,
                      _utc(r.resolved_at), dict(r.demand or {}))


class SqlMatchOffers:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, round_id: str, case_id: str) -> MatchOffer | None:
        r = self.conn.execute(select(t.match_offers).where(t.match_offers.c.round_id == round_id,
                                                           t.match_offers.c.case_id == case_id)).first()
        return None if r is None else _offer(r)

    def of_round(self, round_id: str) -> list[MatchOffer]:
        q = select(t.match_offers).where(t.match_offers.c.round_id == round_id).order_by(t.match_offers.c.case_id)
        return [_offer(r) for r in self.conn.execute(q)]

    def pending_count(self, round_id: str) -> int:
        # Counted by the database: a decisions file answers a national round's offers one by one.
        return int(self.conn.execute(select(func.count()).select_from(t.match_offers).where(
            t.match_offers.c.round_id == round_id, t.match_offers.c.status == PENDING)).scalar_one())

    def due(self, today: date) -> list[MatchOffer]:
        q = (select(t.match_offers).where(t.match_offers.c.status == PENDING, t.match_offers.c.respond_by < today)
             .order_by(t.match_offers.c.round_id, t.match_offers.c.case_id))
        return [_offer(r) for r in self.conn.execute(q)]

    def with_status(self, states: Sequence[str]) -> list[MatchOffer]:
        q = (select(t.match_offers).where(t.match_offers.c.status.in_(list(states)))
             .order_by(t.match_offers.c.round_id, t.match_offers.c.case_id))
        return [_offer(r) for r in self.conn.execute(q)]

    def pending_of(self, case_id: str) -> list[MatchOffer]:
        q = (select(t.match_offers).where(t.match_offers.c.case_id == case_id, t.match_offers.c.status == PENDING)
             .order_by(t.match_offers.c.round_id))
        return [_offer(r) for r in self.conn.execute(q)]

    def add(self, offers: Sequence[MatchOffer]) -> None:
        if offers:
            self.conn.execute(insert(t.match_offers), [
                {"round_id": o.round_id, "case_id": o.case_id, "ags": o.ags, "offer_id": o.offer_id,
                 "persons": o.persons, "respond_by": o.respond_by, "status": o.status, "offered_at": o.offered_at,
                 "resolved_at": o.resolved_at, "demand": dict(o.demand)} for o in offers])

    def save(self, offer: MatchOffer) -> None:
        self.conn.execute(update(t.match_offers).where(t.match_offers.c.round_id == offer.round_id,
                                                       t.match_offers.c.case_id == offer.case_id)
                          .values(status=offer.status, resolved_at=offer.resolved_at))


class SqlDecisions:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def exists(self, case_id: str, round_id: str) -> bool:
        return self.conn.execute(select(t.decisions.c.id).where(t.decisions.c.case_id == case_id,
                                                                t.decisions.c.round_id == round_id)).first() is not None

    def add(self, values: Mapping[str, Any]) -> None:
        self.conn.execute(insert(t.decisions).values(**values))


class SqlHouseholds:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get_many(self, case_ids: Iterable[str]) -> list[Household]:
        return store.load_households(self.conn, list(case_ids))

    def apply(self, rows: list[dict[str, Any]], members: dict[str, list[dict[str, Any]]] | None,
              at: datetime) -> dict[str, str]:
        return store.apply_households(self.conn, rows, members, at, actor="ingest")

    def pool(self) -> list[Household]:
        return store.load_households(self.conn, pool_only=True)

    def kept(self, case_ids: Iterable[str]) -> set[str]:
        h = t.households.c
        return {r for chunk in _chunks(sorted(set(case_ids)))
                for r in self.conn.execute(select(h.case_id).where(h.case_id.in_(chunk), h.purged_at.is_(None)))
                .scalars()}

    def close_accepted(self, case_id: str, at: datetime) -> None:
        self.conn.execute(update(t.households).where(t.households.c.case_id == case_id)
                          .values(status="accepted", closed_at=at))


class SqlCapacityOffers:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def all(self, valid_on: date | None = None) -> list[CapacityOffer]:
        return store.load_offers(self.conn, valid_on)

    def apply(self, rows: list[dict[str, Any]], at: datetime) -> dict[str, str]:
        return store.apply_offers(self.conn, rows, at, actor="ingest")


def _quarantine_row(r: Any) -> QuarantineRow:
    created_at = _utc(r.created_at)
    assert created_at is not None
    return QuarantineRow(r.id, r.raw_file_id, r.table_name, r.rule, r.record, created_at, _utc(r.resolved_at),
                         r.field, r.superseded_by)


class SqlQuarantine:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, row_id: int) -> QuarantineRow | None:
        r = self.conn.execute(select(t.quarantine).where(t.quarantine.c.id == row_id)).first()
        return None if r is None else _quarantine_row(r)

    def open_rows(self) -> list[QuarantineRow]:
        q = select(t.quarantine).where(t.quarantine.c.resolved_at.is_(None)).order_by(t.quarantine.c.id)
        return [_quarantine_row(r) for r in self.conn.execute(q)]

    def of_file(self, raw_file_id: int) -> list[QuarantineRow]:
        q = select(t.quarantine).where(t.quarantine.c.raw_file_id == raw_file_id).order_by(t.quarantine.c.id)
        return [_quarantine_row(r) for r in self.conn.execute(q)]

    def resolve(self, row_ids: Sequence[int], at: datetime, by_raw_file_id: int | None) -> None:
        self.conn.execute(update(t.quarantine).where(t.quarantine.c.id.in_(list(row_ids)))
                          .values(resolved_at=at, resolved_by_raw_file_id=by_raw_file_id))

    def supersede(self, replaced: Mapping[int, int], at: datetime) -> None:
        for old, new in sorted(replaced.items()):
            self.conn.execute(update(t.quarantine).where(t.quarantine.c.id == old)
                              .values(resolved_at=at, superseded_by=new))

    def listing(self, include_resolved: bool) -> list[dict[str, Any]]:
        """Every row with the name and sha256 of its file, for people to read."""
        q = (select(t.quarantine.c.id, t.raw_files.c.original_name.label("file"), t.raw_files.c.sha256,
                    t.quarantine.c.table_name, t.quarantine.c.sheet, t.quarantine.c.source_row, t.quarantine.c.field,
                    t.quarantine.c.rule, t.quarantine.c.message, t.quarantine.c.created_at,
                    t.quarantine.c.resolved_at, t.quarantine.c.superseded_by, t.quarantine.c.record)
             # Outer: a decision refused at the command line (`rematch decide`) has no file but is kept here too.
             .outerjoin(t.raw_files, t.raw_files.c.id == t.quarantine.c.raw_file_id)
             .order_by(t.quarantine.c.id))
        if not include_resolved:
            q = q.where(t.quarantine.c.resolved_at.is_(None))
        rows = [dict(r._mapping) for r in self.conn.execute(q)]
        # A refused decision is named by its case, but only by one we hold, exactly as typed (" RM-A" was refused
        # for its space: naming it "RM-A" would hide why). The record itself, whatever was typed, never leaves here.
        typed = {r["id"]: str((r["record"] or {}).get("case_id") or "") for r in rows
                 if r["table_name"] == "decisions" and isinstance(r["record"], dict)}
        known = held_cases(self.conn, typed.values())
        return [{**{k: v for k, v in r.items() if k != "record"},
                 "case": typed.get(r["id"]) if typed.get(r["id"]) in known else None} for r in rows]

    def add(self, *, raw_file_id: int | None, table_name: str, field: str | None, rule: str, message: str,
            record: Mapping[str, Any] | None, at: datetime, sheet: str | None = None,
            source_row: int | None = None) -> None:
        self.add_many([dict(raw_file_id=raw_file_id, table_name=table_name, field=field, rule=rule, message=message,
                            record=record, at=at, sheet=sheet, source_row=source_row)])

    def add_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            self.conn.execute(insert(t.quarantine), [
                dict(raw_file_id=r["raw_file_id"], table_name=r["table_name"], sheet=r.get("sheet"),
                     source_row=r.get("source_row"), field=r["field"], rule=r["rule"], message=r["message"],
                     record=None if r["record"] is None else dict(r["record"]), created_at=r["at"])
                for r in rows])


class SqlRawFiles:
    def __init__(self, conn: Connection, paths: StoredPaths) -> None:
        self.conn = conn
        self.paths = paths

    def get(self, raw_file_id: int) -> RawFile | None:
        r = self.conn.execute(select(t.raw_files).where(t.raw_files.c.id == raw_file_id)).first()
        return None if r is None else _raw_file(r)

    def by_digest(self, sha256: str) -> RawFile | None:
        r = self.conn.execute(select(t.raw_files).where(t.raw_files.c.sha256 == sha256)).first()
        return None if r is None else _raw_file(r)

    def digests(self) -> set[str]:
        return set(self.conn.execute(select(t.raw_files.c.sha256)).scalars())

    def record(self, values: Mapping[str, Any], retry_of: int | None) -> int:
        if retry_of is not None:
            self.conn.execute(update(t.raw_files).where(t.raw_files.c.id == retry_of).values(**values))
            return retry_of
        key = self.conn.execute(insert(t.raw_files).values(**values)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def reports(self, raw_file_id: int) -> dict[str, str]:
        v = t.validation_runs.c
        q = select(v.table_name, v.report_path).where(v.raw_file_id == raw_file_id).order_by(v.id)
        return {r.table_name: str(self.paths.load(r.report_path)) for r in self.conn.execute(q) if r.report_path}

    def add_validation(self, raw_file_id: int, table_name: str, *, success: bool, evaluated_rows: int,
                       invalid_rows: int, report_path: str | None, statistics: Mapping[str, Any] | None,
                       at: datetime) -> None:
        self.conn.execute(insert(t.validation_runs).values(
            raw_file_id=raw_file_id, table_name=table_name, success=success, evaluated_rows=evaluated_rows,
            invalid_rows=invalid_rows, report_path=self.paths.store(report_path), statistics=statistics,
            created_at=at))


class SqlRecords:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def source_file(self, table: str, fields: Sequence[str], key: Sequence[str]) -> int | None:
        tbl = t.metadata.tables[table]
        q = select(tbl.c.raw_file_id).where(*(tbl.c[f] == v for f, v in zip(fields, key, strict=True)))
        return self.conn.execute(q).scalar()


def held_cases(conn: Connection, case_ids: Iterable[str]) -> set[str]:
    """Those of `case_ids` that are cases we hold (stored, personal details not purged), matched exactly: what may
    name a case in an output when the id came from a sender."""
    h = t.households.c
    return {c for part in _chunks(sorted(set(case_ids) - {""}))
            for (c,) in conn.execute(select(h.case_id).where(h.case_id.in_(part), h.purged_at.is_(None)))}


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[list[str]]:
    # IN lists stay short: SQLite allows a limited number of bound parameters per statement.
    for i in range(0, len(items), size):
        yield list(items[i:i + size])


def _raw_file(r: Any) -> RawFile:
    received_at = _utc(r.received_at)
    assert received_at is not None
    return RawFile(r.id, r.original_name, r.archived_path or "", r.kind, r.status, received_at, r.format)


class SqlPersonalData:
    def __init__(self, conn: Connection, paths: StoredPaths) -> None:
        self.conn = conn
        self.paths = paths

    def closed_before(self, cutoff: datetime, states: Sequence[str]) -> list[CaseRef]:
        h = t.households.c
        q = (select(h.case_id, h.pseudonym, h.status)
             .where(h.status.in_(list(states)), h.closed_at < cutoff, h.purged_at.is_(None)).order_by(h.case_id))
        return [CaseRef(*r) for r in self.conn.execute(q)]

    def held(self, case_ids: Iterable[str]) -> set[str]:
        return held_cases(self.conn, case_ids)

    def case(self, case_id: str) -> CaseRef | None:
        h = t.households.c
        r = self.conn.execute(select(h.case_id, h.pseudonym, h.status, h.purged_at)
                              .where(h.case_id == case_id)).first()
        return None if r is None else CaseRef(r.case_id, r.pseudonym, r.status, _utc(r.purged_at))

    def withdraw(self, case_id: str, at: datetime) -> None:
        self.conn.execute(update(t.households).where(t.households.c.case_id == case_id)
                          .values(status="withdrawn", closed_at=at))

    def scrub(self, case_ids: Sequence[str], household: Mapping[str, Any], member: Mapping[str, Any],
              at: datetime) -> int:
        reasons = 0
        for chunk in _chunks(case_ids):
            self.conn.execute(update(t.households).where(t.households.c.case_id.in_(chunk))
                              .values(**household, purged_at=at))
            self.conn.execute(update(t.members).where(t.members.c.case_id.in_(chunk)).values(**member))
            reasons += self.conn.execute(
                update(t.decisions).where(t.decisions.c.case_id.in_(chunk), t.decisions.c.reason.is_not(None))
                .values(reason=None)).rowcount or 0
        return reasons

    def letter_files(self, case_ids: Sequence[str]) -> list[DocumentFile]:
        q = select(t.letters.c.html_path, t.letters.c.pdf_path, t.letters.c.version)
        return [self._file(r) for chunk in _chunks(case_ids)
                for r in self.conn.execute(q.where(t.letters.c.case_id.in_(chunk)))]

    def _file(self, r: Any) -> DocumentFile:
        return DocumentFile(str(self.paths.load(r.html_path)), str(self.paths.load(r.pdf_path)), r.version)

    def packet_files(self, case_ids: Sequence[str]) -> list[DocumentFile]:
        packet_of = and_(t.packets.c.round_id == t.assignments.c.round_id, t.packets.c.ags == t.assignments.c.ags)
        q = (select(t.packets.c.html_path, t.packets.c.pdf_path, t.packets.c.version).distinct()
             .join(t.assignments, packet_of))
        return sorted({self._file(r) for chunk in _chunks(case_ids)
                       for r in self.conn.execute(q.where(t.assignments.c.case_id.in_(chunk)))})

    def clear_quarantined_records(self, case_ids: Sequence[str]) -> int:
        # The record is JSON as sent: matched here rather than by a JSON query, which each database writes otherwise.
        ids, cleared = set(case_ids), 0
        q = select(t.quarantine.c.id, t.quarantine.c.record).where(t.quarantine.c.record.is_not(None))
        for r in self.conn.execute(q).all():
            if isinstance(r.record, dict) and str(r.record.get("case_id", "")).strip() in ids:
                self.conn.execute(update(t.quarantine).where(t.quarantine.c.id == r.id).values(record=None))
                cleared += 1
        return cleared

    def snapshots(self) -> list[tuple[str, bytes, int]]:
        q = select(t.round_inputs.c.round_id, t.round_inputs.c.snapshot, t.round_inputs.c.purged_cases)
        rows = self.conn.execute(q.order_by(t.round_inputs.c.round_id))
        return [(r.round_id, r.snapshot, r.purged_cases) for r in rows]

    def save_snapshot(self, round_id: str, snapshot: bytes, purged_cases: int) -> None:
        self.conn.execute(update(t.round_inputs).where(t.round_inputs.c.round_id == round_id)
                          .values(snapshot=snapshot, purged_cases=purged_cases))

    def files_to_purge(self, kinds: Sequence[str]) -> list[RawFile]:
        kept = {r.raw_file_id for r in self.conn.execute(
            select(t.households.c.raw_file_id).where(t.households.c.purged_at.is_(None)))}
        q = (select(t.raw_files).where(t.raw_files.c.kind.in_(list(kinds)), t.raw_files.c.status != "purged")
             .order_by(t.raw_files.c.id))
        return [_raw_file(r) for r in self.conn.execute(q).all() if r.id not in kept]

    def holds_purged_household(self, raw_file_id: int) -> bool:
        q = select(t.households.c.case_id).where(t.households.c.raw_file_id == raw_file_id,
                                                 t.households.c.purged_at.is_not(None))
        return self.conn.execute(q.limit(1)).first() is not None

    def decided_only_for_purged(self, raw_file_id: int) -> bool:
        cases = sorted(set(self.conn.execute(
            select(t.decisions.c.case_id).where(t.decisions.c.raw_file_id == raw_file_id)).scalars()))
        if not cases:
            return False
        return all(self.conn.execute(select(t.households.c.case_id).where(
            t.households.c.case_id.in_(chunk), t.households.c.purged_at.is_(None)).limit(1)).first() is None
            for chunk in _chunks(cases))

    def mark_purged(self, raw_file_id: int) -> None:
        self.conn.execute(update(t.raw_files).where(t.raw_files.c.id == raw_file_id).values(status="purged"))


class SqlDocuments:
    def __init__(self, conn: Connection, paths: StoredPaths) -> None:
        self.conn = conn
        self.paths = paths

    def latest_packets(self, round_id: str) -> list[Document]:
        p = t.packets.c
        latest = (select(p.ags, func.max(p.version).label("version")).where(p.round_id == round_id)
                  .group_by(p.ags).subquery())
        rows = self.conn.execute(select(t.packets).join(latest, and_(p.ags == latest.c.ags,
                                                                     p.version == latest.c.version))
                                 .where(p.round_id == round_id).order_by(p.ags)).all()
        offer_of = dict(self.conn.execute(select(t.assignments.c.ags, func.min(t.assignments.c.offer_id))
                                          .where(t.assignments.c.round_id == round_id)
                                          .group_by(t.assignments.c.ags)).all())
        emails = {o.offer_id: o.contact_email for o in SqlCapacityOffers(self.conn).all()}
        return [Document("packet", round_id, r.ags, r.ags, r.version, r.sha256, self.paths.load(r.html_path),
                         self.paths.load(r.pdf_path), emails.get(offer_of.get(r.ags, ""), "") or "") for r in rows]

    def latest_letters(self, round_id: str, ags: str | None, salt: str) -> list[Document]:
        lt = t.letters.c
        latest = (select(lt.case_id, func.max(lt.version).label("version")).where(lt.round_id == round_id)
                  .group_by(lt.case_id).subquery())
        q = (select(t.letters, t.households.c.contact_email)
             .join(latest, and_(lt.case_id == latest.c.case_id, lt.version == latest.c.version))
             .join(t.households, t.households.c.case_id == lt.case_id)
             .where(lt.round_id == round_id, t.households.c.purged_at.is_(None)).order_by(lt.case_id))
        if ags is not None:
            q = q.join(t.match_offers, and_(t.match_offers.c.round_id == lt.round_id,
                                            t.match_offers.c.case_id == lt.case_id)).where(t.match_offers.c.ags == ags)
        return [Document("letter", round_id, r.case_id, pseudonym(r.case_id, salt), r.version, r.sha256,
                         self.paths.load(r.html_path), self.paths.load(r.pdf_path), r.contact_email or "")
                for r in self.conn.execute(q)]


_VERSIONED = {"packet": t.packets, "letter": t.letters}


class SqlDocumentVersions:
    def __init__(self, conn: Connection, paths: StoredPaths) -> None:
        self.conn = conn
        self.paths = paths

    def look_up(self, kind: str, key: Mapping[str, str], digest: str) -> Ledger:
        table = _VERSIONED[kind]
        mine = [table.c[name] == value for name, value in key.items()]
        same = self.conn.execute(select(table).where(*mine, table.c.sha256 == digest)).first()
        latest = self.conn.execute(select(func.max(table.c.version)).where(*mine)).scalar()
        prior = None if not latest else self.conn.execute(
            select(table).where(*mine, table.c.version == latest)).first()
        return Ledger(self._loaded(same), self._loaded(prior))

    def _loaded(self, row: Any) -> Any:
        """A ledger row with its files' paths under this machine's home."""
        if row is None:
            return None
        values = dict(row._mapping)
        values.update(html_path=str(self.paths.load(row.html_path)), pdf_path=str(self.paths.load(row.pdf_path)))
        return SimpleNamespace(**values)

    def add(self, kind: str, key: Mapping[str, str], ledger: Ledger, kept: Mapping[str, str],
            values: Mapping[str, Any]) -> None:
        table = _VERSIONED[kind]
        if ledger.prior is not None:
            mine = [table.c[name] == value for name, value in key.items()]
            self.conn.execute(update(table).where(*mine, table.c.version == ledger.prior.version).values(**kept))
        stored = {**values, **{k: self.paths.store(values[k]) for k in ("html_path", "pdf_path") if k in values}}
        self.conn.execute(insert(table).values(**key, **stored, version=ledger.next_version))


def _ledger_key(doc: Document, channel: str) -> tuple[Any, ...]:
    """The ledger row of one document version on one channel (the table's unique key)."""
    d = t.deliveries.c
    return (d.document == doc.kind, d.round_id == doc.round_id, d.recipient == doc.recipient, d.sha256 == doc.sha256,
            d.channel == channel)


class SqlDeliveries:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def delivered_at(self, doc: Document, channel: str) -> datetime | None:
        row = self.conn.execute(select(t.deliveries.c.status, t.deliveries.c.delivered_at)
                                .where(*_ledger_key(doc, channel))).first()
        return _utc(row.delivered_at) if row is not None and row.status == "delivered" else None

    def claim(self, doc: Document, channel: str, at: datetime) -> str:
        key = _ledger_key(doc, channel)
        row = self.conn.execute(select(t.deliveries).where(*key)).first()
        if row is None:
            try:
                self.conn.execute(insert(t.deliveries).values(
                    document=doc.kind, round_id=doc.round_id, recipient=doc.recipient, version=doc.version,
                    sha256=doc.sha256, channel=channel, status="sending", attempts=1, claimed_at=at))
            except IntegrityError as exc:
                raise Conflict("the delivery was claimed by another worker") from exc
            return "new"
        if row.status == "delivered":
            return "done"
        self.conn.execute(update(t.deliveries).where(*key).values(attempts=row.attempts + 1, claimed_at=at))
        return "retry"

    def delivered(self, doc: Document, channel: str, at: datetime, message_id: str | None) -> None:
        self.conn.execute(update(t.deliveries).where(*_ledger_key(doc, channel)).values(
            status="delivered", delivered_at=at, message_id=message_id))


class SqlAuditTrail:
    def __init__(self, conn: Connection, paths: StoredPaths) -> None:
        self.conn = conn
        self.paths = paths

    def _rows(self, q: Any) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in self.conn.execute(q)]

    def _runs(self, q: Any) -> list[dict[str, Any]]:
        return [{**r, "report_path": r["report_path"] and str(self.paths.load(r["report_path"]))}
                for r in self._rows(q)]

    def validations_until(self, cutoff: datetime | None) -> list[dict[str, Any]]:
        if cutoff is None:
            return []
        v = t.validation_runs
        return self._runs(select(v, t.raw_files.c.original_name).join(t.raw_files, t.raw_files.c.id == v.c.raw_file_id)
                          .where(v.c.created_at <= cutoff).order_by(v.c.id))

    def round_record(self, round_id: str, cutoff: datetime | None) -> RoundRecord:
        ev = t.audit_events.c
        of_round = [ev.subject == round_id, ev.subject.like(f"{round_id}/%")]
        if cutoff is not None:
            of_round.append(ev.event.in_(("file_ingested", "file_rejected")) & (ev.at <= cutoff))
        # No cutoff (a round never recorded as created): no file can be shown to precede it.
        files = (self._rows(select(t.raw_files).where(t.raw_files.c.received_at <= cutoff).order_by(t.raw_files.c.id))
                 if cutoff is not None else [])
        runs = (self._runs(select(t.validation_runs).where(t.validation_runs.c.created_at <= cutoff)
                           .order_by(t.validation_runs.c.id)) if cutoff is not None else [])
        by_case = [(tbl, tbl.c.case_id) for tbl in (t.assignments, t.unmatched, t.match_offers, t.decisions)]
        assignments, unmatched, offers, decisions = (
            self._rows(select(tbl).where(tbl.c.round_id == round_id).order_by(order)) for tbl, order in by_case)
        return RoundRecord(
            events=self._rows(select(t.audit_events).where(or_(*of_round)).order_by(ev.at, ev.id)),
            files=files, validation_runs=runs,
            assignments=assignments, unmatched=unmatched, offers=offers, decisions=decisions)


class SqlUnitOfWork:
    """The lifecycle's repositories over one open transaction (the caller's, so a step can join a larger one)."""

    def __init__(self, conn: Connection, home: Path | None = None) -> None:
        self.conn = conn
        paths = StoredPaths(home)
        self.rounds = SqlRounds(conn)
        self.offers = SqlMatchOffers(conn)
        self.decisions = SqlDecisions(conn)
        self.households = SqlHouseholds(conn)
        self.capacity_offers = SqlCapacityOffers(conn)
        self.quarantine = SqlQuarantine(conn)
        self.raw_files = SqlRawFiles(conn, paths)
        self.records = SqlRecords(conn)
        self.personal_data = SqlPersonalData(conn, paths)
        self.documents = SqlDocuments(conn, paths)
        self.deliveries = SqlDeliveries(conn)
        self.versions = SqlDocumentVersions(conn, paths)
        self.audit_trail = SqlAuditTrail(conn, paths)

    def audit(self, actor: str, event: str, subject: str | None, detail: Mapping[str, Any], at: datetime) -> None:
        store.audit(self.conn, actor, event, subject, dict(detail), at=at)


@contextmanager
def unit_of_work(settings: Settings) -> Iterator[SqlUnitOfWork]:
    """A new transaction: committed when the block ends, rolled back when it raises."""
    try:
        with settings.engine().begin() as conn:
            yield SqlUnitOfWork(conn, settings.home)
    except IntegrityError as exc:  # also when the commit itself finds the other writer's row
        raise Conflict("another transaction wrote the same row first") from exc


@contextmanager
def reading(settings: Settings) -> Iterator[SqlUnitOfWork]:
    """The repositories for reading only: nothing is committed."""
    with settings.engine().connect() as conn:
        yield SqlUnitOfWork(conn, settings.home)
