"""What the Airflow tasks call: small functions that take and return ids and paths, never DataFrames."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

# Team rules every DAG follows (checked by tests/test_dag_validity.py).
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "rematch-data-team",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
}
TAGS = ["rematch"]
INPUTS_ASSET = "rematch_validated_inputs"
ROUND_ASSET = "rematch_solved_round"
INGEST_SUFFIXES = (".xlsx", ".csv", ".zip")


def scan_inbox() -> list[str]:
    from rematch_pipeline.config import load_settings

    settings = load_settings()
    settings.ensure_dirs()
    return sorted(str(p) for p in settings.inbox.iterdir() if p.is_file() and p.suffix.lower() in INGEST_SUFFIXES)


def ingest_path(path: str) -> dict[str, Any]:
    from pathlib import Path

    from rematch_pipeline.config import load_policy, load_settings
    from rematch_pipeline.ingest.service import ingest_file

    report = ingest_file(Path(path), load_settings(), load_policy(), actor="airflow")
    return {"file": report.file, "status": report.status, "message": report.message, "reports": report.reports}


def solve_round(round_date: str | None, policy_overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    from rematch_pipeline.config import load_policy, load_settings
    from rematch_pipeline.rounds import run_round

    day = date.fromisoformat(round_date) if round_date else date.today()
    summary = run_round(load_settings(), load_policy(overrides=policy_overrides or None), day, actor="airflow")
    if summary.status == "failed":
        # The round is stored as failed with its reason; the task fails so the team sees it.
        raise RuntimeError(f"round {summary.round_id} failed: {summary.message}")
    return {"round_id": summary.round_id, "status": summary.status, "message": summary.message,
            "persons_placed": summary.persons_placed, "households_placed": summary.households_placed}


def export_round_files(round_id: str) -> list[str]:
    from rematch_pipeline.config import load_settings
    from rematch_pipeline.rounds import export_round

    settings = load_settings()
    return [str(p) for p in export_round(settings, round_id, settings.exports / round_id)]


def latest_round_id() -> str:
    from sqlalchemy import select

    from rematch_pipeline.config import load_settings
    from rematch_pipeline.db import tables as t
    from rematch_pipeline.db.engine import get_engine, migrate

    settings = load_settings()
    migrate(settings.database_url)
    with get_engine(settings.database_url).connect() as conn:
        rid = conn.execute(select(t.rounds.c.round_id).where(t.rounds.c.status.in_(("solved", "offered")))
                           .order_by(t.rounds.c.round_date.desc()).limit(1)).scalar()
    if rid is None:
        raise LookupError("no solved round yet: run the matching DAG first")
    return str(rid)


def packet_municipalities(round_id: str) -> list[str]:
    from rematch_pipeline.config import load_policy, load_settings
    from rematch_pipeline.packets.service import round_packet_inputs

    return sorted({p.offer.ags for p in round_packet_inputs(load_settings(), load_policy(), round_id)})


def render_municipality_packet(round_id: str, ags: str) -> list[dict[str, Any]]:
    from rematch_pipeline.config import load_policy, load_settings
    from rematch_pipeline.db.engine import migrate
    from rematch_pipeline.packets.service import render_one, round_packet_inputs

    settings = load_settings()
    migrate(settings.database_url)
    return [render_one(settings, p, actor="airflow")
            for p in round_packet_inputs(settings, load_policy(), round_id, ags=ags)]
