"""The offer and round lifecycle rules on in-memory repositories (no database), and the SQL repositories once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from rematch_pipeline import offers
from rematch_pipeline.config import Settings, shipped_policy
from rematch_pipeline.domain import Assignment, Household, MatchingRound, MatchOffer
from rematch_pipeline.repository import SqlUnitOfWork, reading, unit_of_work
from tests.factories import ROUND_DATE, adult, household, solved_round

OFFERED = datetime(2026, 11, 23, 9, tzinfo=UTC)
DEADLINE = ROUND_DATE + timedelta(days=shipped_policy().offer_response_days)


@dataclass
class FakeRounds:
    rows: dict[str, MatchingRound] = field(default_factory=dict)
    placed: dict[str, list[Assignment]] = field(default_factory=dict)

    def get(self, round_id: str) -> MatchingRound | None:
        return replace(self.rows[round_id]) if round_id in self.rows else None

    def save(self, rnd: MatchingRound) -> None:
        self.rows[rnd.round_id] = replace(rnd)

    def assignments(self, round_id: str) -> list[Assignment]:
        return list(self.placed.get(round_id, []))


@dataclass
class FakeOffers:
    rows: dict[tuple[str, str], MatchOffer] = field(default_factory=dict)

    def get(self, round_id: str, case_id: str) -> MatchOffer | None:
        found = self.rows.get((round_id, case_id))
        return None if found is None else replace(found)

    def of_round(self, round_id: str) -> list[MatchOffer]:
        return [replace(o) for (r, _), o in sorted(self.rows.items()) if r == round_id]

    def pending_count(self, round_id: str) -> int:
        return sum(o.status == "pending" for (r, _), o in self.rows.items() if r == round_id)

    def due(self, today: date) -> list[MatchOffer]:
        return [replace(o) for _, o in sorted(self.rows.items()) if o.status == "pending" and o.respond_by < today]

    def add(self, new: Sequence[MatchOffer]) -> None:
        for o in new:
            assert (o.round_id, o.case_id) not in self.rows
            self.rows[o.round_id, o.case_id] = replace(o)

    def save(self, offer: MatchOffer) -> None:
        self.rows[offer.round_id, offer.case_id] = replace(offer)


@dataclass
class FakeDecisions:
    rows: list[dict[str, Any]] = field(default_factory=list)

    def exists(self, case_id: str, round_id: str) -> bool:
        return any(r["case_id"] == case_id and r["round_id"] == round_id for r in self.rows)

    def add(self, values: Mapping[str, Any]) -> None:
        self.rows.append(dict(values))


@dataclass
class FakeHouseholds:
    rows: dict[str, Household] = field(default_factory=dict)
    closed: dict[str, datetime] = field(default_factory=dict)

    def get_many(self, case_ids: Iterable[str]) -> list[Household]:
        return [self.rows[c] for c in case_ids]

    def close_accepted(self, case_id: str, at: datetime) -> None:
        self.closed[case_id] = at


@dataclass
class FakeUnitOfWork:
    rounds: FakeRounds = field(default_factory=FakeRounds)
    offers: FakeOffers = field(default_factory=FakeOffers)
    decisions: FakeDecisions = field(default_factory=FakeDecisions)
    households: FakeHouseholds = field(default_factory=FakeHouseholds)
    events: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)

    def audit(self, actor: str, event: str, subject: str | None, detail: Mapping[str, Any], at: datetime) -> None:
        self.events.append((event, subject, dict(detail)))


def _assignment(case_id: str, ags: str = "09162000", persons: int = 1) -> Assignment:
    return Assignment("R-1", case_id, ags, persons, 1.0, {}, 1, offer_id=f"OF-{ags}")


def _solved(*case_ids: str) -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    uow.rounds.save(MatchingRound("R-1", ROUND_DATE, "solved", policy={}))
    uow.rounds.placed["R-1"] = [_assignment(c) for c in case_ids]
    uow.households.rows = {c: household(c, (adult(),)) for c in case_ids}
    return uow


def _offered(*case_ids: str) -> FakeUnitOfWork:
    uow = _solved(*case_ids)
    offers.make_offers(uow, "R-1", "test", OFFERED)
    return uow


def _status(uow: FakeUnitOfWork, case_id: str) -> str:
    return uow.offers.rows["R-1", case_id].status


def test_a_solved_round_makes_one_pending_offer_per_match_due_after_the_response_days() -> None:
    uow = _solved("A", "B")
    assert offers.make_offers(uow, "R-1", "test", OFFERED) == 2
    made = uow.offers.of_round("R-1")
    assert [(o.case_id, o.status, o.respond_by, o.offered_at) for o in made] == [
        ("A", "pending", DEADLINE, OFFERED), ("B", "pending", DEADLINE, OFFERED)]
    assert made[0].demand["places_persons"] == 1 and made[0].demand["rooms_needed"] == 1
    rnd = uow.rounds.get("R-1")
    assert rnd is not None and (rnd.status, rnd.offered_at) == ("offered", OFFERED)
    assert [e[0] for e in uow.events] == ["offer_made", "offer_made"]


def test_a_round_is_offered_once_and_only_when_solved() -> None:
    uow = _offered("A")
    with pytest.raises(ValueError, match="only a solved round can be offered"):
        offers.make_offers(uow, "R-1", "test", OFFERED)
    with pytest.raises(LookupError, match="round R-9 does not exist"):
        offers.make_offers(uow, "R-9", "test", OFFERED)


def test_a_round_without_matches_closes_as_soon_as_it_is_offered() -> None:
    uow = _solved()
    assert offers.make_offers(uow, "R-1", "test", OFFERED) == 0
    assert uow.rounds.rows["R-1"].status == "closed"


def test_an_accepted_offer_closes_the_case_and_the_last_answer_closes_the_round() -> None:
    uow = _offered("A", "B")
    later = OFFERED + timedelta(days=1)
    assert offers.record_decision(uow, "A", "R-1", "accept", later, "passt", "test", later) == "inserted"
    assert _status(uow, "A") == "accepted" and uow.households.closed == {"A": later}
    assert uow.rounds.rows["R-1"].status == "offered"  # B has not answered
    assert offers.record_decision(uow, "B", "R-1", "decline", later, None, "test", later) == "inserted"
    assert _status(uow, "B") == "declined" and "B" not in uow.households.closed  # back in the pool
    assert uow.rounds.rows["R-1"].status == "closed"
    # The free-text reason stays with the decision, never in the audit trail.
    assert uow.decisions.rows[0]["reason"] == "passt" and all("passt" not in str(e) for e in uow.events)


@pytest.mark.parametrize(("case_id", "when", "outcome"), [
    ("X", OFFERED, "not_offered"),
    ("A", OFFERED - timedelta(seconds=1), "before_offer"),
    ("A", datetime.combine(DEADLINE, datetime.max.time(), tzinfo=UTC), "inserted"),  # the deadline's last second
    ("A", datetime.combine(DEADLINE + timedelta(days=1), datetime.min.time(), tzinfo=UTC), "after_deadline"),
    # 23:30 at UTC-12 on the last day is already the next day in UTC, the day every deadline is kept in.
    ("A", datetime.combine(DEADLINE, datetime.min.time(), tzinfo=timezone(timedelta(hours=-12))).replace(
        hour=23, minute=30), "after_deadline"),
])
def test_an_answer_counts_only_between_the_offer_and_the_end_of_its_deadline_day_in_utc(
        case_id: str, when: datetime, outcome: str) -> None:
    uow = _offered("A")
    assert offers.record_decision(uow, case_id, "R-1", "accept", when, None, "test", OFFERED) == outcome
    assert _status(uow, "A") == ("accepted" if outcome == "inserted" else "pending")
    assert len(uow.decisions.rows) == (outcome == "inserted")


def test_only_the_first_answer_counts() -> None:
    uow = _offered("A")
    assert offers.record_decision(uow, "A", "R-1", "decline", OFFERED, None, "test", OFFERED) == "inserted"
    assert offers.record_decision(uow, "A", "R-1", "accept", OFFERED, None, "test", OFFERED) == "already_recorded"
    assert _status(uow, "A") == "declined"


def test_an_answer_after_expiry_is_refused_and_expiry_closes_the_round() -> None:
    uow = _offered("A", "B")
    assert offers.expire_offers(uow, DEADLINE, "test", OFFERED) == 0  # the deadline day itself still counts
    assert offers.expire_offers(uow, DEADLINE + timedelta(days=1), "test", OFFERED) == 2
    assert {_status(uow, c) for c in "AB"} == {"expired"}
    assert uow.rounds.rows["R-1"].status == "closed"
    assert offers.record_decision(uow, "A", "R-1", "accept", OFFERED, None, "test", OFFERED) == "after_deadline"


def test_an_offer_of_a_household_erased_on_request_is_withdrawn_not_expired() -> None:
    uow = _offered("A", "B")
    offers.withdraw_offer(uow, uow.offers.rows["R-1", "A"], "test", OFFERED)
    assert (_status(uow, "A"), _status(uow, "B")) == ("withdrawn", "pending")
    assert offers.offer_counts(uow.offers.of_round("R-1"))["withdrawn"] == 1
    assert offers.record_decision(uow, "A", "R-1", "accept", OFFERED, None, "test", OFFERED) == "withdrawn"
    assert offers.record_decision(uow, "B", "R-1", "decline", OFFERED, None, "test", OFFERED) == "inserted"
    assert uow.rounds.rows["R-1"].status == "closed"  # nothing is left pending
    # An answered offer is not withdrawn afterwards: the household's answer stands.
    offers.withdraw_offer(uow, uow.offers.rows["R-1", "B"], "test", OFFERED)
    assert _status(uow, "B") == "declined"


def test_a_decision_other_than_accept_or_decline_is_an_error() -> None:
    with pytest.raises(ValueError, match="accept or decline"):
        offers.record_decision(_offered("A"), "A", "R-1", "maybe", OFFERED, None, "test", OFFERED)


def test_the_sql_repositories_keep_what_the_lifecycle_wrote(settings: Settings, tmp_path: Path) -> None:
    """The same steps through the database repositories, on SQLite and PostgreSQL."""
    round_id = solved_round(settings, tmp_path, households=6, municipalities=2, seed=5)
    with unit_of_work(settings) as uow:
        placed = uow.rounds.assignments(round_id)
        assert placed and offers.make_offers(uow, round_id, "test", OFFERED) == len(placed)
    first, *rest = [a.case_id for a in placed]
    with unit_of_work(settings) as uow:
        assert offers.record_decision(uow, first, round_id, "accept", OFFERED, None, "test", OFFERED) == "inserted"
    with unit_of_work(settings) as uow:
        deadline = ROUND_DATE + timedelta(days=shipped_policy().offer_response_days)
        offer = uow.offers.get(round_id, first)
        assert offer is not None and (offer.status, offer.respond_by, offer.resolved_at) == (
            "accepted", deadline, OFFERED)
        assert [o.case_id for o in uow.offers.due(deadline + timedelta(days=1))] == sorted(rest)
        assert uow.decisions.exists(first, round_id) and not uow.decisions.exists(first, "R-2000-01-01")
        rnd = uow.rounds.get(round_id)
        assert rnd is not None and (rnd.status, rnd.round_date, rnd.offered_at) == ("offered", ROUND_DATE, OFFERED)
        assert offers.expire_offers(uow, deadline + timedelta(days=1), "test", OFFERED) == len(rest)
    with unit_of_work(settings) as uow:
        rnd = uow.rounds.get(round_id)
        assert rnd is not None and rnd.status == "closed"
        assert {o.status for o in uow.offers.of_round(round_id)} == {"accepted"} | ({"expired"} if rest else set())
        assert [h.case_id for h in uow.households.get_many([first])] == [first]
        # The reads the services make of the same database.
        assert uow.rounds.ids(("closed",)) == [round_id] and uow.rounds.ids(("offered",)) == []
        assert uow.rounds.ids(newest_first=True) == [round_id]
        assert uow.rounds.snapshot(round_id) and uow.rounds.snapshot("R-2000-01-01") is None
        assert uow.offers.pending_of(first) == []
        assert uow.households.kept([first, "no-such-case"]) == {first}
        assert len(uow.raw_files.digests()) == 2 and {o.offer_id for o in uow.capacity_offers.all()}



def test_the_sql_repositories_keep_what_the_ingest_writes(settings: Settings) -> None:
    """A file's row (new, then updated by its retry), its validation and its quarantine rows, read back as written."""
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    raw = dict(sha256="ab" * 32, original_name="export.xlsx", archived_path="raw/ab.xlsx", size_bytes=10,
               received_at=at)
    with unit_of_work(settings) as uow:
        raw_id = uow.raw_files.record({**raw, "kind": None, "status": "failed"}, retry_of=None)
        uow.raw_files.add_validation(raw_id, "households", success=False, evaluated_rows=3, invalid_rows=1,
                                     report_path=str(settings.home / "data_docs" / "h.html"),
                                     statistics={"evaluated_expectations": 4}, at=at)
        uow.raw_files.add_validation(raw_id, "members", success=True, evaluated_rows=5, invalid_rows=0,
                                     report_path=None, statistics=None, at=at)
        uow.quarantine.add_many([
            dict(raw_file_id=raw_id, table_name="households", sheet="Interviews", source_row=3, field="ags",
                 rule="ags_eight_digits", message="m", record={"case_id": "A"}, at=at),
            dict(raw_file_id=raw_id, table_name="file", field=None, rule="sheet_not_read", message="n",
                 record=None, at=at)])
    with unit_of_work(settings) as uow:
        assert uow.raw_files.record({**raw, "kind": "households", "format": "xlsx", "status": "ingested"},
                                    retry_of=raw_id) == raw_id
    with reading(settings) as uow:
        stored = uow.raw_files.by_digest("ab" * 32)
        assert stored is not None and (stored.id, stored.status, stored.kind, stored.format) == (
            raw_id, "ingested", "households", "xlsx")
        assert uow.raw_files.by_digest("cd" * 32) is None
        assert uow.raw_files.reports(raw_id) == {"households": str(settings.home / "data_docs" / "h.html")}
        rows = {r["rule"]: r for r in uow.quarantine.listing(include_resolved=False)}
        assert (rows["ags_eight_digits"]["sheet"], rows["ags_eight_digits"]["source_row"]) == ("Interviews", 3)
        assert rows["sheet_not_read"]["source_row"] is None
        assert [r.record for r in uow.quarantine.of_file(raw_id)] == [{"case_id": "A"}, None]


