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

from rematch_pipeline import offers
from rematch_pipeline.config import Settings
from rematch_pipeline.db.engine import require_schema
from rematch_pipeline.packets.versions import RENDER_PREFIX, RESTORE_PREFIX, versioned
from rematch_pipeline.repository import DocumentFile, UnitOfWork, unit_of_work
from rematch_pipeline.snapshot import canonical, unpack

log = logging.getLogger(__name__)

CLOSED_STATES = ("accepted", "withdrawn")
# The events of a purge or an erasure that found nothing left (`data_purged`, `data_erased`: one that removed details).
NOTHING_TO_PURGE, NOTHING_TO_ERASE = "nothing_to_purge", "nothing_to_erase"


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
    nothing_left: bool = False  # an earlier run took everything: this one changed nothing
    erased_at: str | None = None  # of an erasure that found nothing left: when the details went (UTC, ISO 8601)

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "pseudonyms"} | {"pseudonyms": self.pseudonyms}


# What a purged household keeps of its personal details: nothing that reaches it or tells of its health.
SCRUBBED_HOUSEHOLD = {"contact_name": None, "contact_phone": None, "contact_email": None, "notes": None,
                      "interview_location": None, "medical_needs": "", "wheelchair_access": False}
SCRUBBED_MEMBER = {"mobility_impaired": False}


def _scrub(uow: UnitOfWork, case_ids: list[str], settings: Settings, report: PurgeReport, at: datetime) -> None:
    """Remove personal details of these households everywhere they are stored (at `at`); keep pseudonymous
    aggregates."""
    ids = set(case_ids)
    data = uow.personal_data
    report.decision_reasons += data.scrub(case_ids, SCRUBBED_HOUSEHOLD, SCRUBBED_MEMBER, at)
    # Offer letters list the household's own needs, and a municipality's packet its contact and consented health
    # details: every version's files go, the ledger rows (hashes) stay. A packet also lists the municipality's other
    # households; re-rendering the round writes it again from what is kept (`packets.service`).
    report.letter_files += _unlink(data.letter_files(case_ids))
    report.packet_files += _unlink(data.packet_files(case_ids))
    for prefix in (RESTORE_PREFIX, RENDER_PREFIX):  # a restore or render killed half-way left its copies there
        for stale in settings.outbox.glob(f"{prefix}*"):
            shutil.rmtree(stale, ignore_errors=True)
    # Quarantined rows keep the raw record (to be corrected); the record of a closed case goes.
    report.quarantine_rows += data.clear_quarantined_records(case_ids)
    # Snapshots keep what the solver saw; the health details of these households are blanked there too.
    for round_id, snapshot, purged_cases in data.snapshots():
        doc = unpack(snapshot)
        hit = [h for h in doc["households"] if h["case_id"] in ids and not h.get("purged")]
        if not hit:
            continue
        for h in hit:
            h.update(medical_needs=[], wheelchair_access=False, purged=True)
            for m in h["members"]:
                m["mobility_impaired"] = False
        data.save_snapshot(round_id, gzip.compress(canonical(doc).encode(), mtime=0), purged_cases + len(hit))
        report.snapshots += 1
    # An archived export whose households are all purged holds nothing we may keep: its bytes go, its sha256 stays.
    for f in data.files_to_purge(("households", "decisions")):
        if f.kind == "households" and not data.holds_purged_household(f.id):
            continue
        if f.kind == "decisions" and not data.decided_only_for_purged(f.id):
            continue
        if f.archived_path:  # a file refused before it was archived has no copy
            (settings.home / f.archived_path).unlink(missing_ok=True)
        data.mark_purged(f.id)
        report.archived_files += 1


def _unlink(rows: Iterable[DocumentFile]) -> int:
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


def purge(settings: Settings, before: date, actor: str = "cli", *, allow_future: bool = False) -> PurgeReport:
    """Purge the personal details of every household whose case closed before `before`; a date after today is
    refused unless `allow_future` (a household that accepted today may not have had its packet delivered yet)."""
    from rematch_pipeline.rounds import FutureDateError

    today = settings.clock.today()
    if before > today and not allow_future:
        raise FutureDateError(f"the purge date {before} is after today ({today}): households that closed today would "
                              "lose their contact details before their municipality's packet went out")
    require_schema(settings.database_url)
    cutoff = datetime.combine(before, time.min, tzinfo=UTC)
    report = PurgeReport()
    with unit_of_work(settings) as uow:
        closed = uow.personal_data.closed_before(cutoff, CLOSED_STATES)
        report.households, report.pseudonyms = len(closed), [c.pseudonym for c in closed]
        at = settings.clock.now()
        subject = f"before {before.isoformat()}"
        if closed:
            _scrub(uow, [c.case_id for c in closed], settings, report, at)
            uow.audit(actor, "data_purged", subject, report.to_json(), at)
        else:  # the run is on the record, and that it removed nothing
            report.nothing_left = True
            uow.audit(actor, NOTHING_TO_PURGE, subject, {"before": before.isoformat()}, at)
    log.info("purge before %s: %d households", before, report.households)
    return report


def erase(settings: Settings, case_id: str, actor: str = "cli") -> PurgeReport:
    """Erase one household's personal details on request; it leaves the pool and any pending offer is withdrawn."""
    require_schema(settings.database_url)
    report = PurgeReport()
    with unit_of_work(settings) as uow:
        row = uow.personal_data.case(case_id)
        if row is None:
            raise LookupError(f"no household with case_id {case_id!r}")
        at = settings.clock.now()
        if row.purged_at is not None and row.status != "pool" and not uow.offers.pending_of(case_id):
            # Erased or purged before, out of the pool, no offer running: the request is on the record, nothing else.
            report.pseudonyms, report.nothing_left = [row.pseudonym], True
            report.erased_at = row.purged_at.astimezone(UTC).isoformat(timespec="seconds")
            uow.audit(actor, NOTHING_TO_ERASE, row.pseudonym, {"erased_at": report.erased_at}, at)
            log.info("erasure of household %s: nothing left", row.pseudonym)
            return report
        if row.status == "pool":
            uow.personal_data.withdraw(case_id, at)
        for offer in uow.offers.pending_of(case_id):
            offers.withdraw_offer(uow, offer, actor, at)
        report.households, report.pseudonyms = 1, [row.pseudonym]
        _scrub(uow, [case_id], settings, report, at)
        uow.audit(actor, "data_erased", row.pseudonym, report.to_json(), at)
    log.info("erased household %s", row.pseudonym)
    return report
