"""Deliver a round's packets and letters once per content version: into the outbox, or by e-mail when SMTP is set up."""

from __future__ import annotations

import hashlib
import html
import logging
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from rematch_pipeline import store
from rematch_pipeline.config import CONTACT_HINT, Settings, is_reachable
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import require_schema
from rematch_pipeline.domain import pseudonym

log = logging.getLogger(__name__)

# The Airflow connection that carries the SMTP server (conn type smtp, extras as the Airflow SMTP provider reads them:
# from_email, disable_ssl, disable_tls, timeout, retry_limit). Defined like any Airflow connection, e.g. by
# AIRFLOW_CONN_REMATCH_SMTP='smtp://user:password@mail.example.org:465?from_email=matching%40example.org'.
DOCUMENTS = ("packet", "letter")


class Mailer(Protocol):
    def send(self, *, to: str, subject: str, html: str, files: list[Path], message_id: str) -> None: ...


@dataclass(frozen=True)
class Document:
    """One rendered version of a packet (to a municipality) or a letter (to a household)."""

    kind: str
    round_id: str
    recipient: str  # AGS of a packet, case_id of a letter (never logged; `label` is)
    label: str  # AGS, or the household's pseudonym
    version: int
    sha256: str
    html_path: Path
    pdf_path: Path
    address: str  # e-mail address, "" when the recipient gave none


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
                    ags: str | None = None) -> list[Document]:
    """The latest version of every packet and letter of a round, with the address it goes to."""
    docs: list[Document] = []
    with settings.engine().connect() as conn:
        if "packet" in kinds:
            latest = (select(t.packets.c.ags, func.max(t.packets.c.version).label("version"))
                      .where(t.packets.c.round_id == round_id).group_by(t.packets.c.ags).subquery())
            rows = conn.execute(select(t.packets).join(latest, and_(t.packets.c.ags == latest.c.ags,
                                                                    t.packets.c.version == latest.c.version))
                                .where(t.packets.c.round_id == round_id).order_by(t.packets.c.ags)).all()
            # The packet goes to the contact of the offer the round assigned households to in that municipality.
            offer_of = dict(conn.execute(select(t.assignments.c.ags, func.min(t.assignments.c.offer_id))
                                         .where(t.assignments.c.round_id == round_id)
                                         .group_by(t.assignments.c.ags)).all())
            emails = {o.offer_id: o.contact_email for o in store.load_offers(conn)}
            for r in rows:
                if ags is None or r.ags == ags:
                    docs.append(Document("packet", round_id, r.ags, r.ags, r.version, r.sha256, Path(r.html_path),
                                         Path(r.pdf_path), emails.get(offer_of.get(r.ags, ""), "") or ""))
        if "letter" in kinds:
            latest = (select(t.letters.c.case_id, func.max(t.letters.c.version).label("version"))
                      .where(t.letters.c.round_id == round_id).group_by(t.letters.c.case_id).subquery())
            q = (select(t.letters, t.households.c.contact_email, t.households.c.purged_at)
                 .join(latest, and_(t.letters.c.case_id == latest.c.case_id, t.letters.c.version == latest.c.version))
                 .join(t.households, t.households.c.case_id == t.letters.c.case_id)
                 .where(t.letters.c.round_id == round_id).order_by(t.letters.c.case_id))
            if ags is not None:  # the letters to the households offered a place in that municipality
                q = q.join(t.match_offers, and_(t.match_offers.c.round_id == t.letters.c.round_id,
                                                t.match_offers.c.case_id == t.letters.c.case_id)
                           ).where(t.match_offers.c.ags == ags)
            rows = conn.execute(q).all()
            for r in rows:
                if r.purged_at is not None:
                    continue  # erased on request: nothing goes out any more
                docs.append(Document("letter", round_id, r.case_id, pseudonym(r.case_id, settings.pseudonym_salt),
                                     r.version, r.sha256, Path(r.html_path), Path(r.pdf_path), r.contact_email or ""))
    return docs


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


def _ledger_key(doc: Document, channel: str) -> tuple[Any, ...]:
    """The ledger row of one document version on one channel (the table's unique key)."""
    return (t.deliveries.c.document == doc.kind, t.deliveries.c.round_id == doc.round_id,
            t.deliveries.c.recipient == doc.recipient, t.deliveries.c.sha256 == doc.sha256,
            t.deliveries.c.channel == channel)


def _delivered(engine: Any, doc: Document, channel: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(t.deliveries.c.status).where(*_ledger_key(doc, channel))).scalar() == "delivered"


def _claim(conn: Any, doc: Document, channel: str, at: datetime) -> str:
    """Reserve the delivery in the ledger at `at`: 'new', 'retry' after an interrupted attempt, or 'done'."""
    key = _ledger_key(doc, channel)
    row = conn.execute(select(t.deliveries).where(*key)).first()
    if row is None:
        conn.execute(insert(t.deliveries).values(document=doc.kind, round_id=doc.round_id, recipient=doc.recipient,
                                                 version=doc.version, sha256=doc.sha256, channel=channel,
                                                 status="sending", attempts=1, claimed_at=at))
        return "new"
    if row.status == "delivered":
        return "done"
    conn.execute(update(t.deliveries).where(*key).values(attempts=row.attempts + 1, claimed_at=at))
    return "retry"


