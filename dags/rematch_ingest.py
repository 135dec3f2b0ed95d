"""
### Re:Match — ingest

Reads every export file in the inbox (`$REMATCH_HOME/inbox`): archives it byte-for-byte with its sha256,
detects its kind by content, validates it with Great Expectations (Data Docs under `$REMATCH_HOME/data_docs`),
quarantines bad rows with a reason and stores the good ones. Re-ingesting a file is a no-op that says so.
Publishes the `rematch_validated_inputs` asset, which starts the matching round.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, task

from rematch_pipeline.orchestration import DEFAULT_ARGS, INPUTS_ASSET, TAGS


@dag(
    schedule="@hourly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "ingest"],
    doc_md=__doc__,
)
def rematch_ingest() -> None:
    @task
    def scan_inbox() -> list[str]:
        from rematch_pipeline.orchestration import scan_inbox

        return scan_inbox()

    @task
    def ingest(path: str) -> dict:
        from rematch_pipeline.orchestration import ingest_path

        return ingest_path(path)

    @task(outlets=[Asset(INPUTS_ASSET)])
    def publish(reports: list[dict]) -> list[dict]:
        return list(reports)

    publish(ingest.expand(path=scan_inbox()))


rematch_ingest()
