"""What the Airflow tasks call: small functions that take and return ids and paths, never DataFrames."""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

if TYPE_CHECKING:
    from rematch_pipeline.config import Settings

log = logging.getLogger(__name__)

# Team rules every DAG follows (checked by tests/test_dag_validity.py).
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "rematch-data-team",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
}
TAGS = ["rematch"]
P = ParamSpec("P")
R = TypeVar("R")
# Updated by the ingest DAG only when valid rows of that kind were added; either starts the matching round.
HOUSEHOLDS_ASSET = "rematch://households"
CAPACITIES_ASSET = "rematch://capacities"
DECISIONS_ASSET = "rematch://decisions"
ROUND_ASSET = "rematch_solved_round"
# Spreadsheet and text files, those we cannot read included: the ingest says why (an old .xls: "save it as .xlsx",
# a workbook with macros: refused) instead of the file lying unnoticed in the inbox. Other files stay where they are.
INGEST_SUFFIXES = (".xlsx", ".csv", ".zip", ".txt", ".xls", ".xlsm", ".ods", ".tsv")


def _no_retry(exc: Exception) -> Exception:
    """The same inputs would fail the same way again: Airflow fails the task at once instead of retrying."""
    from airflow.sdk.exceptions import AirflowFailException

    return AirflowFailException(str(exc))


def fails_at_once(task: Callable[P, R]) -> Callable[P, R]:
    """A task stopped by what only a person can mend (the schema not upgraded, no reachable coordination contact)
    fails at once with that sentence: retries a minute apart would only repeat it."""

    @functools.wraps(task)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        from rematch_pipeline.config import UnreachableContact
        from rematch_pipeline.db.engine import SchemaNotReady

        try:
            return task(*args, **kwargs)
        except (SchemaNotReady, UnreachableContact) as exc:
            raise _no_retry(exc) from None

    return run


def inbox_url(settings: Settings | None = None) -> str:
    """REMATCH_INBOX_URL (any fsspec URL, e.g. s3://bucket/inbox), or the local `$REMATCH_HOME/inbox`."""
    from rematch_pipeline.config import load_settings

    settings = settings or load_settings()
    if settings.inbox_url:
        return settings.inbox_url
    settings.ensure_dirs()
    return settings.inbox.resolve().as_uri()


def _sha256(path: Any) -> str:
    import hashlib

    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@fails_at_once
def scan_inbox(settings: Settings | None = None) -> list[str]:
    """URLs of the inbox files whose content was not ingested before (by sha256), oldest name first."""
    from airflow.sdk import ObjectStoragePath

    from rematch_pipeline.config import load_settings
    from rematch_pipeline.db.engine import require_schema
    from rematch_pipeline.repository import reading

    settings = settings or load_settings()
    require_schema(settings.database_url)
    with reading(settings) as uow:
        known = uow.raw_files.digests()
    inbox = ObjectStoragePath(inbox_url(settings))
    files = sorted((p for p in inbox.iterdir() if p.is_file() and p.suffix.lower() in INGEST_SUFFIXES), key=str)
    return [str(p) for p in files if _sha256(p) not in known]


@fails_at_once
def ingest_path(url: str, settings: Settings | None = None) -> dict[str, Any]:
    """Ingest one inbox file (a local path or any fsspec URL); remote files are staged locally first."""
    import shutil
    import tempfile
    from pathlib import Path

    from airflow.sdk import ObjectStoragePath

    from rematch_pipeline.config import load_settings
    from rematch_pipeline.ingest.service import ingest_file

    settings = settings or load_settings()
    source = ObjectStoragePath(url)
    if source.protocol in ("file", "local"):
        report = ingest_file(Path(source.path), settings, actor="airflow")
    else:
        staging = settings.home / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=staging) as tmp:
            local = Path(tmp) / "file"
            with source.open("rb") as src, open(local, "wb") as dst:
                shutil.copyfileobj(src, dst)
            report = ingest_file(local, settings, actor="airflow", name=source.name)
    if report.status == "failed":
        # Recorded with its reason; the same bytes would fail again, so the task fails at once, alone.
        raise _no_retry(RuntimeError(report.message))
    added = sum(c.get("inserted", 0) + c.get("replaced", 0) for c in report.counts.values())
    return {"file": report.file, "status": report.status, "duplicate": report.duplicate, "kind": report.kind,
            "format": report.format, "accepted": report.accepted, "quarantined": report.quarantined,
            "rows_added": added, "message": report.message, "reports": report.reports, "data_docs": report.data_docs}


