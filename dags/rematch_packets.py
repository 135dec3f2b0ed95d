"""
### Re:Match — packets

Renders the pre-arrival packet (German, HTML and PDF) for every receiving municipality of the round that
triggered it, one mapped task per municipality, into `$REMATCH_HOME/outbox/<AGS>/<round>/`. A delivery ledger
with the content hash makes reruns produce no duplicate packet; a changed packet becomes a new version.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

from rematch_pipeline.orchestration import DEFAULT_ARGS, ROUND_ASSET, TAGS


@dag(
    schedule=[Asset(ROUND_ASSET)],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "packets"],
    doc_md=__doc__,
    params={"round_id": Param(None, type=["null", "string"],
                              description="Round id (default: the triggering or the latest round)")},
)
def rematch_packets() -> None:
    @task
    def pick_round(params: dict | None = None, triggering_asset_events=None) -> str:  # noqa: ANN001
        from rematch_pipeline.orchestration import latest_round_id

        if (params or {}).get("round_id"):
            return str(params["round_id"])
        for events in (triggering_asset_events or {}).values():
            for event in events:
                if event.extra.get("round_id"):
                    return str(event.extra["round_id"])
        return latest_round_id()

    @task
    def municipalities(round_id: str) -> list[dict]:
        from rematch_pipeline.orchestration import packet_municipalities

        return [{"round_id": round_id, "ags": ags} for ags in packet_municipalities(round_id)]

    @task
    def render(target: dict) -> list[dict]:
        from rematch_pipeline.orchestration import render_municipality_packet

        return render_municipality_packet(target["round_id"], target["ags"])

    render.expand(target=municipalities(pick_round()))


rematch_packets()
