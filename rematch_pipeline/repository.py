"""Repositories of the round, offer and quarantine lifecycles and their unit of work: the only SQL those rules need."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection, func, insert, select, update

from rematch_pipeline import store
from rematch_pipeline.db import tables as t
from rematch_pipeline.domain import (
    PENDING,
    Assignment,
    Household,
    MatchingRound,
    MatchOffer,
    QuarantineRow,
    RawFile,
)

if TYPE_CHECKING:
    from rematch_pipeline.config import Settings


class Rounds(Protocol):
    def get(self, round_id: str) -> MatchingRound | None: ...
    def save(self, rnd: MatchingRound) -> None: ...
    def assignments(self, round_id: str) -> list[Assignment]: ...


class MatchOffers(Protocol):
    def get(self, round_id: str, case_id: str) -> MatchOffer | None: ...
    def of_round(self, round_id: str) -> list[MatchOffer]: ...
    def pending_count(self, round_id: str) -> int: ...
    def due(self, today: date) -> list[MatchOffer]: ...
    def add(self, offers: Sequence[MatchOffer]) -> None: ...
    def save(self, offer: MatchOffer) -> None: ...


class Decisions(Protocol):
    def exists(self, case_id: str, round_id: str) -> bool: ...
    def add(self, values: Mapping[str, Any]) -> None: ...


class Households(Protocol):
    def get_many(self, case_ids: Iterable[str]) -> list[Household]: ...
    def close_accepted(self, case_id: str, at: datetime) -> None: ...


class Quarantine(Protocol):
    def get(self, row_id: int) -> QuarantineRow | None: ...
    def open_rows(self) -> list[QuarantineRow]: ...
    def of_file(self, raw_file_id: int) -> list[QuarantineRow]: ...
    def resolve(self, row_ids: Sequence[int], at: datetime, by_raw_file_id: int | None) -> None: ...
    def listing(self, include_resolved: bool) -> list[dict[str, Any]]: ...


class RawFiles(Protocol):
    def get(self, raw_file_id: int) -> RawFile | None: ...


class Records(Protocol):
    def source_file(self, table: str, fields: Sequence[str], key: Sequence[str]) -> int | None:
        """The file the stored version of a record came from (None: not stored)."""
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
    def quarantine(self) -> Quarantine: ...
    @property
    def raw_files(self) -> RawFiles: ...
    @property
    def records(self) -> Records: ...

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


def _utc(value: datetime | None) -> datetime | None:
    """Instants are stored in UTC; SQLite gives them back without their zone."""
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


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

    def close_accepted(self, case_id: str, at: datetime) -> None:
        self.conn.execute(update(t.households).where(t.households.c.case_id == case_id)
                          .values(status="accepted", closed_at=at))


def _quarantine_row(r: Any) -> QuarantineRow:
    created_at = _utc(r.created_at)
    assert created_at is not None
    return QuarantineRow(r.id, r.raw_file_id, r.table_name, r.rule, r.record, created_at, _utc(r.resolved_at))


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

    def listing(self, include_resolved: bool) -> list[dict[str, Any]]:
        """Every row with the name and sha256 of its file, for people to read."""
        q = (select(t.quarantine.c.id, t.raw_files.c.original_name.label("file"), t.raw_files.c.sha256,
                    t.quarantine.c.table_name, t.quarantine.c.sheet, t.quarantine.c.source_row, t.quarantine.c.field,
                    t.quarantine.c.rule, t.quarantine.c.message, t.quarantine.c.created_at,
                    t.quarantine.c.resolved_at)
             # Outer: a decision refused at the command line (`rematch decide`) has no file but is kept here too.
             .outerjoin(t.raw_files, t.raw_files.c.id == t.quarantine.c.raw_file_id)
             .order_by(t.quarantine.c.id))
        if not include_resolved:
            q = q.where(t.quarantine.c.resolved_at.is_(None))
        return [dict(r._mapping) for r in self.conn.execute(q)]


class SqlRawFiles:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def get(self, raw_file_id: int) -> RawFile | None:
        r = self.conn.execute(select(t.raw_files).where(t.raw_files.c.id == raw_file_id)).first()
        if r is None:
            return None
        received_at = _utc(r.received_at)
        assert received_at is not None
        return RawFile(r.id, r.original_name, r.archived_path or "", r.kind, r.status, received_at)


class SqlRecords:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def source_file(self, table: str, fields: Sequence[str], key: Sequence[str]) -> int | None:
        tbl = t.metadata.tables[table]
        q = select(tbl.c.raw_file_id).where(*(tbl.c[f] == v for f, v in zip(fields, key, strict=True)))
        return self.conn.execute(q).scalar()


class SqlUnitOfWork:
    """The lifecycle's repositories over one open transaction (the caller's, so a step can join a larger one)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.rounds = SqlRounds(conn)
        self.offers = SqlMatchOffers(conn)
        self.decisions = SqlDecisions(conn)
        self.households = SqlHouseholds(conn)
        self.quarantine = SqlQuarantine(conn)
        self.raw_files = SqlRawFiles(conn)
        self.records = SqlRecords(conn)

    def audit(self, actor: str, event: str, subject: str | None, detail: Mapping[str, Any], at: datetime) -> None:
        store.audit(self.conn, actor, event, subject, dict(detail), at=at)


@contextmanager
def unit_of_work(settings: Settings) -> Iterator[SqlUnitOfWork]:
    """A new transaction: committed when the block ends, rolled back when it raises."""
    with settings.engine().begin() as conn:
        yield SqlUnitOfWork(conn)


@contextmanager
def reading(settings: Settings) -> Iterator[SqlUnitOfWork]:
    """The repositories for reading only: nothing is committed."""
    with settings.engine().connect() as conn:
        yield SqlUnitOfWork(conn)