def rows_added(reports: list[dict[str, Any]], kind: str) -> int:
    """Valid rows of `kind` (households or capacity) the run stored new or as replacements."""
    return sum(int(r.get("rows_added") or 0) for r in reports if r and r.get("kind") == kind)


def ingest_outcome(reports: list[dict[str, Any]]) -> str:
    """One plain line on what an ingest run did, logged as the run's last task: a run that found nothing new says
    so (`make dag` would otherwise end on skipped tasks alone). A file whose task failed has no report."""
    done = [r for r in reports if r]
    if not done:
        line = "nothing new in the inbox: no file ingested, no asset updated (no packets refreshed)"
    else:
        statuses = Counter(str(r.get("status")) for r in done)
        added = {kind: rows_added(done, kind) for kind in ("households", "capacity", "decisions")}
        line = (f"{len(done)} new file(s) in the inbox: "
                + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items()))
                + "; valid rows added: " + ", ".join(f"{kind} {n}" for kind, n in added.items()))
    log.info("%s", line)
    return line


def round_day(round_date: str | None, logical_date: str | None, settings: Settings | None = None) -> str:
    """The round's date: the `round_date` param if given, else the run's logical date (a weekly cron run), else today.

    A date after today is refused (`rounds.refuse_future`): the run would expire offers still running. That is no
    fault a retry can mend, so the task fails at once.
    """
    from rematch_pipeline.config import load_settings
    from rematch_pipeline.rounds import FutureDateError, refuse_future

    today = (settings or load_settings()).clock.today()
    day = date.fromisoformat(round_date or (logical_date or today.isoformat())[:10])
    try:
        refuse_future(day, today, "the round_date param" if round_date else "the run's logical date")
    except FutureDateError as exc:
        raise _no_retry(exc) from None
    return day.isoformat()



@fails_at_once
def settle_offers(day: str, settings: Settings | None = None) -> int:
    from rematch_pipeline.config import load_settings
    from rematch_pipeline.rounds import FutureDateError
    from rematch_pipeline.rounds import settle_offers as settle

    try:
        return settle(settings or load_settings(), date.fromisoformat(day), actor="airflow")
    except FutureDateError as exc:
        raise _no_retry(exc) from None


@fails_at_once
def make_offers(round_id: str) -> int:
    from rematch_pipeline.config import load_settings
    from rematch_pipeline.rounds import offer_round

    return offer_round(load_settings(), round_id, actor="airflow")


@fails_at_once
def solve_round(round_date: str | None, policy_overrides: dict[str, Any] | None = None,
                settings: Settings | None = None) -> dict[str, Any]:
    from rematch_pipeline.config import load_policy, load_settings
    from rematch_pipeline.rounds import FutureDateError, run_round

    settings = settings or load_settings()
    day = date.fromisoformat(round_date) if round_date else settings.clock.today()
    try:
        summary = run_round(settings, load_policy(overrides=policy_overrides or None), day, actor="airflow")
    except FutureDateError as exc:
        raise _no_retry(exc) from None
    if summary.status == "failed":
        # The round is stored as failed with its reason; the task fails so the team sees it.
        raise RuntimeError(f"round {summary.round_id} failed: {summary.message}")
    return {"round_id": summary.round_id, "status": summary.status, "message": summary.message,
            "persons_placed": summary.persons_placed, "households_placed": summary.households_placed}


@fails_at_once
def export_round_files(round_id: str) -> list[str]:
    """assignments.csv, round.json, the audit export and the round report, in exports/<round>/."""
    from rematch_pipeline.config import load_settings
    from rematch_pipeline.reports.round_report import write_round_report

    settings = load_settings()
    report = write_round_report(settings, round_id)
    return [str(report.parent / "assignments.csv"), str(report.parent / "round.json"), str(report)]


@fails_at_once
def open_round_ids() -> list[str]:
    """Rounds whose offers still wait for answers: their packets, letters and report follow each decision."""
    from rematch_pipeline.config import load_settings
    from rematch_pipeline.db.engine import require_schema
    from rematch_pipeline.repository import reading

    settings = load_settings()
    require_schema(settings.database_url)
    with reading(settings) as uow:
        return uow.rounds.ids(("offered",))


@fails_at_once
def latest_round_id() -> str:
    from rematch_pipeline.config import load_settings
    from rematch_pipeline.db.engine import require_schema
    from rematch_pipeline.repository import reading
    from rematch_pipeline.rounds import SOLVED_STATES

    settings = load_settings()
    require_schema(settings.database_url)
    with reading(settings) as uow:
        solved = uow.rounds.ids(SOLVED_STATES, newest_first=True)
    if not solved:
        raise LookupError("no solved round yet: run the matching DAG first")
    return solved[0]


