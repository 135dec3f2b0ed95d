"""Deliver a round's packets and letters once per content version: into the outbox, or by e-mail when SMTP is set up."""

from __future__ import annotations

import hashlib
import html
import logging
import re
from collections.abc import Collection
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from rematch_pipeline.config import CONTACT_HINT, Settings, is_reachable
from rematch_pipeline.db.engine import require_schema
from rematch_pipeline.domain import Document
from rematch_pipeline.repository import Conflict, reading, unit_of_work

log = logging.getLogger(__name__)

# The Airflow connection that carries the SMTP server (conn type smtp, extras as the Airflow SMTP provider reads them:
# from_email, disable_ssl, disable_tls, timeout, retry_limit). Defined like any Airflow connection, e.g. by
# AIRFLOW_CONN_REMATCH_SMTP='smtp://user:password@mail.example.org:465?from_email=matching%40example.org'.
DOCUMENTS = ("packet", "letter")


class Mailer(Protocol):
    def send(self, *, to: str, subject: str, html: str, files: list[Path], message_id: str) -> None: ...


class SmtpMailer:
    """Sends through the Airflow SMTP provider's hook, so the connection is configured the Airflow way."""

    def __init__(self, conn_id: str) -> None:
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        self.hook = SmtpHook(smtp_conn_id=conn_id)
        self.conn_id = conn_id

    def __enter__(self) -> SmtpMailer:
        self.hook.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.hook.__exit__(*exc)

    @property
    def sender_domain(self) -> str:
        sender = self.hook.from_email or self.hook.smtp_user or ""
        return sender.rpartition("@")[2] or "rematch.invalid"

    def send(self, *, to: str, subject: str, html: str, files: list[Path], message_id: str) -> None:
        self.hook.send_email_smtp(to=to, subject=subject, html_content=html, files=[str(f) for f in files],
                                  custom_headers={"Message-ID": message_id})


def round_documents(settings: Settings, round_id: str, kinds: tuple[str, ...] = DOCUMENTS,
                    ags: str | None = None, case_ids: Collection[str] | None = None) -> list[Document]:
    """The latest version of every packet and letter of a round, with the address it goes to (the packet: the
    contact of the offer the round placed households in; the letters: the households offered a place in `ags`, or
    the households `case_ids`)."""
    with reading(settings) as uow:
        packets = uow.documents.latest_packets(round_id) if "packet" in kinds else []
        letters = uow.documents.latest_letters(round_id, ags, settings.pseudonym_salt) if "letter" in kinds else []
    return [d for d in packets if ags is None or d.recipient == ags] + [
        d for d in letters if case_ids is None or d.recipient in case_ids]


def message_id(doc: Document, domain: str) -> str:
    """The same document version always carries the same Message-ID, so a resend after a crash is recognisable."""
    return f"<rematch.{doc.kind}.{doc.round_id}.{doc.label}.v{doc.version}.{doc.sha256[:16]}@{domain}>"


def _subject(doc: Document) -> str:
    if doc.kind == "packet":
        return f"Re:Match – Vorab-Informationen zur Aufnahme – Runde {doc.round_id} – AGS {doc.label} " \
               f"(Version {doc.version})"
    return f"Re:Match – {doc.round_id}"


def _body(doc: Document) -> str:
    if doc.kind == "letter":
        return doc.html_path.read_text(encoding="utf-8")  # the letter itself, in the household's language
    from markupsafe import escape

    return (f"<p>Guten Tag,</p><p>anbei die Vorab-Informationen zur Aufnahme für die Matching-Runde "
            f"{escape(doc.round_id)} (AGS {escape(doc.label)}, Version {doc.version}) als PDF und HTML. "
            f"Das Dokument enthält personenbezogene Daten; bitte vertraulich behandeln.</p>"
            f"<p>Ihr Re:Match Koordinationsteam</p>")


UNANSWERABLE = ("it gives households no e-mail address or phone number of the coordination team to answer; "
                f"{CONTACT_HINT}, render the round's letters again, then deliver")
_CONTACT_PARAGRAPH = re.compile(r'<p class="contact">(.*?)</p>', re.DOTALL)


def answerable(letter_html: Path) -> bool:
    """Whether a rendered offer letter tells its household how to reach the coordination team (the contact line
    carries an e-mail address or a phone number): a letter without one leaves the household no way to answer."""
    found = _CONTACT_PARAGRAPH.search(letter_html.read_text(encoding="utf-8"))
    return found is not None and is_reachable(html.unescape(re.sub(r"<[^>]+>", "", found.group(1))))


MISSING = ("its rendered files are missing (retention deleted them, or the outbox lost them); render the round "
           "again, then deliver")
TAMPERED = ("its file was changed after it was rendered (it no longer matches the version on record); render the "
            "round again, then deliver")


def _refusal(doc: Document) -> str | None:
    """Why a rendered document must not go out, or None: changed since rendering, or a letter nobody can answer."""
    if hashlib.sha256(doc.html_path.read_bytes()).hexdigest() != doc.sha256:
        return TAMPERED
    if doc.kind == "letter" and not answerable(doc.html_path):
        return UNANSWERABLE
    return None