UNANSWERABLE = ("it gives households no e-mail address or phone number of the coordination team to answer; "
                f"{CONTACT_HINT}, render the round's letters again, then deliver")
_CONTACT_PARAGRAPH = re.compile(r'<p class="contact">(.*?)</p>', re.DOTALL)


def answerable(letter_html: Path) -> bool:
    """Whether a rendered offer letter tells its household how to reach the coordination team (the contact line
    carries an e-mail address or a phone number): a letter without one leaves the household no way to answer."""
    found = _CONTACT_PARAGRAPH.search(letter_html.read_text(encoding="utf-8"))
    return found is not None and is_reachable(html.unescape(re.sub(r"<[^>]+>", "", found.group(1))))


TAMPERED = ("its file was changed after it was rendered (it no longer matches the version on record); render the "
            "round again, then deliver")


def _refusal(doc: Document) -> str | None:
    """Why a rendered document must not go out, or None: changed since rendering, or a letter nobody can answer."""
    if hashlib.sha256(doc.html_path.read_bytes()).hexdigest() != doc.sha256:
        return TAMPERED
    if doc.kind == "letter" and not answerable(doc.html_path):
        return UNANSWERABLE
    return None


def deliver_documents(settings: Settings, docs: list[Document], actor: str = "cli",
                      mailer: Mailer | None = None, domain: str = "rematch.invalid") -> list[dict[str, Any]]:
    """Deliver each document version at most once per channel; a retry skips what the ledger holds as delivered.

    The ledger row is committed before the e-mail is handed to the server and marked delivered after; if the
    process dies in between, the next run sends again with the same Message-ID (receivers can drop the copy).
    """
    engine = settings.engine()
    results = []
    for doc in docs:
        channel = "smtp" if mailer is not None and doc.address else "outbox"
        if not doc.pdf_path.is_file() or not doc.html_path.is_file():
            if _delivered(engine, doc, channel):
                # Delivered before retention deleted the files: not delivered twice, but nobody should miss it.
                log.warning("%s %s/%s v%d was delivered, but its files are gone (retention); render the round "
                            "again to restore them", doc.kind, doc.round_id, doc.label, doc.version)
                results.append({"document": doc.kind, "round_id": doc.round_id, "recipient": doc.label,
                                "version": doc.version, "channel": channel, "delivered": False,
                                "attempt": "done", "files": "missing"})
                continue
            raise FileNotFoundError(f"{doc.kind} {doc.round_id}/{doc.label} v{doc.version}: rendered file missing; "
                                    f"render the round again before delivering")
        refusal = _refusal(doc)
        if refusal:
            log.warning("%s %s/%s v%d not delivered: %s", doc.kind, doc.round_id, doc.label, doc.version, refusal)
            results.append({"document": doc.kind, "round_id": doc.round_id, "recipient": doc.label,
                            "version": doc.version, "channel": channel, "delivered": False, "attempt": "refused",
                            "reason": refusal})
            continue
        try:
            with engine.begin() as conn:
                claim = _claim(conn, doc, channel, settings.clock.now())
        except IntegrityError:
            claim = "busy"  # another worker claimed it this instant; it delivers
        outcome = {"document": doc.kind, "round_id": doc.round_id, "recipient": doc.label, "version": doc.version,
                   "channel": channel, "delivered": False, "attempt": claim}
        if claim in ("done", "busy"):
            results.append(outcome)
            continue
        mid = message_id(doc, domain)
        if channel == "smtp":
            assert mailer is not None
            mailer.send(to=doc.address, subject=_subject(doc), html=_body(doc), files=[doc.pdf_path, doc.html_path],
                        message_id=mid)
        at = settings.clock.now()
        with engine.begin() as conn:
            conn.execute(update(t.deliveries).where(*_ledger_key(doc, channel)).values(
                status="delivered", delivered_at=at, message_id=mid if channel == "smtp" else None))
            store.audit(conn, actor, f"{doc.kind}_delivered", f"{doc.round_id}/{doc.label}",
                        {"version": doc.version, "channel": channel, "sha256": doc.sha256}, at=at)
        log.info("%s %s/%s v%d delivered (%s)", doc.kind, doc.round_id, doc.label, doc.version, channel)
        outcome["delivered"] = True
        results.append(outcome)
    return results


def deliver_round(settings: Settings, round_id: str, actor: str = "cli",
                  kinds: tuple[str, ...] = DOCUMENTS, ags: str | None = None,
                  mailer: Mailer | None = None) -> list[dict[str, Any]]:
    """Deliver the latest packets and letters of a round; by e-mail through the configured SMTP connection if any."""
    require_schema(settings.database_url)
    docs = round_documents(settings, round_id, kinds, ags)
    if mailer is not None:
        return deliver_documents(settings, docs, actor, mailer)
    conn_id = settings.smtp_conn_id
    if conn_id is None or not any(d.address for d in docs):
        return deliver_documents(settings, docs, actor)
    with SmtpMailer(conn_id) as smtp:
        return deliver_documents(settings, docs, actor, smtp, smtp.sender_domain)
