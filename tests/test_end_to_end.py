"""A full small round through the real Airflow DAGs (`airflow dags test`): ingest → round → packets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from rematch_pipeline.config import Settings
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine
from rematch_pipeline.scenario import generate_scenario

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parent.parent
ROUND_DATE = date(2026, 11, 23)


def _airflow(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    airflow = str(Path(sys.executable).with_name("airflow"))
    proc = subprocess.run([airflow, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"airflow {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture
def airflow_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "REMATCH_HOME": str(settings.home),
        "REMATCH_DATABASE_URL": settings.database_url,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
    })
    (tmp_path / "airflow").mkdir()
    _airflow(env, "db", "migrate")
    return env


def test_full_round_runs_through_the_real_dags(settings: Settings, airflow_env: dict[str, str]) -> None:
    generate_scenario(settings.inbox, households=30, municipalities=8, seed=7, round_date=ROUND_DATE)

    _airflow(airflow_env, "dags", "test", "rematch_ingest")
    _airflow(airflow_env, "dags", "test", "rematch_round", "-c", json.dumps({"round_date": ROUND_DATE.isoformat()}))
    _airflow(airflow_env, "dags", "test", "rematch_packets")

    engine = get_engine(settings.database_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.households)).scalar() == 30
        consenting = conn.execute(select(func.count()).select_from(t.households)
                                  .where(t.households.c.consent_matching.is_(True))).scalar()
        rnd = conn.execute(select(t.rounds)).one()
        assert rnd.round_id == "R-2026-11-23" and rnd.status == "offered"
        placed = conn.execute(select(t.assignments.c.ags, t.assignments.c.case_id)).all()
        offered = conn.execute(select(t.match_offers.c.case_id, t.match_offers.c.status)).all()
        unmatched = conn.execute(select(func.count()).select_from(t.unmatched)).scalar()
        packets = conn.execute(select(t.packets.c.ags, t.packets.c.pdf_path)).all()
        n_validations = conn.execute(select(func.count()).select_from(t.validation_runs)).scalar()
    assert placed and len(placed) + unmatched == consenting  # only consenting households enter
    # Every matched household got one pending offer.
    assert sorted(offered) == sorted((a.case_id, "pending") for a in placed)
    # One packet per receiving municipality, and its files exist.
    assert sorted(p.ags for p in packets) == sorted({a.ags for a in placed})
    assert all((settings.home / p.pdf_path).is_file() for p in packets)  # stored relative to the home
    assert (settings.exports / rnd.round_id / "assignments.csv").is_file()
    assert n_validations == 3 and list(settings.data_docs.rglob("*.html"))
    # Each offered household has its letter, every packet and letter went out once, the report is written.
    with engine.connect() as conn:
        letters = conn.execute(select(t.letters.c.case_id, t.letters.c.pdf_path)).all()
        deliveries = conn.execute(select(t.deliveries.c.document, t.deliveries.c.status)).all()
    assert sorted(c for c, _ in letters) == sorted(a.case_id for a in placed)
    assert all((settings.home / p).is_file() for _, p in letters)
    assert sorted(deliveries) == sorted([("packet", "delivered")] * len(packets)
                                        + [("letter", "delivered")] * len(letters))
    assert (settings.exports / rnd.round_id / "round_report.html").is_file()

    # Rerunning every DAG changes nothing: no second ingest, round, assignment or packet.
    _airflow(airflow_env, "dags", "test", "rematch_ingest")
    _airflow(airflow_env, "dags", "test", "rematch_round", "-c", json.dumps({"round_date": ROUND_DATE.isoformat()}))
    _airflow(airflow_env, "dags", "test", "rematch_packets")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.raw_files)).scalar() == 2
        assert conn.execute(select(func.count()).select_from(t.rounds)).scalar() == 1
        assert conn.execute(select(func.count()).select_from(t.assignments)).scalar() == len(placed)
        assert conn.execute(select(func.count()).select_from(t.match_offers)).scalar() == len(placed)
        assert conn.execute(select(func.count()).select_from(t.packets)).scalar() == len(packets)
        assert conn.execute(select(func.count()).select_from(t.letters)).scalar() == len(letters)
        assert conn.execute(select(func.count()).select_from(t.deliveries)).scalar() == len(deliveries)


def test_a_poisonous_file_fails_only_its_own_ingest_task_and_the_others_are_published(
        settings: Settings, airflow_env: dict[str, str], tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from tests import exports as x

    generate_scenario(settings.inbox, households=12, municipalities=4, seed=3, round_date=ROUND_DATE)
    canary = "Kanarienvogel Privat"
    (settings.inbox / "zz_poison.csv").write_bytes(x.capacity_csv([
        x.offer("OF-P", ags="01001000", municipality_name="Flensburg", state="SH", contact_name=canary)]))
    # Every file the contract allows is now stored or quarantined by rule; the database refusing this one is
    # injected into the task processes (tests/faults/sitecustomize.py).
    env = {**airflow_env, "REMATCH_TEST_FAIL_FILE": "zz_poison.csv", "REMATCH_TEST_FAIL_QUOTE": canary,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "tests" / "faults"), os.environ.get("PYTHONPATH")]))}
    airflow = str(Path(sys.executable).with_name("airflow"))
    run = subprocess.run([airflow, "dags", "test", "rematch_ingest"], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=600)

    meta = create_engine(airflow_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    with meta.connect() as conn:
        states = conn.exec_driver_sql("SELECT task_id, map_index, state, try_number FROM task_instance").all()
        published = set(conn.exec_driver_sql(
            "SELECT a.uri FROM asset_event e JOIN asset a ON a.id = e.asset_id").scalars())
    meta.dispose()
    ingests = sorted((s.state, s.try_number) for s in states if s.task_id == "ingest")
    assert ingests == [("failed", 1), ("success", 1), ("success", 1)]  # the failure in its own task, not retried
    assert {s.task_id: s.state for s in states if s.task_id.startswith("publish_")} == {
        "publish_households": "success", "publish_capacities": "success", "publish_decisions": "skipped"}
    assert {uri.rstrip("/") for uri in published} == {"rematch://households", "rematch://capacities"}
    with get_engine(settings.database_url).connect() as conn:
        outcomes = dict(conn.execute(select(t.raw_files.c.original_name, t.raw_files.c.status)).all())
    assert outcomes == {"households_kobo.xlsx": "ingested", "capacity.xlsx": "ingested", "zz_poison.csv": "failed"}
    logs = "".join(p.read_text(errors="replace") for p in (Path(airflow_env["AIRFLOW_HOME"]) / "logs").rglob("*")
                   if p.is_file())
    assert "could not be processed" in logs + run.stdout + run.stderr
    assert canary not in logs + run.stdout + run.stderr  # no row of the file in any log
