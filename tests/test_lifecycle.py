"""Rounds as a lifecycle: offers, answers, expiry, re-matching, crashes and reruns, concurrency, audit, retention."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from rematch_pipeline import store
from rematch_pipeline.cli import main
from rematch_pipeline.config import Settings, load_policy
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine
from rematch_pipeline.ingest.service import ingest_file
from rematch_pipeline.offers import DecisionError
from rematch_pipeline.repository import RoundBusy
from rematch_pipeline.rounds import (
    FutureDateError,
    decide,
    offer_round,
    replay_round,
    run_round,
    settle_offers,
    summarize,
)
from tests import exports as x
from tests.factories import clock_of

R1, R2, R3 = date(2026, 11, 23), date(2026, 12, 7), date(2026, 12, 21)
CASES = [f"H{i}" for i in range(1, 7)]
SECRET_PHONE, SECRET_MAIL, SECRET_NOTE = "+48 611 222 333", "olena@example.org", "Sister lives in Lviv; trauma."
OLD_OFFERS = [
    x.offer("OF-1", ags="09162000", municipality_name="München", state="BY"),
    x.offer("OF-2", ags="05315000", municipality_name="Köln", state="NW"),
]


def _units(o: dict[str, Any], units: str) -> dict[str, Any]:
    # Only housing binds (every household here is one person needing one room); places stay at the minimum of 8.
    return {**o, "places_persons": "8", "units_1_room": units, "units_2_rooms": "0", "units_3_rooms": "0",
            "units_4plus_rooms": "0", "language_course_seats": "20"}


def _ingest(settings: Settings, tmp: Path, name: str, data: bytes, today: date) -> Any:
    path = tmp / name
    path.write_bytes(data)
    clock_of(settings).set(today)
    report = ingest_file(path, settings)
    assert report.status == "ingested", report.message
    return report


def _seed(settings: Settings, tmp: Path) -> None:
    households = [x.household(c, contact_phone=SECRET_PHONE, contact_email=SECRET_MAIL, notes=SECRET_NOTE,
                              medical_needs="dialysis" if c == "H6" else "none") for c in CASES]
    members = {f"uuid-{c}": x.family("head") for c in CASES}
    _ingest(settings, tmp, "households.xlsx", x.kobo_xlsx(households, members), R1)
    _ingest(settings, tmp, "capacity.csv", x.capacity_csv([_units(o, "2") for o in OLD_OFFERS]), R1)


def _offers(settings: Settings, round_id: str) -> dict[str, Any]:
    with get_engine(settings.database_url).connect() as conn:
        return {r.case_id: r for r in conn.execute(select(t.match_offers).where(t.match_offers.c.round_id == round_id))}


def _pool(settings: Settings, round_id: str) -> set[str]:
    with get_engine(settings.database_url).connect() as conn:
        a = set(conn.execute(select(t.assignments.c.case_id).where(t.assignments.c.round_id == round_id)).scalars())
        u = set(conn.execute(select(t.unmatched.c.case_id).where(t.unmatched.c.round_id == round_id)).scalars())
    return a | u


def _count(settings: Settings, table: Any) -> int:
    with get_engine(settings.database_url).connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)


@pytest.mark.full
def test_three_rounds_respect_declines_consumed_capacity_expiry_and_new_capacity(settings: Settings,
                                                                                 tmp_path: Path) -> None:
    policy = load_policy()
    _seed(settings, tmp_path)

    # Round 1: four single rooms for six single persons.
    r1 = run_round(settings, policy, R1)
    assert r1.status == "solved" and r1.persons_placed == 4
    assert offer_round(settings, r1.round_id) == 4
    o1 = _offers(settings, r1.round_id)
    assert {o.respond_by for o in o1.values()} == {date(2026, 11, 30)}  # offer_response_days = 7
    acc_file, dec_file, acc_cli, silent = sorted(o1)
    _ingest(settings, tmp_path, "decisions.csv", x.decisions_csv([
        x.decision(acc_file, r1.round_id, decided_at="2026-11-25T10:00"),
        x.decision(dec_file, r1.round_id, decision="decline", decided_at="2026-11-25T11:00", reason="too far")]),
        date(2026, 11, 25))
    decide(settings, acc_cli, r1.round_id, "accept", decided_at=datetime(2026, 11, 26, 9, tzinfo=UTC))
    # A second answer, an unknown case and a late answer are refused, quarantined, and change nothing.
    for case, when, rule in ((acc_cli, datetime(2026, 11, 27, tzinfo=UTC), "decision_already_recorded"),
                             ("H-UNKNOWN", datetime(2026, 11, 27, tzinfo=UTC), "decision_without_offer"),
                             (silent, datetime(2026, 12, 1, tzinfo=UTC), "decision_after_deadline")):
        with pytest.raises(DecisionError) as err:
            decide(settings, case, r1.round_id, "decline", decided_at=when)
        assert err.value.rule == rule
    with get_engine(settings.database_url).connect() as conn:
        rules = conn.execute(select(t.quarantine.c.rule).where(t.quarantine.c.table_name == "decisions")).scalars()
        assert sorted(rules) == ["decision_after_deadline", "decision_already_recorded", "decision_without_offer"]
    assert summarize(settings, r1.round_id).offers == {
        "offered": 4, "accepted": 2, "declined": 1, "expired": 0, "withdrawn": 0, "pending": 1,
        "persons_accepted": 2}

    # Round 2: the silent offer expired (its household is back), the decline is never offered that city again,
    # and the two accepted places stay taken: two places are left for four households.
    clock_of(settings).set(R2)
    r2 = run_round(settings, policy, R2)
    s1 = summarize(settings, r1.round_id)
    assert s1.status == "closed" and s1.offers["expired"] == 1 and s1.offers["pending"] == 0
    assert _pool(settings, r2.round_id) == set(CASES) - {acc_file, acc_cli}
    assert r2.persons_placed == 2
    offer_round(settings, r2.round_id)
    o2 = _offers(settings, r2.round_id)
    assert dec_file not in o2 or o2[dec_file].ags != o1[dec_file].ags
    for offer_id, rooms in (("OF-1", 2), ("OF-2", 2)):
        taken = sum(1 for o in o1.values() if o.offer_id == offer_id and o.status == "accepted")
        taken += sum(1 for o in o2.values() if o.offer_id == offer_id)
        assert taken <= rooms

    # Round 3: a new municipality offers five rooms; everyone still waiting is placed.
    _ingest(settings, tmp_path, "capacity_new.csv", x.capacity_csv([_units(x.offer(
        "OF-3", ags="14713000", municipality_name="Leipzig", state="SN"), "5")]), R3)
    r3 = run_round(settings, policy, R3)
    assert summarize(settings, r2.round_id).status == "closed"  # its offers expired unanswered
    assert _pool(settings, r3.round_id) == set(CASES) - {acc_file, acc_cli}
    assert r3.persons_placed == 4
    offer_round(settings, r3.round_id)
    o3 = _offers(settings, r3.round_id)
    assert dec_file not in o3 or o3[dec_file].ags != o1[dec_file].ags
    assert any(o.offer_id == "OF-3" for o in o3.values())

    # Rerunning any step changes nothing.
    before = (_count(settings, t.match_offers), _count(settings, t.assignments), _count(settings, t.audit_events))
    assert run_round(settings, policy, R1).already_existed and run_round(settings, policy, R3).already_existed
    assert offer_round(settings, r3.round_id) == 0 and settle_offers(settings, R3) == 0
    assert (_count(settings, t.match_offers), _count(settings, t.assignments),
            _count(settings, t.audit_events)) == before


def test_round_replays_identically_from_its_snapshot(settings: Settings, tmp_path: Path) -> None:
    _seed(settings, tmp_path)
    r1 = run_round(settings, load_policy(), R1)
    report = replay_round(settings, r1.round_id)
    assert report.identical and report.replayed_assignments == 4 and not report.differences
    # The snapshot says what the solver saw, and carries no contact data or free text.
    with get_engine(settings.database_url).connect() as conn:
        blob = conn.execute(select(t.round_inputs.c.snapshot)).scalar_one()
    from rematch_pipeline.snapshot import unpack

    text = json.dumps(unpack(blob))
    assert SECRET_PHONE not in text and SECRET_MAIL not in text and SECRET_NOTE not in text


def _crash_on(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, when: Any = None) -> None:
    real = getattr(module, name)

    def boom(*args: Any, **kwargs: Any) -> Any:
        if when is None or when(*args, **kwargs):
            real(*args, **kwargs)  # the write happens, then the process "dies" before the commit
            raise SystemExit("killed")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, boom)


@pytest.mark.parametrize("boundary", ["solve_after_assignments", "solve_at_audit", "offers_after_first_event",
                                      "decision_at_audit"])
@pytest.mark.full
def test_killed_task_reruns_to_the_same_round_without_duplicates(settings: Settings, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 boundary: str) -> None:
    _seed(settings, tmp_path)
    policy = load_policy()
    with monkeypatch.context() as m:
        if boundary == "solve_after_assignments":
            _crash_on(m, store, "save_assignments")
        elif boundary == "solve_at_audit":
            _crash_on(m, store, "audit", when=lambda conn, actor, event, *a, **k: event == "round_solved")
        elif boundary == "offers_after_first_event":
            run_round(settings, policy, R1)
            _crash_on(m, store, "audit", when=lambda conn, actor, event, *a, **k: event == "offer_made")
        else:
            run_round(settings, policy, R1)
            offer_round(settings, "R-2026-11-23")
            _crash_on(m, store, "audit", when=lambda conn, actor, event, *a, **k: event == "decision_recorded")
        with pytest.raises(SystemExit):
            r = run_round(settings, policy, R1)
            offer_round(settings, r.round_id)
            decide(settings, sorted(_offers(settings, r.round_id))[0], r.round_id, "accept",
                   decided_at=datetime(2026, 11, 24, tzinfo=UTC))
    # Nothing of the killed transaction is left: rerun everything from the start.
    r = run_round(settings, policy, R1)
    offer_round(settings, r.round_id)
    first = sorted(_offers(settings, r.round_id))[0]
    decide(settings, first, r.round_id, "accept", decided_at=datetime(2026, 11, 24, tzinfo=UTC))
    assert r.status in ("solved", "offered") and r.persons_placed == 4
    assert _count(settings, t.assignments) == 4 and _count(settings, t.match_offers) == 4
    assert _count(settings, t.decisions) == 1 and _count(settings, t.round_inputs) == 1
    with get_engine(settings.database_url).connect() as conn:
        solved = conn.execute(select(func.count()).select_from(t.audit_events)
                              .where(t.audit_events.c.event == "round_solved")).scalar()
        made = conn.execute(select(func.count()).select_from(t.audit_events)
                            .where(t.audit_events.c.event == "offer_made")).scalar()
    assert (solved, made) == (1, 4)


def test_concurrent_attempts_at_one_round_one_proceeds_the_other_stops(settings: Settings, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    if not settings.database_url.startswith("postgresql"):
        pytest.skip("the advisory lock is PostgreSQL's; SQLite has a single writer and serialises the attempts")
    _seed(settings, tmp_path)
    from rematch_pipeline import rounds

    started, release = threading.Event(), threading.Event()
    real_match = rounds.match

    def slow_match(*args: Any, **kwargs: Any) -> Any:
        started.set()
        release.wait(30)
        return real_match(*args, **kwargs)

    monkeypatch.setattr(rounds, "match", slow_match)
    results: dict[str, Any] = {}

    def first() -> None:
        results["first"] = run_round(settings, load_policy(), R1)

    thread = threading.Thread(target=first)
    thread.start()
    assert started.wait(30)
    with pytest.raises(RoundBusy, match="another run"):
        run_round(settings, load_policy(), R1)
    release.set()
    thread.join(60)
    assert results["first"].status == "solved"
    assert _count(settings, t.assignments) == 4 and _count(settings, t.rounds) == 1


@pytest.mark.full
def test_audit_export_lets_an_auditor_reconstruct_the_round_without_the_software(settings: Settings,
                                                                                 tmp_path: Path) -> None:
    import csv

    from rematch_pipeline.audit import export_audit

    _seed(settings, tmp_path)
    r1 = run_round(settings, load_policy(), R1)
    offer_round(settings, r1.round_id)
    case = sorted(_offers(settings, r1.round_id))[0]
    decide(settings, case, r1.round_id, "decline", reason=SECRET_NOTE, decided_at=datetime(2026, 11, 24, tzinfo=UTC))
    out = export_audit(settings, r1.round_id, tmp_path / "audit")
    events = json.loads((out / "events.json").read_text())
    kinds = [e["event"] for e in events]
    assert kinds.count("file_ingested") == 2 and kinds.count("offer_made") == 4
    assert kinds.index("round_planned") < kinds.index("round_solved") < kinds.index("offer_made") \
        < kinds.index("decision_recorded")
    with open(out / "decisions.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows == [{**rows[0], "case_id": case, "decision": "decline", "source": "cli", "reason_given": "yes"}]
    doc = json.loads((out / "round_lifecycle.json").read_text())
    assert doc["state"] == "offered" and len(doc["input_checksums"]["snapshot"]) == 64
    # The files named as in the data contract's round export have the contract's layout, here too.
    with open(out / "assignments.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        contract_rows = list(reader)
    assert reader.fieldnames == ["round_id", "case_id", "ags", "persons", "score", "preference_rank",
                                 "unmatched_reason"]
    assert len(contract_rows) == r1.households and {r["round_id"] for r in contract_rows} == {r1.round_id}
    assert json.loads((out / "round.json").read_text())["status"] == "offered"
    everything = "".join(p.read_text(encoding="utf-8") for p in out.iterdir())
    assert SECRET_NOTE not in everything and SECRET_PHONE not in everything and SECRET_MAIL not in everything
    # Paths relative to REMATCH_HOME, never the producing machine's; every moment with its UTC offset.
    assert str(settings.home.resolve()) not in everything and str(tmp_path) not in everything
    with open(out / "validation_runs.csv", newline="", encoding="utf-8") as fh:
        runs = list(csv.DictReader(fh))
    assert runs and all(r["report_path"].startswith("data_docs/") for r in runs), runs[:1]
    for name, column in (("events.csv", "at"), ("input_files.csv", "received_at"), ("validation_runs.csv",
                         "created_at"), ("offers.csv", "offered_at"), ("decisions.csv", "recorded_at")):
        with open(out / name, newline="", encoding="utf-8") as fh:
            moments = [r[column] for r in csv.DictReader(fh) if r[column]]
        assert moments and all(datetime.fromisoformat(m).utcoffset() is not None for m in moments), (name, moments)


def test_purge_removes_contact_free_text_and_health_of_closed_cases_only(settings: Settings,
                                                                          tmp_path: Path) -> None:
    from rematch_pipeline.retention import erase, purge

    _seed(settings, tmp_path)
    r1 = run_round(settings, load_policy(), R1)
    offer_round(settings, r1.round_id)
    accepted = sorted(_offers(settings, r1.round_id))[0]
    decide(settings, accepted, r1.round_id, "accept", reason=SECRET_NOTE, decided_at=datetime(2026, 11, 24, tzinfo=UTC))
    from rematch_pipeline.packets.letters import render_round_letters

    letters = {r["case_id"]: r for r in render_round_letters(settings, load_policy(), r1.round_id)}
    with pytest.raises(FutureDateError, match="after today"):  # a mistyped year would purge today's cases
        purge(settings, date(2099, 1, 1))
    report = purge(settings, date(2099, 1, 1), allow_future=True)
    assert report.households == 1
    # The accepted household's offer letter (its own needs) is gone; the others' letters stay.
    assert report.letter_files == 2 and not Path(letters[accepted]["pdf_path"]).exists()
    assert all(Path(r["pdf_path"]).is_file() for c, r in letters.items() if c != accepted)
    # Re-rendering writes no letter for the purged household, and puts back a lost file of an unchanged letter.
    lost = next(c for c in letters if c != accepted)
    Path(letters[lost]["html_path"]).unlink()
    again = {r["case_id"]: r for r in render_round_letters(settings, load_policy(), r1.round_id)}
    assert set(again) == set(letters) - {accepted} and not any(r["new"] for r in again.values())
    assert Path(letters[lost]["html_path"]).is_file() and not Path(letters[accepted]["pdf_path"]).exists()
    with get_engine(settings.database_url).connect() as conn:
        rows = {r.case_id: r for r in conn.execute(select(t.households))}
        reason = conn.execute(select(t.decisions.c.reason)).scalar()
    gone = rows[accepted]
    assert (gone.contact_phone, gone.contact_email, gone.notes, gone.interview_location, reason) == (None,) * 5
    assert gone.purged_at is not None and gone.status == "accepted"
    kept = rows["H2" if accepted != "H2" else "H3"]
    assert kept.contact_email == SECRET_MAIL and kept.purged_at is None  # an open case keeps its data
    # The pseudonymous aggregate stays: the assignment, and the audit trail of the decision.
    assert _count(settings, t.assignments) == 4
    # Erasure on request: H6 (with a health need) leaves the pool and loses contact and health details.
    erase(settings, "H6")
    with get_engine(settings.database_url).connect() as conn:
        h6 = conn.execute(select(t.households).where(t.households.c.case_id == "H6")).one()
    assert (h6.status, h6.medical_needs, h6.contact_phone) == ("withdrawn", "", None)
    with pytest.raises(LookupError, match="erased or purged"):
        replay_round(settings, r1.round_id)


@pytest.mark.full
def test_erasure_deletes_every_packet_version_that_listed_the_household_and_a_rerender_restores_it(
        settings: Settings, tmp_path: Path) -> None:
    import hashlib

    from rematch_pipeline.packets.delivery import deliver_round
    from rematch_pipeline.packets.service import render_round_packets
    from rematch_pipeline.retention import erase

    _seed(settings, tmp_path)
    policy = load_policy()
    r1 = run_round(settings, policy, R1)
    offer_round(settings, r1.round_id)
    made = _offers(settings, r1.round_id)
    first = {r["ags"]: r for r in render_round_packets(settings, policy, r1.round_id)}
    gone = sorted(made)[0]
    ags = made[gone].ags
    other = next(a for a in first if a != ags)
    decide(settings, gone, r1.round_id, "decline", decided_at=datetime(2026, 11, 24, tzinfo=UTC))
    second = {r["ags"]: r for r in render_round_packets(settings, policy, r1.round_id)}
    assert second[ags]["version"] == 2 and second[other]["version"] == 1
    deliver_round(settings, r1.round_id, kinds=("packet",))
    shelved = list(settings.outbox.rglob(f"*{ags}*_v1.*"))
    assert len(shelved) == 2  # version 1 (which listed the household) kept under its versioned name
    stale = settings.outbox / ".restore-killed"  # what a restore killed half-way leaves
    stale.mkdir()
    (stale / "packet.html").write_text("details", encoding="utf-8")
    report = erase(settings, gone)
    assert not stale.exists()
    # Both versions of its municipality's packet go; the other municipality's packet stays.
    assert report.packet_files == 4
    assert not Path(second[ags]["pdf_path"]).exists() and not any(f.exists() for f in shelved)
    assert Path(second[other]["pdf_path"]).is_file()
    # Delivered before the files went: a rerun of delivery sends nothing again, fails on nothing, says what is gone.
    rerun = {d["recipient"]: d for d in deliver_round(settings, r1.round_id, kinds=("packet",))}
    assert not any(d["delivered"] for d in rerun.values())
    assert rerun[ags].get("files") == "missing" and "files" not in rerun[other]
    # Version 2 no longer listed the household: re-rendering gives the same content, so its files come back as
    # version 2 (not a new version, nor a pointer to missing files); version 1 stays deleted.
    third = {r["ags"]: r for r in render_round_packets(settings, policy, r1.round_id)}
    assert (third[ags]["version"], third[ags]["new"]) == (2, False)
    html = Path(third[ags]["html_path"])
    with get_engine(settings.database_url).connect() as conn:
        digest = conn.execute(select(t.packets.c.sha256).where(t.packets.c.round_id == r1.round_id,
                                                               t.packets.c.ags == ags, t.packets.c.version == 2)
                              ).scalar()
        restored = conn.execute(select(func.count()).select_from(t.audit_events)
                                .where(t.audit_events.c.event == "packet_restored")).scalar()
    assert hashlib.sha256(html.read_bytes()).hexdigest() == digest and Path(third[ags]["pdf_path"]).is_file()
    assert restored == 1 and not any(f.exists() for f in shelved)


@pytest.mark.full
def test_logs_of_a_full_round_carry_no_contact_data_or_health_details(settings: Settings, tmp_path: Path,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _seed(settings, tmp_path)
    r1 = run_round(settings, load_policy(), R1)
    offer_round(settings, r1.round_id)
    for case in sorted(_offers(settings, r1.round_id)):
        decide(settings, case, r1.round_id, "accept", decided_at=datetime(2026, 11, 24, tzinfo=UTC))
    clock_of(settings).set(R2)
    run_round(settings, load_policy(), R2)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "round R-2026-11-23" in logged  # the capture works
    for secret in (SECRET_PHONE, SECRET_MAIL, SECRET_NOTE, "dialysis", "Warszawa"):
        assert secret not in logged


@pytest.mark.full
def test_a_date_after_today_expires_nothing_unless_allowed(settings: Settings, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    # Expired offers cannot come back, so a mistyped future date must not expire offers still running: refused by
    # the services themselves (CLI, DAG and any other caller alike), judged on the application's clock.
    from airflow.sdk.exceptions import AirflowFailException

    from rematch_pipeline import orchestration

    _seed(settings, tmp_path)
    r1 = run_round(settings, load_policy(), R1)
    offer_round(settings, r1.round_id)
    future = max(o.respond_by for o in _offers(settings, r1.round_id).values()) + timedelta(days=1)
    clock_of(settings).set(future - timedelta(days=1))  # the deadline day: nothing is overdue yet
    with pytest.raises(FutureDateError, match="after today"):
        settle_offers(settings, future)
    with pytest.raises(FutureDateError, match="after today"):
        run_round(settings, load_policy(), future)
    # In Airflow the task fails at once: a retry would meet the same date.
    with pytest.raises(AirflowFailException, match="after today"):
        orchestration.round_day(future.isoformat(), None, settings)
    with pytest.raises(AirflowFailException, match="after today"):
        orchestration.settle_offers(future.isoformat(), settings)
    for argv in (["round", "settle", "--today", future.isoformat()], ["round", "run", "--date", future.isoformat()]):
        assert main(argv, settings=settings) == 2
        assert "after today" in capsys.readouterr().err
    assert {o.status for o in _offers(settings, r1.round_id).values()} == {"pending"}
    assert main(["round", "settle", "--today", future.isoformat(), "--allow-future"], settings=settings) == 0
    assert {o.status for o in _offers(settings, r1.round_id).values()} == {"expired"}
    # A round solved ahead on purpose is read back later without the flag: nothing is settled again.
    ahead = run_round(settings, load_policy(), future, allow_future=True)
    assert run_round(settings, load_policy(), future).already_existed and ahead.round_id.endswith(str(future))


@pytest.mark.full
def test_an_answer_entered_now_counts_up_to_the_deadline_day_of_the_application_clock(settings: Settings,
                                                                                       tmp_path: Path) -> None:
    # `rematch decide` records the answer as given now: "now" is the application's clock, so the outcome is the
    # same on any day the test runs, and the late answer is refused exactly one day after the deadline.
    _seed(settings, tmp_path)
    r1 = run_round(settings, load_policy(), R1)
    offer_round(settings, r1.round_id)
    offers_made = _offers(settings, r1.round_id)
    on_time, late = sorted(offers_made)[:2]
    deadline = offers_made[on_time].respond_by
    last_minute = datetime.combine(deadline, datetime.max.time(), tzinfo=UTC).replace(microsecond=0)
    clock_of(settings).set(last_minute)
    decide(settings, on_time, r1.round_id, "accept")
    clock_of(settings).set(deadline + timedelta(days=1))
    with pytest.raises(DecisionError) as err:
        decide(settings, late, r1.round_id, "accept")
    assert err.value.rule == "decision_after_deadline"
    with get_engine(settings.database_url).connect() as conn:
        recorded = conn.execute(select(t.decisions.c.decided_at).where(t.decisions.c.case_id == on_time)).scalar()
        (at,) = conn.execute(select(t.audit_events.c.at).where(t.audit_events.c.event == "decision_recorded")).one()
    assert recorded == last_minute.isoformat()  # the answer is dated, and audited, on the application's clock
    assert last_minute <= (at if at.tzinfo else at.replace(tzinfo=UTC)) < last_minute + timedelta(seconds=1)
    assert _offers(settings, r1.round_id)[late].status == "pending"


@pytest.mark.full
def test_a_capacity_cut_below_what_offers_hold_is_stored_with_a_warning_and_breaks_nothing(
        settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rematch_pipeline.packets.service import render_round_packets

    policy = load_policy()
    _seed(settings, tmp_path)  # two single rooms each at OF-1 and OF-2
    r1 = run_round(settings, policy, R1)
    offer_round(settings, r1.round_id)
    held_at_1 = sum(1 for o in _offers(settings, r1.round_id).values() if o.offer_id == "OF-1")
    assert held_at_1 == 2
    # München resubmits with one room where two pending offers already hold one each.
    cut = {**_units(OLD_OFFERS[0], "1"), "units_pets_allowed": "1"}
    report = _ingest(settings, tmp_path, "cut.csv", x.capacity_csv([cut]), R1)
    assert report.replaced == 1
    (warning,) = [n for n in report.notes if n.startswith("warning:")]
    assert "OF-1" in warning and "units with 1+ rooms 1 more than offered" in warning and warning in report.message
    status = summarize(settings, r1.round_id)
    assert status.warnings and "OF-1" in status.warnings[0]
    assert main(["round", "status", r1.round_id], settings=settings) == 0
    out = capsys.readouterr().out
    assert "Warning: offer OF-1" in out
    # Each number says what it counts: households or persons.
    assert "Offers: 4 households offered a place; of them 0 accepted (0 persons)" in out
    assert "Placed by the round: 4 households (4 persons); not placed: 2 households (2 persons)." in out
    assert "2 persons placed of 8 places (25\u00a0%), 0 persons accepted" in out
    assert render_round_packets(settings, policy, r1.round_id)  # the packets still render
    mid = R1 + timedelta(days=3)  # a round while those offers still run places nobody more there
    clock_of(settings).set(mid)
    _ingest(settings, tmp_path, "more.xlsx", x.kobo_xlsx([x.household("H7")], {"uuid-H7": x.family("head")}), mid)
    r2 = run_round(settings, policy, mid)
    assert r2.status == "solved" and r2.households == 3  # the two waiting since R1, and H7
    offer_round(settings, r2.round_id)
    assert not any(o.offer_id == "OF-1" for o in _offers(settings, r2.round_id).values())


def test_a_round_is_held_only_within_its_own_schema_of_a_shared_database() -> None:
    # Rule: PostgreSQL's advisory locks span the database; a round busy in one deployment's schema (or one test's)
    # must not stop the same round id in another schema, and must still stop a second run in its own.
    import uuid

    from sqlalchemy import create_engine, text

    from rematch_pipeline.repository import SqlRounds
    from tests.conftest import PG_URL, _pg_schema_url

    if not PG_URL:
        pytest.skip("REMATCH_TEST_DATABASE_URL is not set: advisory locks are PostgreSQL's")
    schemas = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    engines = []
    try:
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        engines = [create_engine(_pg_schema_url(s).replace("postgresql://", "postgresql+psycopg://", 1))
                   for s in (schemas[0], schemas[0], schemas[1])]
        held, same, other = (e.connect() for e in engines)
        with held.begin(), same.begin(), other.begin():
            SqlRounds(held).lock("R-2026-11-23")
            SqlRounds(other).lock("R-2026-11-23")  # another schema: not held
            with pytest.raises(RoundBusy, match="another run"):
                SqlRounds(same).lock("R-2026-11-23")
        for c in (held, same, other):
            c.close()
    finally:
        for e in engines:
            e.dispose()
        with admin.begin() as conn:
            for schema in schemas:
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