# What each attempt came to, in words for the reader of the JSON (`attempt` is the ledger's word for it).
STATUS = {"new": "delivered now", "retry": "delivered now (an earlier attempt was interrupted)",
          "done": "delivered earlier", "busy": "being delivered by another run at this moment",
          "refused": "not delivered"}


def _outcome(doc: Document, channel: str, attempt: str, delivered_at: datetime | None = None,
             **extra: str) -> dict[str, Any]:
    """What became of one document on one channel, as the CLI and the DAG report it (never the recipient's id).

    `delivered`: by this run; `delivered_before`: by an earlier one (attempt "done"), so a reader of the JSON does not
    take a document sent last week for one that never went out; `status` says it in words, `delivered_at` when."""
    return {"document": doc.kind, "round_id": doc.round_id, "recipient": doc.label, "version": doc.version,
            "channel": channel, "delivered": False, "delivered_before": attempt == "done", "attempt": attempt,
            "status": STATUS[attempt] if attempt in ("done", "busy", "refused") else "not yet delivered",
            "delivered_at": None if delivered_at is None else delivered_at.isoformat(), **extra}


def deliver_documents(settings: Settings, docs: list[Document], actor: str = "cli",
                      mailer: Mailer | None = None, domain: str = "rematch.invalid") -> list[dict[str, Any]]:
    """Deliver each document version at most once per channel; a retry skips what the ledger holds as delivered.

    The ledger row is committed before the e-mail is handed to the server and marked delivered after; if the
    process dies in between, the next run sends again with the same Message-ID (receivers can drop the copy).
    """
    results = []
    for doc in docs:
        channel = "smtp" if mailer is not None and doc.address else "outbox"
        missing = not doc.pdf_path.is_file() or not doc.html_path.is_file()
        if missing:
            with reading(settings) as uow:
                delivered_at = uow.deliveries.delivered_at(doc, channel)
            if delivered_at is not None:
                # Delivered before retention deleted the files: not delivered twice, but nobody should miss it.
                log.warning("%s %s/%s v%d was delivered, but its files are gone (retention or an erasure); render "
                            "the round again to restore them", doc.kind, doc.round_id, doc.label, doc.version)
                results.append(_outcome(doc, channel, "done", delivered_at, files="missing"))
                continue
        # Refused, and said so; the other documents still go out (an erasure deletes one packet's files).
        refusal = MISSING if missing else _refusal(doc)
        if refusal:
            log.warning("%s %s/%s v%d not delivered: %s", doc.kind, doc.round_id, doc.label, doc.version, refusal)
            results.append(_outcome(doc, channel, "refused", reason=refusal))
            continue
        earlier = None
        try:
            with unit_of_work(settings) as uow:
                claim = uow.deliveries.claim(doc, channel, settings.clock.now())
                if claim == "done":
                    earlier = uow.deliveries.delivered_at(doc, channel)
        except Conflict:
            claim = "busy"  # another worker claimed it this instant; it delivers
        outcome = _outcome(doc, channel, claim, earlier)
        if claim in ("done", "busy"):
            results.append(outcome)
            continue
        mid = message_id(doc, domain)
        if channel == "smtp":
            assert mailer is not None
            mailer.send(to=doc.address, subject=_subject(doc), html=_body(doc), files=[doc.pdf_path, doc.html_path],
                        message_id=mid)
        at = settings.clock.now()
        with unit_of_work(settings) as uow:
            uow.deliveries.delivered(doc, channel, at, mid if channel == "smtp" else None)
            uow.audit(actor, f"{doc.kind}_delivered", f"{doc.round_id}/{doc.label}",
                      {"version": doc.version, "channel": channel, "sha256": doc.sha256}, at)
        log.info("%s %s/%s v%d delivered (%s)", doc.kind, doc.round_id, doc.label, doc.version, channel)
        outcome.update(delivered=True, status=STATUS[claim], delivered_at=at.isoformat())
        results.append(outcome)
    return results


def deliver_round(settings: Settings, round_id: str, actor: str = "cli",
                  kinds: tuple[str, ...] = DOCUMENTS, ags: str | None = None,
                  mailer: Mailer | None = None, case_ids: Collection[str] | None = None) -> list[dict[str, Any]]:
    """Deliver the latest packets and letters of a round (of one municipality, or the letters of some households);
    by e-mail through the configured SMTP connection if any."""
    require_schema(settings.database_url)
    docs = round_documents(settings, round_id, kinds, ags, case_ids)
    if mailer is not None:
        return deliver_documents(settings, docs, actor, mailer)
    conn_id = settings.smtp_conn_id
    if conn_id is None or not any(d.address for d in docs):
        return deliver_documents(settings, docs, actor)
    with SmtpMailer(conn_id) as smtp:
        return deliver_documents(settings, docs, actor, smtp, smtp.sender_domain)
