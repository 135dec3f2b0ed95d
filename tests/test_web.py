"""The reports app inside Airflow (rematch_pipeline/web.py), with the project's roles and a stand-in for the login."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from fastapi import HTTPException, Request
from fastapi.testclient import TestClient
from sqlalchemy import select

from rematch_pipeline import access
from rematch_pipeline.config import Settings
from rematch_pipeline.db import tables as t
from rematch_pipeline.reports.round_report import write_round_report
from rematch_pipeline.web import Gate, create_app, resolve, view_of
from tests import factories

ROUND, AGS = "R-2026-11-23", "09162000"
PACKET = f"outbox/{AGS}/{ROUND}/packet_{AGS}_{ROUND}.pdf"


class Person:
    def __init__(self, name: str, role: str) -> None:
        self.name, self.role = name, role

    def get_name(self) -> str:
        return self.name


PEOPLE = {"ada": Person("ada", access.AUDITOR), "tom": Person("tom", access.DATA_TEAM)}


async def _who(request: Request) -> Person:
    person = PEOPLE.get(request.headers.get("X-Person", ""))
    if person is None:
        raise HTTPException(status_code=401, detail="Not authenticated")
    return person


def _may(person: Any, view: str) -> bool:
    return (access.READ, view) in access.ROLES[person.role]  # the roles exactly as `rematch access sync` sets them


AUDITOR, TEAM = {"X-Person": "ada"}, {"X-Person": "tom"}


def _home(settings: Settings) -> None:
    """A home with one file of every kind, served or not."""
    home = settings.home
    for rel, body in {"data_docs/index.html": "<p>docs</p>", "data_docs/static/rematch/data_docs.css": "p{}",
                      f"exports/{ROUND}/round_report.html": "<p>report</p>", f"exports/{ROUND}/round.json": "{}",
                      PACKET: "%PDF-packet", f"outbox/letters/{ROUND}/offer_H1_{ROUND}_uk.pdf": "%PDF-letter",
                      "inbox/households.xlsx": "interviews", "settings.toml": "x = 1",
                      "airflow/passwords/admin": "secret"}.items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_text(body)


@pytest.fixture
def client(settings: Settings) -> TestClient:
    _home(settings)
    return TestClient(create_app(settings, Gate(who=_who, may=_may)), root_path="/rematch")


def _events(settings: Settings) -> list[dict[str, Any]]:
    with settings.engine().connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(t.audit_events).order_by(t.audit_events.c.id))
                if r.event.startswith("report_")]


def test_an_anonymous_request_gets_401_on_every_page(client: TestClient) -> None:
    for url in ("/", "/quarantine", f"/rounds/{ROUND}/packets", f"/rounds/{ROUND}/audit.zip",
                f"/home/exports/{ROUND}/round_report.html", "/home/data_docs/index.html", f"/home/{PACKET}"):
        assert client.get(url).status_code == 401, url


def test_an_auditor_opens_the_round_report_and_the_data_docs(client: TestClient) -> None:
    report = client.get(f"/home/exports/{ROUND}/round_report.html", headers=AUDITOR)
    docs = client.get("/home/data_docs/index.html", headers=AUDITOR)
    assert (report.status_code, report.text, docs.status_code, docs.text) == (200, "<p>report</p>", 200,
                                                                                "<p>docs</p>")
    assert "frame-ancestors 'self'" in report.headers["content-security-policy"]
    assert report.headers["cache-control"] == "no-store"


def test_an_auditor_cannot_open_a_packet_nor_the_packet_list_and_the_refusal_is_recorded(
        client: TestClient, settings: Settings) -> None:
    assert client.get(f"/home/{PACKET}", headers=AUDITOR).status_code == 403
    assert client.get(f"/rounds/{ROUND}/packets", headers=AUDITOR).status_code == 403
    assert "%PDF" not in client.get(f"/home/{PACKET}", headers=AUDITOR).text
    refused = [e for e in _events(settings) if e["event"] == "report_refused"]
    assert refused and all(e["actor"] == "ada" and e["details"]["view"] == access.PACKETS for e in refused)


def test_the_data_team_opens_a_packet_and_the_opening_is_recorded_under_its_round(client: TestClient,
                                                                                  settings: Settings) -> None:
    listed = client.get(f"/rounds/{ROUND}/packets", headers=TEAM)
    assert listed.status_code == 200 and f"packet_{AGS}_{ROUND}.pdf" in listed.text
    link = re.search(r'href="([^"]+\.pdf)"', listed.text)
    assert link is not None and link.group(1) == f"../../home/{PACKET}"  # relative to /rematch/rounds/R/packets
    packet = client.get(f"/home/{PACKET}", headers=TEAM)
    assert (packet.status_code, packet.content, packet.headers["content-type"]) == (200, b"%PDF-packet",
                                                                                     "application/pdf")
    opened = [e for e in _events(settings) if e["event"] == "report_opened" and e["details"]["path"] == PACKET]
    # The subject names the round and municipality, so the round's audit export lists who read its packets.
    assert [(e["actor"], e["subject"]) for e in opened] == [("tom", f"{ROUND}/{AGS}")]


def test_another_website_embedding_a_report_is_refused_and_records_no_opening(client: TestClient,
                                                                             settings: Settings) -> None:
    # Rule: a report address embedded by another site (an image, a script's fetch) carries the reader's login; it
    # must not write "report_opened" in their name. A link the reader follows from elsewhere still opens.
    report = f"/home/exports/{ROUND}/round_report.html"
    for mode, dest in (("no-cors", "image"), ("cors", "empty"), ("no-cors", "iframe")):
        embedded = client.get(report, headers={**AUDITOR, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": mode,
                                               "Sec-Fetch-Dest": dest})
        assert embedded.status_code == 403 and embedded.text.startswith("Another website asked"), (mode, dest)
    assert client.get(f"/rounds/{ROUND}/audit.zip", headers={**TEAM, "Sec-Fetch-Site": "cross-site",
                                                            "Sec-Fetch-Mode": "no-cors"}).status_code == 403
    assert not [e for e in _events(settings) if e["event"] == "report_opened"]
    followed = client.get(report, headers={**AUDITOR, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate",
                                           "Sec-Fetch-Dest": "document"})
    here = client.get(report, headers={**AUDITOR, "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "no-cors"})
    assert followed.status_code == here.status_code == 200
    assert len([e for e in _events(settings) if e["event"] == "report_opened"]) == 2


@pytest.mark.parametrize("attempt", [
    "../rematch.sqlite", "data_docs/../settings.toml", "data_docs/%2e%2e/settings.toml", "settings.toml",
    "inbox/households.xlsx", "airflow/passwords/admin", f"outbox/letters/{ROUND}/offer_H1_{ROUND}_uk.pdf",
    f"exports/{ROUND}/../../settings.toml", "data_docs/..%2fsettings.toml", "data_docs\\..\\settings.toml",
    "data_docs/.hidden", f"outbox/{AGS}/{ROUND}/../../letters/{ROUND}/offer_H1_{ROUND}_uk.pdf",
])
def test_a_path_outside_the_reports_is_refused(client: TestClient, attempt: str) -> None:
    answer = client.get(f"/home/{attempt}", headers=TEAM)
    assert answer.status_code == 404
    assert not {"secret", "interviews", "x = 1", "%PDF-letter"} & {answer.text}


def test_a_link_or_second_name_inside_a_served_folder_is_refused(client: TestClient, settings: Settings) -> None:
    import os

    home = settings.home
    (home / "data_docs" / "db.html").symlink_to(home / "settings.toml")
    (home / "data_docs" / "inbox").symlink_to(home / "inbox")
    (home / "data_docs" / "p.pdf").symlink_to(home / PACKET)  # a packet dressed as a Data Docs page
    (home / "exports" / ROUND / "audit").mkdir()
    (home / "exports" / ROUND / "audit" / "pk").symlink_to(home / "outbox" / AGS / ROUND)
    os.link(home / PACKET, home / "data_docs" / "copy.pdf")
    assert resolve(home, "data_docs/db.html") is None
    for attempt in ("data_docs/db.html", "data_docs/inbox/households.xlsx", "data_docs/p.pdf", "data_docs/copy.pdf",
                    f"exports/{ROUND}/audit/pk/packet_{AGS}_{ROUND}.pdf"):
        answer = client.get(f"/home/{attempt}", headers=AUDITOR)
        assert answer.status_code == 404 and b"%PDF" not in answer.content, attempt


def test_a_page_planted_in_a_served_folder_runs_no_script_and_a_file_name_adds_nothing(
        client: TestClient, settings: Settings) -> None:
    (settings.home / "data_docs" / "x.html").write_text("<script>fetch('/api/v2/connections')</script>")
    page = client.get("/home/data_docs/x.html", headers=AUDITOR)
    assert "script-src 'none'" in page.headers["content-security-policy"]
    assert "form-action 'none'" in page.headers["content-security-policy"]
    odd = "a\";filename*=UTF-8''evil.exe;x=\".csv"
    (settings.home / "data_docs" / odd).write_text("x")
    (settings.home / "data_docs" / "Überprüfung.html").write_text("<p>ok</p>")
    answer = client.get("/home/data_docs/" + odd.replace('"', "%22").replace(";", "%3B"), headers=AUDITOR)
    assert answer.status_code == 200 and "evil.exe;" not in answer.headers["content-disposition"]
    assert client.get("/home/data_docs/Überprüfung.html", headers=AUDITOR).status_code == 200
    listing = client.get("/home/data_docs/", headers=AUDITOR).text
    assert 'href="./a%22%3Bfilename' in listing  # a name is a link to itself, never markup or a scheme


def test_whoever_may_not_read_packets_cannot_tell_which_exist(client: TestClient) -> None:
    missing = f"/home/outbox/05111000/{ROUND}/packet_05111000_{ROUND}.pdf"
    assert client.get(missing, headers=AUDITOR).status_code == client.get(f"/home/{PACKET}",
                                                                           headers=AUDITOR).status_code == 403
    assert client.get(missing, headers=TEAM).status_code == 404


def test_probing_for_what_is_never_served_and_reading_a_packet_list_are_recorded(client: TestClient,
                                                                                 settings: Settings) -> None:
    assert client.get("/home/airflow/passwords/admin", headers=AUDITOR).status_code == 404
    assert client.get(f"/rounds/{ROUND}/packets", headers=TEAM).status_code == 200
    events = [(e["actor"], e["event"], e["subject"], e["details"]["path"]) for e in _events(settings)]
    assert events == [("ada", "report_refused", "no report", "airflow/passwords/admin"),
                      ("tom", "report_opened", ROUND, f"exports/{ROUND}/packets")]


def test_only_reports_are_served() -> None:
    assert view_of(f"exports/{ROUND}/round_report.html") == access.ROUND_REPORTS
    assert view_of(f"exports/{ROUND}/audit/{ROUND}/events.csv") == access.AUDIT_EXPORTS
    assert view_of(PACKET) == access.PACKETS
    for never in ("rematch.sqlite", "archive/e9/x.xlsx", "gx/x", f"outbox/letters/{ROUND}/x.pdf", "exports/x.csv",
                  f"outbox/{AGS}/{ROUND}/notes.txt"):
        assert view_of(never) is None, never


def test_the_index_links_only_what_the_role_may_read(client: TestClient, settings: Settings) -> None:
    page = client.get("/", headers=AUDITOR)
    assert page.status_code == 200 and "signed in as ada" in page.text
    assert "/packets" not in page.text and "home/data_docs/index.html" in page.text
    assert 'href="/rematch/"' in page.text  # the way back, where Airflow mounted the app


def test_the_quarantine_page_gives_each_reason_without_the_rows_values(settings: Settings, tmp_path: Path) -> None:
    from rematch_pipeline.ingest.service import ingest_file
    from tests.exports import capacity_csv, offer

    (tmp_path / "capacity.csv").write_bytes(capacity_csv([offer(places_persons="3", contact_name="Frau Geheim")]))
    ingest_file(tmp_path / "capacity.csv", settings)
    client = TestClient(create_app(settings, Gate(who=_who, may=_may)), root_path="/rematch")
    page = client.get("/quarantine", headers=AUDITOR)
    assert page.status_code == 200 and "capacity.csv, row 2" in page.text and "places_persons" in page.text
    assert "Frau Geheim" not in page.text


def test_the_audit_export_downloads_as_a_zip_made_now_and_the_report_links_resolve(
        settings: Settings, tmp_path: Path) -> None:
    round_id = factories.solved_round(settings, tmp_path)
    write_round_report(settings, round_id)
    client = TestClient(create_app(settings, Gate(who=_who, may=_may)), root_path="/rematch")
    answer = client.get(f"/rounds/{round_id}/audit.zip", headers=AUDITOR)
    assert answer.status_code == 200
    names = set(zipfile.ZipFile(io.BytesIO(answer.content)).namelist())
    assert {f"{round_id}/events.csv", f"{round_id}/assignments.csv", f"{round_id}/README.txt"} <= names
    assert client.get("/rounds/R-1999-01-01/audit.zip", headers=AUDITOR).status_code == 404
    # Every link of the round report that leads to another file opens for an auditor where Airflow serves it.
    base = f"/home/exports/{round_id}/"
    report = client.get(base + "round_report.html", headers=AUDITOR).text
    links = {h for h in re.findall(r'href="([^"#]+)"', report) if "://" not in h}
    assert links, "the report links its Data Docs and export files"
    for href in links:
        url = str(Path(base + href).resolve()) if not href.startswith("/") else href
        assert client.get(url + ("/" if href.endswith("/") else ""), headers=AUDITOR).status_code == 200, href


def test_without_the_project_database_a_page_says_what_to_do_and_names_no_path(tmp_path: Path) -> None:
    from rematch_pipeline.clock import ManualClock

    bare = Settings(home=tmp_path / "nowhere", database_url=f"sqlite:///{tmp_path}/nowhere/rematch.sqlite",
                    clock=ManualClock(factories.ROUND_DATE))
    client = TestClient(create_app(bare, Gate(who=_who, may=_may)), root_path="/rematch")
    for url in ("/", "/quarantine"):
        answer = client.get(url, headers=AUDITOR)
        assert answer.status_code == 503 and "rematch db upgrade" in answer.text
        assert str(tmp_path) not in answer.text


def test_no_page_blocks_airflows_event_loop(settings: Settings) -> None:
    import inspect

    from fastapi.routing import APIRoute

    app = create_app(settings, Gate(who=_who, may=_may))
    pages = [r for r in app.routes if isinstance(r, APIRoute)]
    # Database, files and ZIPs are blocking work: as plain functions FastAPI runs them in its thread pool.
    assert pages and not [r.path for r in pages if inspect.iscoroutinefunction(r.endpoint)]
