"""Retention and erasure: contact data, free text and health details do not outlive the case (GDPR art. 5, 17)."""

from __future__ import annotations

import gzip
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, and_, select, update

from rematch_pipeline import offers, store
from rematch_pipeline.config import Settings
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import require_schema
from rematch_pipeline.packets.versions import RESTORE_PREFIX, versioned
from rematch_pipeline.repository import SqlUnitOfWork
from rematch_pipeline.snapshot import canonical, unpack

log = logging.getLogger(__name__)

CLOSED_STATES = ("accepted", "withdrawn")


@dataclass
class PurgeReport:
    households: int = 0
    pseudonyms: list[str] = field(default_factory=list)
    quarantine_rows: int = 0
    decision_reasons: int = 0
    snapshots: int = 0
    archived_files: int = 0
    letter_files: int = 0
    packet_files: int = 0

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "pseudonyms"} | {"pseudonyms": self.pseudonyms}


def _scrub(conn: Connection, case_ids: list[str], settings: Settings, report: PurgeReport, at: datetime) -> None:
    """Remove personal details of these households everywhere they are stored (at `at`); keep pseudonymous
    aggregates."""
    ids = set(case_ids)
    for chunk in (case_ids[i:i + 500] for i in range(0, len(case_ids), 500)):
        conn.execute(update(t.households).where(t.households.c.case_id.in_(chunk)).values(
            contact_phone=None, contact_email=None, notes=None, interview_location=None, medical_needs="",
            wheelchair_access=False, purged_at=at))
        conn.execute(update(t.members).where(t.members.c.case_id.in_(chunk)).values(mobility_impaired=False))
        report.decision_reasons += conn.execute(
            update(t.decisions).where(t.decisions.c.case_id.in_(chunk), t.decisions.c.reason.is_not(None))
            .values(reason=None)).rowcount or 0
    # Offer letters list the household's own needs, and a municipality's packet its contact and consented health
    # details: every version's files go, the ledger rows (hashes) stay. A packet also lists the municipality's other
    # households; re-rendering the round writes it again from what is kept (`packets.service`).
    packet_of = and_(t.packets.c.round_id == t.assignments.c.round_id, t.packets.c.ags == t.assignments.c.ags)
    letters = select(t.letters.c.html_path, t.letters.c.pdf_path, t.letters.c.version)
    packets = select(t.packets.c.html_path, t.packets.c.pdf_path, t.packets.c.version).distinct()
    for chunk in (case_ids[i:i + 500] for i in range(0, len(case_ids), 500)):
        report.letter_files += _unlink(conn.execute(letters.where(t.letters.c.case_id.in_(chunk))))
        report.packet_files += _unlink(conn.execute(
            packets.join(t.assignments, packet_of).where(t.assignments.c.case_id.in_(chunk))))
    for stale in settings.outbox.glob(f"{RESTORE_PREFIX}*"):  # a restore killed half-way left its copies there
        shutil.rmtree(stale, ignore_errors=True)
    # Quarantined rows keep the raw record (to be corrected); the record of a closed case goes.
    for q in conn.execute(select(t.quarantine.c.id, t.quarantine.c.record).where(t.quarantine.c.record.is_not(None))):
        if isinstance(q.record, dict) and str(q.record.get("case_id", "")).strip() in ids:
            conn.execute(update(t.quarantine).where(t.quarantine.c.id == q.id).values(record=None))
            report.quarantine_rows += 1
    # Snapshots keep what the solver saw; the health details of these households are blanked there too.
    for snap in conn.execute(select(t.round_inputs)).all():
        doc = unpack(snap.snapshot)
        hit = [h for h in doc["households"] if h["case_id"] in ids and not h.get("purged")]
        if not hit:
            continue
        for h in hit:
            h.update(medical_needs=[], wheelchair_access=False, purged=True)
            for m in h["members"]:
                m["mobility_impaired"] = False
        conn.execute(update(t.round_inputs).where(t.round_inputs.c.round_id == snap.round_id).values(
            snapshot=gzip.compress(canonical(doc).encode(), mtime=0), purged_cases=snap.purged_cases + len(hit)))
        report.snapshots += 1
    # An archived export whose households are all purged holds nothing we may keep: its bytes go, its sha256 stays.
    referenced = {r.raw_file_id for r in conn.execute(
        select(t.households.c.raw_file_id).where(t.households.c.purged_at.is_(None)))}
    for f in conn.execute(select(t.raw_files).where(t.raw_files.c.kind.in_(("households", "decisions")),
                                                    t.raw_files.c.status != "purged")).all():
        if f.id in referenced:
            continue
        holds_purged = conn.execute(select(t.households.c.case_id).where(
            t.households.c.raw_file_id == f.id, t.households.c.purged_at.is_not(None)).limit(1)).first()
        if f.kind == "households" and holds_purged is None:
            continue
        if f.kind == "decisions" and not _all_cases_purged(conn, f.id):
            continue
        if f.archived_path:  # a file refused before it was archived has no copy
            (settings.home / f.archived_path).unlink(missing_ok=True)
        conn.execute(update(t.raw_files).where(t.raw_files.c.id == f.id).values(status="purged"))
        report.archived_files += 1


