"""Round service: solved once per date, stored with its inputs' checksums, exported as the contract says."""

from __future__ import annotations

import csv
import json
from datetime import date

from rematch_pipeline import store
from rematch_pipeline.config import Settings, load_policy
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine, migrate
from rematch_pipeline.domain import UnmatchedReason
from rematch_pipeline.matching.reasons import words
from rematch_pipeline.rounds import export_round, run_round
from tests import exports as x
from tests.factories import store_records

ROUND_DATE = date(2026, 11, 23)


def _seed(settings: Settings) -> None:
    """Three households, one of six persons, and one offer of four places (valid on ROUND_DATE)."""
    migrate(settings.database_url)
    families = {"RM-1": [x.member("head"), x.member("child", "2018")], "RM-2": [x.member("head")],
                "=RM-3": [x.member("head"), x.member("spouse", "1984"), *[x.member("child", "2018")] * 4]}
    store_records(
        settings, [x.household(c, languages="uk", consent_health_share="yes") for c in families], families,
        [x.offer("OF-05111000", ags="05111000", state="NW", places_persons="4", units_1_room="5", units_2_rooms="5",
                 units_3_rooms="5", units_4plus_rooms="5", valid_from="2026-01-01", valid_until="2026-12-31")])


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


def test_a_round_run_before_anything_arrived_is_solved_again_once_there_is_something_to_match(
        settings: Settings) -> None:
    # Rule: a round that had nothing to solve and made no offers does not use up its date; the audit log keeps both
    # solves. A round that placed households stays as it was (the test above).
    migrate(settings.database_url)
    empty = run_round(settings, load_policy(), ROUND_DATE)
    assert empty.status == "solved" and empty.stats["status"] == "empty" and empty.households == 0
    _seed(settings)
    again = run_round(settings, load_policy(), ROUND_DATE)
    assert not again.already_existed and (again.persons_placed, again.households_placed) == (3, 2)
    assert run_round(settings, load_policy(), ROUND_DATE).already_existed  # now it is kept
    with get_engine(settings.database_url).connect() as conn:
        solves = [r.details for r in conn.execute(t.audit_events.select().order_by(t.audit_events.c.id))
                  if r.event == "round_solved"]
    assert len(solves) == 2 and solves[1]["solved_again_after"] == "nothing to solve"


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


def test_a_replay_that_differs_names_a_change_of_the_stored_rows_the_work_limits_or_the_software(
        settings: Settings) -> None:
    from sqlalchemy import update

    from rematch_pipeline.matching.solve import deterministic_work
    from rematch_pipeline.rounds import replay_round

    _seed(settings)
    solved = run_round(settings, load_policy(), ROUND_DATE)
    assert solved.stats["deterministic_work"] == deterministic_work()
    assert replay_round(settings, solved.round_id).note == ""  # identical: nothing to explain
    with get_engine(settings.database_url).begin() as conn:  # as if the software had placed one household elsewhere
        conn.execute(update(t.assignments).where(t.assignments.c.case_id == "RM-1").values(ags="00000000"))
    note = replay_round(settings, solved.round_id).note
    assert "stored assignments were changed after the round was solved" in note  # the first cause to rule out
    assert "or the software changed" in note
    stored = {**solved.stats, "deterministic_work": {**deterministic_work(), "move_sweeps": 1}}
    with get_engine(settings.database_url).begin() as conn:
        conn.execute(update(t.rounds).values(solver_stats=stored))
    assert "not those the round was solved with (move_sweeps)" in replay_round(settings, solved.round_id).note
    older = {k: v for k, v in solved.stats.items() if k != "deterministic_work"}
    with get_engine(settings.database_url).begin() as conn:
        conn.execute(update(t.rounds).values(solver_stats=older))
    assert "stored before rounds recorded their work limits" in replay_round(settings, solved.round_id).note
    assert "stored assignments were changed" in replay_round(settings, solved.round_id).note