def test_paths_under_the_home_are_stored_relative_to_it_and_read_under_the_home_of_the_reader(
        settings: Settings, tmp_path: Path) -> None:
    """A copy of REMATCH_HOME on another machine finds every file the database names (issue 20, exports)."""
    round_id = solved_round(settings, tmp_path, households=6, municipalities=2, seed=5)
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    html, pdf = settings.home / "outbox" / "p.html", settings.home / "outbox" / "p.pdf"
    with unit_of_work(settings) as uow:
        ags = uow.rounds.assignments(round_id)[0].ags
        key = {"round_id": round_id, "ags": ags}
        uow.versions.add("packet", key, uow.versions.look_up("packet", key, "ab" * 32), {},
                         {"html_path": str(html), "pdf_path": str(pdf), "sha256": "ab" * 32, "created_at": at})
        raw_id = uow.raw_files.record(dict(sha256="cd" * 32, original_name="x.csv", archived_path="raw/x.csv",
                                           size_bytes=1, received_at=at, status="ingested"), retry_of=None)
        uow.raw_files.add_validation(raw_id, "capacity_offers", success=True, evaluated_rows=1, invalid_rows=0,
                                     report_path=str(settings.home / "data_docs" / "v.html"), statistics=None, at=at)
    with settings.engine().connect() as conn:
        stored = conn.execute(text("SELECT html_path, pdf_path FROM packets")).one()
        report = conn.execute(text("SELECT report_path FROM validation_runs WHERE raw_file_id = :id"),
                              {"id": raw_id}).scalar()
    assert tuple(stored) == ("outbox/p.html", "outbox/p.pdf") and report == "data_docs/v.html"
    elsewhere = tmp_path / "copied-home"
    with settings.engine().connect() as conn:
        uow = SqlUnitOfWork(conn, elsewhere)
        (packet,) = uow.documents.latest_packets(round_id)
        assert (packet.html_path, packet.pdf_path) == (elsewhere / "outbox/p.html", elsewhere / "outbox/p.pdf")
        assert uow.versions.look_up("packet", key, "ab" * 32).same.pdf_path == str(elsewhere / "outbox/p.pdf")
        assert uow.raw_files.reports(raw_id) == {"capacity_offers": str(elsewhere / "data_docs/v.html")}