def _unlink(rows: Iterable[Any]) -> int:
    """Delete the html and pdf file of each version, also at its shelved name (a render that failed after shelving
    left them there, its row unchanged); returns how many were there."""
    gone = 0
    for row in rows:
        for recorded in (Path(row.html_path), Path(row.pdf_path)):
            for path in {recorded, versioned(recorded, row.version)}:
                if path.is_file():
                    path.unlink()
                    gone += 1
    return gone


def _all_cases_purged(conn: Connection, raw_file_id: int) -> bool:
    cases = set(conn.execute(select(t.decisions.c.case_id).where(t.decisions.c.raw_file_id == raw_file_id)).scalars())
    if not cases:
        return False
    open_cases = conn.execute(select(t.households.c.case_id).where(
        t.households.c.case_id.in_(sorted(cases)), t.households.c.purged_at.is_(None)).limit(1)).first()
    return open_cases is None


def purge(settings: Settings, before: date, actor: str = "cli") -> PurgeReport:
    """Purge the personal details of every household whose case closed before `before`."""
    require_schema(settings.database_url)
    cutoff = datetime.combine(before, time.min, tzinfo=UTC)
    report = PurgeReport()
    with settings.engine().begin() as conn:
        rows = conn.execute(select(t.households.c.case_id, t.households.c.pseudonym).where(
            t.households.c.status.in_(CLOSED_STATES), t.households.c.closed_at < cutoff,
            t.households.c.purged_at.is_(None)).order_by(t.households.c.case_id)).all()
        case_ids = [r.case_id for r in rows]
        report.households, report.pseudonyms = len(rows), [r.pseudonym for r in rows]
        at = settings.clock.now()
        if case_ids:
            _scrub(conn, case_ids, settings, report, at)
        store.audit(conn, actor, "data_purged", f"before {before.isoformat()}", report.to_json(), at=at)
    log.info("purge before %s: %d households", before, report.households)
    return report


def erase(settings: Settings, case_id: str, actor: str = "cli") -> PurgeReport:
    """Erase one household's personal details on request; it leaves the pool and any pending offer expires."""
    require_schema(settings.database_url)
    report = PurgeReport()
    with settings.engine().begin() as conn:
        row = conn.execute(select(t.households).where(t.households.c.case_id == case_id)).first()
        if row is None:
            raise LookupError(f"no household with case_id {case_id!r}")
        at = settings.clock.now()
        if row.status == "pool":
            conn.execute(update(t.households).where(t.households.c.case_id == case_id)
                         .values(status="withdrawn", closed_at=at))
        uow = SqlUnitOfWork(conn)
        pending = conn.execute(select(t.match_offers.c.round_id).where(
            t.match_offers.c.case_id == case_id, t.match_offers.c.status == offers.PENDING)).scalars().all()
        for round_id in pending:
            offer = uow.offers.get(round_id, case_id)
            assert offer is not None
            offers.withdraw_offer(uow, offer, actor, at)
        report.households, report.pseudonyms = 1, [row.pseudonym]
        _scrub(conn, [case_id], settings, report, at)
        store.audit(conn, actor, "data_erased", row.pseudonym, report.to_json(), at=at)
    log.info("erased household %s", row.pseudonym)
    return report
