"""
### Re:Match — matching round

Solves one matching round (Pyomo integer model, HiGHS) for the round date: the pool of consenting households
against the capacity offers valid on that date. Persons placed is maximal first, then match quality.
A rerun for the same date returns the stored round unchanged. Runs when valid households or capacity offers were
added (asset `rematch://households` or `rematch://capacities`), or by hand with the `round_date` param.
Publishes the `rematch_solved_round` asset, which starts the packets DAG.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

from rematch_pipeline.orchestration import CAPACITIES_ASSET, DEFAULT_ARGS, HOUSEHOLDS_ASSET, ROUND_ASSET, TAGS


@dag(
    schedule=(Asset(HOUSEHOLDS_ASSET) | Asset(CAPACITIES_ASSET)),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "matching"],
    doc_md=__doc__,
    params={"round_date": Param(None, type=["null", "string"], format="date",
                                description="Round date YYYY-MM-DD (default: today)")},
)
def rematch_round() -> None:
    @task
    def solve(params: dict | None = None) -> dict:
        from rematch_pipeline.orchestration import solve_round

        return solve_round((params or {}).get("round_date"))

    @task(outlets=[Asset(ROUND_ASSET)])
    def export(result: dict, outlet_events=None) -> list[str]:  # noqa: ANN001 (injected by Airflow)
        from rematch_pipeline.orchestration import export_round_files

        outlet_events[Asset(ROUND_ASSET)].extra = {"round_id": result["round_id"]}
        return export_round_files(result["round_id"])

    export(solve())


rematch_round()
