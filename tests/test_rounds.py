"""Round service: solved once per date, stored with its inputs' checksums, exported as the contract says."""

from __future__ import annotations

import csv
import json
from datetime import date

from sqlalchemy import insert

from rematch_pipeline import store
from rematch_pipeline.config import Settings, load_policy
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine, migrate
from rematch_pipeline.domain import UnmatchedReason
from rematch_pipeline.matching.reasons import words
from rematch_pipeline.rounds import export_round, run_round
from tests.factories import adult, child, household, offer

ROUND_DATE = date(2026, 11, 23)


def _seed(settings: Settings) -> None:
    migrate(settings.database_url)
    with get_engine(settings.database_url).begin() as conn:
        raw = conn.execute(insert(t.raw_files).values(
            sha256="0" * 64, original_name="seed", archived_path="x", size_bytes=0, status="ingested",
            received_at=settings.clock.now())).inserted_primary_key[0]
        for h in (household("RM-1", (adult(), child())), household("RM-2", (adult(),)),
                  household("=RM-3", (adult(), adult("spouse"), child(), child(), child(), child()))):
            row = {"case_id": h.case_id, "interview_date": "2026-11-01", "consent_matching": "yes",
                   "consent_health_share": "yes", "languages": "uk", "german_level": "a1", "wheelchair_access": "no",
                   "medical_needs": "none", "pets": "none", "pref_settlement": "any", "_submission_time": "x",
                   **{f"weight_{a}": "1" for a in ("work", "education", "community", "healthcare", "housing",
                                                   "culture")}}
            members = [store.member_row({"case_id": h.case_id, "member_no": i + 1, "relation": m.relation,
                                         "sex": m.sex, "birth_year": m.birth_year, "mobility_impaired": "no",
                                         "occupation": m.occupation, "qualification": m.qualification})
                       for i, m in enumerate(h.members)]
            store.upsert_household(conn, store.household_row(row, raw, settings.pseudonym_salt), members,
                                   settings.clock.now())
        o = offer("05111000", places=4)
        store.upsert_offer(conn, store.offer_row({**{k: str(v) for k, v in o.__dict__.items()},
                                                  "medical_services": "", "job_sectors_shortage": ""}, raw),
                          settings.clock.now())


def test_round_is_solved_once_per_date_and_rerun_changes_nothing(settings: Settings) -> None:
    _seed(settings)
    first = run_round(settings, load_policy(), ROUND_DATE)
    again = run_round(settings, load_policy(), ROUND_DATE)
    assert first.status == "solved" and again.already_existed
    assert (again.persons_placed, again.households_placed) == (first.persons_placed, first.households_placed) == (3, 2)
    with get_engine(settings.database_url).connect() as conn:
        assert conn.execute(t.assignments.select()).all().__len__() == 2
        (left,) = store.load_unmatched(conn, first.round_id)
    # The reason is stored as codes beside its words, on SQLite and PostgreSQL alike.
    assert left.why == UnmatchedReason("no_eligible", 1, (("too_small", 1),)) and left.reason == words(left.why)


def test_export_has_one_row_per_pool_household_and_neutralises_formulas(settings: Settings, tmp_path) -> None:
    _seed(settings)
    summary = run_round(settings, load_policy(), ROUND_DATE)
    csv_path, json_path = export_round(settings, summary.round_id, tmp_path / "out")
    with open(csv_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["case_id"] for r in rows} == {"RM-1", "RM-2", "'=RM-3"}
    unmatched = [r for r in rows if not r["ags"]]
    assert len(unmatched) == 1 and unmatched[0]["unmatched_reason"]
    doc = json.loads(json_path.read_text())
    assert doc["status"] == "solved" and doc["input_checksums"]["households"]
    assert "pseudonym_salt" not in doc["policy"]  # a secret of the deployment, not of the round
    assert set(doc["comparison_with_baselines"]) == {"rematch", "state_quota", "greedy_by_score"}


def test_a_round_cut_by_its_time_limit_says_a_replay_may_differ(settings: Settings) -> None:
    from sqlalchemy import update

    from rematch_pipeline.rounds import TIME_LIMIT_WARNING, replay_round, summarize

    _seed(settings)
    solved = run_round(settings, load_policy(), ROUND_DATE)
    assert solved.stats["status"] in ("optimal", "work_limit")  # stopped by work: no warning, replays the same
    assert TIME_LIMIT_WARNING not in summarize(settings, solved.round_id).warnings
    replay = replay_round(settings, solved.round_id)
    assert replay.identical and replay.note == ""
    with get_engine(settings.database_url).begin() as conn:
        conn.execute(update(t.rounds).values(solver_stats={**solved.stats, "status": "time_limit"}))
    assert summarize(settings, solved.round_id).warnings[0] == TIME_LIMIT_WARNING
    assert replay_round(settings, solved.round_id).note == TIME_LIMIT_WARNING