def packet_targets(round_ids: list[str]) -> list[dict[str, str]]:
    """One (round, municipality) per packet to render: the unit the packets DAG maps over."""
    return [{"round_id": rid, "ags": ags} for rid in round_ids for ags in packet_municipalities(rid)]


@fails_at_once
def packet_municipalities(round_id: str) -> list[str]:
    from rematch_pipeline.config import load_policy, load_settings
    from rematch_pipeline.packets.service import round_packet_inputs

    return sorted({p.offer.ags for p in round_packet_inputs(load_settings(), load_policy(), round_id)})


@fails_at_once
def render_municipality_packet(round_id: str, ags: str) -> list[dict[str, Any]]:
    from rematch_pipeline.config import load_policy, load_settings
    from rematch_pipeline.db.engine import require_schema
    from rematch_pipeline.packets.service import render_one, round_packet_inputs

    settings = load_settings()
    require_schema(settings.database_url)
    return [render_one(settings, p, actor="airflow")
            for p in round_packet_inputs(settings, load_policy(), round_id, ags=ags)]


@fails_at_once
def deliver_municipality_packet(round_id: str, ags: str) -> list[dict[str, Any]]:
    from rematch_pipeline.config import load_settings
    from rematch_pipeline.packets.delivery import deliver_round

    delivered = deliver_round(load_settings(), round_id, actor="airflow", kinds=("packet",), ags=ags)
    refused = sorted({str(d["reason"]) for d in delivered if d["attempt"] == "refused"})
    if refused:  # rendering again (the next run of this DAG) is the fix, not a retry of the delivery
        raise _no_retry(ValueError(f"the packet of municipality {ags} was not delivered: {'; '.join(refused)}"))
    return delivered


LETTER_BATCH = 250  # offer letters per mapped task: a few seconds of printing, so the workers share a round evenly


def letter_batches(round_ids: list[str]) -> list[dict[str, Any]]:
    """The unit the letters task maps over: each round's households cut into ranges of their pseudonyms of about
    LETTER_BATCH each. A range, not a list, so a household offered a place since still falls in exactly one batch;
    pseudonyms, not case ids, so the task list in Airflow's UI names nobody."""
    from rematch_pipeline.config import load_settings
    from rematch_pipeline.domain import pseudonym
    from rematch_pipeline.repository import reading

    settings = load_settings()
    batches: list[dict[str, Any]] = []
    for rid in round_ids:
        with reading(settings) as uow:
            aliases = sorted(pseudonym(m.case_id, settings.pseudonym_salt) for m in uow.offers.of_round(rid))
        starts = ["", *aliases[LETTER_BATCH::LETTER_BATCH]]  # one batch even before any offer
        batches += [{"round_id": rid, "from": start, "before": starts[i + 1] if i + 1 < len(starts) else None}
                    for i, start in enumerate(starts)]
    return batches


@fails_at_once
def letters_in_batch(round_id: str, first: str, before: str | None) -> dict[str, Any]:
    """The offer letters of the round's households whose pseudonyms lie in [first, before), each in its language:
    rendered, then delivered."""
    from rematch_pipeline.config import load_policy, load_settings
    from rematch_pipeline.domain import pseudonym
    from rematch_pipeline.packets.delivery import deliver_round
    from rematch_pipeline.packets.letters import render_round_letters
    from rematch_pipeline.repository import reading

    settings, policy = load_settings(), load_policy()
    with reading(settings) as uow:
        aliases = {m.case_id: pseudonym(m.case_id, settings.pseudonym_salt) for m in uow.offers.of_round(round_id)}
    case_ids = {c for c, alias in aliases.items() if first <= alias and (before is None or alias < before)}
    rendered = render_round_letters(settings, policy, round_id, actor="airflow", case_ids=case_ids)
    delivered = deliver_round(settings, round_id, actor="airflow", kinds=("letter",), case_ids=case_ids)
    refused = [str(d["reason"]) for d in delivered if d["attempt"] == "refused"]
    if refused:  # the same letters would be refused again: the data team sets the contact, then clears the task
        raise _no_retry(ValueError(f"{len(refused)} offer letter(s) of round {round_id} not delivered: "
                                   f"{'; '.join(sorted(set(refused)))}"))
    return {"round_id": round_id, "letters": len(rendered), "new": sum(1 for r in rendered if r.get("new")),
            "delivered": sum(1 for d in delivered if d["delivered"])}
