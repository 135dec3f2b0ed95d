"""Delivery: packets reach the outbox or, with an SMTP connection, the municipality's inbox — once per version."""

from __future__ import annotations

import email
import email.policy
import re
import socket
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select

from rematch_pipeline.cli import main
from rematch_pipeline.config import DEFAULT_COORDINATION_CONTACT, Settings, load_policy, load_settings
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine
from rematch_pipeline.packets.delivery import deliver_round
from rematch_pipeline.packets.letters import render_round_letters
from rematch_pipeline.packets.service import render_round_packets
from rematch_pipeline.repository import Conflict, SqlDeliveries
from rematch_pipeline.rounds import decide, offer_round
from tests.factories import solved_round

ROUND_DATE = date(2026, 11, 23)


class Inbox:
    """A local SMTP server (aiosmtpd) that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.recipients: list[list[str]] = []
        self.fail_next = False

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's hook name)
        if self.fail_next:
            self.fail_next = False
            return "451 try again later"
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))  # type: ignore[arg-type]
        self.recipients.append(list(envelope.rcpt_tos))
        return "250 OK"


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Inbox]:
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("AIRFLOW_CONN_REMATCH_SMTP", f"smtp://127.0.0.1:{port}?disable_ssl=true&disable_tls=true"
                                                    "&retry_limit=0&from_email=matching%40example.org")
    try:
        yield inbox
    finally:
        controller.stop()


def _through_smtp(settings: Settings) -> Settings:
    # As production decides it: an AIRFLOW_CONN_REMATCH_SMTP in the environment (set by `smtp`) means deliver by mail.
    conn_id = load_settings().smtp_conn_id
    assert conn_id == "rematch_smtp"
    return replace(settings, smtp_conn_id=conn_id)


def _solved_round(settings: Settings, tmp_path: Path) -> str:
    round_id = solved_round(settings, tmp_path)
    offer_round(settings, round_id)
    render_round_packets(settings, load_policy(), round_id)
    return round_id


def _ledger(settings: Settings) -> list[Any]:
    with get_engine(settings.database_url).connect() as conn:
        return conn.execute(select(t.deliveries).order_by(t.deliveries.c.id)).all()


def _packets(settings: Settings, round_id: str) -> dict[str, Any]:
    with get_engine(settings.database_url).connect() as conn:
        rows = conn.execute(select(t.packets).where(t.packets.c.round_id == round_id)
                            .order_by(t.packets.c.version)).all()
    # The latest version of each, its files under the home (the database holds them relative to it).
    return {r.ags: SimpleNamespace(**{**r._mapping, "html_path": str(settings.home / r.html_path),
                                      "pdf_path": str(settings.home / r.pdf_path)}) for r in rows}


@pytest.mark.full
def test_packets_are_emailed_to_the_offer_contact_exactly_once_across_retries(
        settings: Settings, tmp_path: Path, smtp: Inbox) -> None:
    settings = _through_smtp(settings)
    round_id = _solved_round(settings, tmp_path)
    packets = _packets(settings, round_id)
    first = deliver_round(settings, round_id, kinds=("packet",))
    assert sorted(r["recipient"] for r in first if r["delivered"]) == sorted(packets)
    assert {r["channel"] for r in first} == {"smtp"}
    assert len(smtp.messages) == len(packets)
    # Each message goes to that municipality's contact and carries its PDF and HTML, nothing of another one.
    for msg, rcpt in zip(smtp.messages, smtp.recipients, strict=True):
        ags = msg["Subject"].split("AGS ")[1].split()[0]
        assert rcpt == [msg["To"]] and msg["To"].startswith("integration.")
        names = sorted(part.get_filename() for part in msg.iter_attachments())
        assert names == [f"packet_{ags}_{round_id}.html", f"packet_{ags}_{round_id}.pdf"]
        assert msg["Message-ID"].startswith(f"<rematch.packet.{round_id}.{ags}.v1.")
    # A retry (the task ran again) sends nothing and adds no ledger row.
    again = deliver_round(settings, round_id, kinds=("packet",))
    assert not any(r["delivered"] for r in again) and {r["attempt"] for r in again} == {"done"}
    # ... and says each was delivered before, so the JSON does not read as "not delivered".
    assert all(r["delivered_before"] for r in again) and not any(r["delivered_before"] for r in first)
    # ... in words, and when: the earlier run's moment, not this one's.
    assert {r["status"] for r in first} == {"delivered now"} and {r["status"] for r in again} == {"delivered earlier"}
    when = {r["recipient"]: r["delivered_at"] for r in first}
    assert all(when[r["recipient"]] == r["delivered_at"] and r["delivered_at"].endswith("+00:00") for r in again)
    assert len(smtp.messages) == len(packets)
    assert len(_ledger(settings)) == len(packets)
    with get_engine(settings.database_url).connect() as conn:
        events = conn.execute(select(func.count()).select_from(t.audit_events)
                              .where(t.audit_events.c.event == "packet_delivered")).scalar()
    assert events == len(packets)


@pytest.mark.full
def test_a_changed_packet_is_delivered_as_a_new_version(settings: Settings, tmp_path: Path, smtp: Inbox) -> None:
    settings = _through_smtp(settings)
    round_id = _solved_round(settings, tmp_path)
    deliver_round(settings, round_id, kinds=("packet",))
    sent = len(smtp.messages)
    with get_engine(settings.database_url).connect() as conn:
        case_id, ags = conn.execute(select(t.match_offers.c.case_id, t.match_offers.c.ags)
                                    .order_by(t.match_offers.c.case_id).limit(1)).one()
    decide(settings, case_id, round_id, "accept")
    rendered = render_round_packets(settings, load_policy(), round_id)
    assert [r["ags"] for r in rendered if r["new"]] == [ags]  # only that municipality's packet changed
    deliver_round(settings, round_id, kinds=("packet",))
    assert len(smtp.messages) == sent + 1
    assert f"AGS {ags} (Version 2)" in smtp.messages[-1]["Subject"]
    # Both versions stay on record, and version 1's files were kept under their versioned names.
    versions = sorted((r.recipient, r.version) for r in _ledger(settings) if r.recipient == ags)
    assert versions == [(ags, 1), (ags, 2)]
    assert (settings.outbox / ags / round_id / f"packet_{ags}_{round_id}_v1.pdf").is_file()


@pytest.mark.full
def test_an_interrupted_delivery_is_retried_and_then_recorded_once(
        settings: Settings, tmp_path: Path, smtp: Inbox) -> None:
    settings = _through_smtp(settings)
    round_id = _solved_round(settings, tmp_path)
    smtp.fail_next = True  # the server refuses the first message: the run fails after claiming it
    with pytest.raises(Exception):  # noqa: B017 (the SMTP library's error type is not ours to pin)
        deliver_round(settings, round_id, kinds=("packet",))
    claimed = _ledger(settings)
    assert [r.status for r in claimed] == ["sending"]
    deliver_round(settings, round_id, kinds=("packet",))
    ledger = _ledger(settings)
    assert all(r.status == "delivered" for r in ledger)
    assert ledger[0].attempts == 2
    assert len(smtp.messages) == len(ledger) == len(_packets(settings, round_id))


@pytest.mark.full
def test_without_smtp_the_outbox_is_the_delivery_and_it_is_recorded(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_REMATCH_SMTP", raising=False)
    monkeypatch.delenv("REMATCH_SMTP_CONN_ID", raising=False)
    round_id = _solved_round(settings, tmp_path)
    results = deliver_round(settings, round_id, kinds=("packet",))
    assert results and {r["channel"] for r in results} == {"outbox"} and all(r["delivered"] for r in results)
    assert not any(r["delivered"] for r in deliver_round(settings, round_id, kinds=("packet",)))


@pytest.mark.full
def test_a_document_another_run_is_delivering_is_reported_busy_in_words_not_as_sent_or_failed(
        settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_REMATCH_SMTP", raising=False)
    monkeypatch.delenv("REMATCH_SMTP_CONN_ID", raising=False)
    round_id = _solved_round(settings, tmp_path)

    def claimed_elsewhere(*_: Any) -> str:
        raise Conflict("the delivery was claimed by another worker")

    monkeypatch.setattr(SqlDeliveries, "claim", claimed_elsewhere)
    results = deliver_round(settings, round_id, kinds=("packet",))
    assert results and {(r["attempt"], r["delivered"], r["delivered_before"], r["delivered_at"]) for r in results} \
        == {("busy", False, False, None)}
    assert {r["status"] for r in results} == {"being delivered by another run at this moment"}
    # People read the same: not "already delivered", which these are not (yet).
    assert main(["packets", "deliver", round_id], settings=settings) == 0
    out = capsys.readouterr().out
    assert re.search(r"^\d+ documents? being delivered by another run at this moment$", out, re.M)
    assert "already delivered" not in out


@pytest.mark.full
def test_delivery_refuses_a_packet_whose_file_is_missing(settings: Settings, tmp_path: Path) -> None:
    round_id = _solved_round(settings, tmp_path)
    row = next(iter(_packets(settings, round_id).values()))
    Path(row.pdf_path).unlink()
    results = {r["recipient"]: r for r in deliver_round(settings, round_id, kinds=("packet",))}
    assert results[row.ags]["attempt"] == "refused" and "render the round again" in results[row.ags]["reason"]
    # The other packets still go out: one missing file does not stop the round's delivery.
    assert all(r["delivered"] for ags, r in results.items() if ags != row.ags) and len(results) > 1


@pytest.mark.full
def test_declined_households_leave_the_packet_and_it_is_final_once_all_answered(
        settings: Settings, tmp_path: Path) -> None:
    from rematch_pipeline.packets.service import round_packet_inputs

    round_id = _solved_round(settings, tmp_path)
    with get_engine(settings.database_url).connect() as conn:
        ags, = conn.execute(select(t.match_offers.c.ags).group_by(t.match_offers.c.ags)
                            .having(func.count() >= 2).order_by(t.match_offers.c.ags).limit(1)).one()
        cases = list(conn.execute(select(t.match_offers.c.case_id).where(t.match_offers.c.ags == ags)
                                  .order_by(t.match_offers.c.case_id)).scalars())
    [before] = round_packet_inputs(settings, load_policy(), round_id, ags=ags)
    assert not before.final and len(before.households) == len(cases)
    decide(settings, cases[0], round_id, "decline")
    for case_id in cases[1:]:
        decide(settings, case_id, round_id, "accept")
    [after] = round_packet_inputs(settings, load_policy(), round_id, ags=ags)
    assert after.final and after.withdrawn == {"declined": 1}
    assert sorted(ph.household.case_id for ph in after.households) == cases[1:]
    rendered = {r["ags"]: r for r in render_round_packets(settings, load_policy(), round_id)}
    assert rendered[ags]["new"] and rendered[ags]["final"]
    assert _packets(settings, round_id)[ags].final


@pytest.mark.full
def test_parallel_rendering_writes_the_same_packets_once(settings: Settings, tmp_path: Path) -> None:
    import hashlib

    from rematch_pipeline.packets.render import render_packet_html, render_packet_pdf
    from rematch_pipeline.packets.service import round_packet_inputs

    round_id = _solved_round(settings, tmp_path)  # rendered once, sequentially
    with get_engine(settings.database_url).connect() as conn:
        conn.execute(t.packets.delete())
        conn.commit()
    first = render_round_packets(settings, load_policy(), round_id, workers=2)
    assert first and all(r["new"] and r["version"] == 1 for r in first)
    for packet in round_packet_inputs(settings, load_policy(), round_id):
        [row] = [r for r in first if r["ags"] == packet.offer.ags]
        expected = render_packet_pdf(render_packet_html(packet))
        assert hashlib.sha256(Path(row["pdf_path"]).read_bytes()).digest() == hashlib.sha256(expected).digest()
    again = render_round_packets(settings, load_policy(), round_id, workers=2)
    assert not any(r["new"] for r in again) and len(_packets(settings, round_id)) == len(first)


def test_every_packet_of_a_round_holds_only_its_own_households(settings: Settings, tmp_path: Path) -> None:
    from pypdf import PdfReader

    from rematch_pipeline.domain import pseudonym
    from tests.html_tree import parse

    round_id = _solved_round(settings, tmp_path)
    salt = settings.pseudonym_salt
    with get_engine(settings.database_url).connect() as conn:
        assigned = conn.execute(select(t.assignments.c.ags, t.assignments.c.case_id)).all()
    own: dict[str, set[str]] = {}
    for ags, case_id in assigned:
        own.setdefault(ags, set()).add(pseudonym(case_id, salt))
    everyone = set().union(*own.values())
    packets = _packets(settings, round_id)
    assert set(packets) == set(own) and len(own) > 1
    for ags, row in packets.items():
        doc = parse(Path(row.html_path).read_text(encoding="utf-8"))
        sections = {s.attrs["id"] for s in doc.iter("section") if "household" in (s.attrs.get("class") or "")}
        assert sections == {f"hh-{p}" for p in own[ags]}, ags
        pdf = "".join(page.extract_text() for page in PdfReader(row.pdf_path).pages)
        html = Path(row.html_path).read_text(encoding="utf-8")
        for other in everyone - own[ags]:
            assert other not in html and other not in pdf, f"{other} of another municipality is in {ags}'s packet"


def test_nothing_is_rendered_without_a_reachable_contact_and_a_changed_file_is_never_delivered(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rematch_pipeline.config import UnreachableContact

    round_id = solved_round(settings, tmp_path)
    offer_round(settings, round_id)
    unreachable = replace(settings, coordination_contact=DEFAULT_COORDINATION_CONTACT)  # a name, nothing to reach
    with pytest.raises(UnreachableContact, match="No packet or letter was rendered"):
        render_round_letters(unreachable, load_policy(), round_id)
    with pytest.raises(UnreachableContact):
        render_round_packets(unreachable, load_policy(), round_id)
    assert not list(settings.outbox.rglob("*.html"))  # nothing an outbox reader could take for a letter
    letters = render_round_letters(settings, load_policy(), round_id)
    # A letter changed after rendering (here: its contact line) no longer matches its version and stays back.
    changed = Path(letters[0]["html_path"])
    changed.write_text(changed.read_text(encoding="utf-8").replace("koordination@", "attacker@"), encoding="utf-8")
    results = deliver_round(settings, round_id, kinds=("letter",))
    refused = [r for r in results if r["attempt"] == "refused"]
    assert len(refused) == 1 and "changed after it was rendered" in refused[0]["reason"]
    assert sum(r["delivered"] for r in results) == len(results) - 1
    assert main(["packets", "deliver", round_id], settings=settings) == 2
    out = capsys.readouterr().out
    assert "NOT delivered: its file was changed" in out
    # What was delivered before is counted, not named: a national round would list 10,000 letters.
    # ... with when (the test clock's morning), so "already" is not taken on trust.
    assert re.search(r"^\d+ documents? already delivered, the last on 2026-11-23 09:00 UTC$", out, re.M)
    assert ": already delivered" not in out
    render_round_letters(settings, load_policy(), round_id)  # restores the file of the same version
    assert [r["delivered"] for r in deliver_round(settings, round_id, kinds=("letter",))
            if r["attempt"] != "done"] == [True]
