"""
### Re:Match — matching round

One matching round per date, weekly on `REMATCH_ROUND_SCHEDULE` (default Monday 06:00 UTC) or triggered by hand
with the params `round_date` (YYYY-MM-DD) and `policy_overrides` (e.g. `{"time_limit_s": 120}`).

1. **settle**: offers of earlier rounds not answered by their deadline expire; those households return to the pool.
2. **solve**: the pool (consenting households without an open offer, declined municipalities excluded) against the
   capacity valid on the date minus what accepted and pending offers hold. Persons placed is maximal first, then
   match quality (Pyomo model, HiGHS). A rerun for the same date returns the stored round unchanged.
3. **offer**: one offer per matched household, due after `offer_response_days`.
4. **export**: `assignments.csv` and `round.json`; publishes the `rematch_solved_round` asset (packets DAG).

Only one run at a time (`max_active_runs=1`); a second attempt at the same round stops with a clear message.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

from rematch_pipeline.config import load_settings
from rematch_pipeline.orchestration import DEFAULT_ARGS, ROUND_ASSET, TAGS


@dag(
    schedule=load_settings().round_schedule,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "matching"],
    doc_md=__doc__,
    params={
        "round_date": Param(None, type=["null", "string"], format="date",
                            description="Round date YYYY-MM-DD (default: the run's logical date)"),
        "policy_overrides": Param({}, type="object",
                                  description="Policy settings for this round only, e.g. {\"time_limit_s\": 120}"),
    },
)
def rematch_round() -> None:
    @task
    def settle(params: dict | None = None, logical_date=None) -> str:  # noqa: ANN001 (injected by Airflow)
        from rematch_pipeline.orchestration import round_day, settle_offers

        day = round_day((params or {}).get("round_date"), logical_date.isoformat() if logical_date else None)
        settle_offers(day)
        return day

    @task
    def solve(day: str, params: dict | None = None) -> dict:
        from rematch_pipeline.orchestration import solve_round

        return solve_round(day, (params or {}).get("policy_overrides") or None)

    @task
    def offer(result: dict) -> dict:
        from rematch_pipeline.orchestration import make_offers

        make_offers(result["round_id"])
        return result

    @task(outlets=[Asset(ROUND_ASSET)])
    def export(result: dict, outlet_events=None) -> list[str]:  # noqa: ANN001 (injected by Airflow)
        from rematch_pipeline.orchestration import export_round_files

        outlet_events[Asset(ROUND_ASSET)].extra = {"round_id": result["round_id"]}
        return export_round_files(result["round_id"])

    export(offer(solve(settle())))


rematch_round()
