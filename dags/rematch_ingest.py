"""
### Re:Match — ingest

Every 15 minutes (`REMATCH_INGEST_SCHEDULE`) scans the inbox — `$REMATCH_HOME/inbox`, or any fsspec URL in
`REMATCH_INBOX_URL` such as `s3://bucket/inbox` — and ingests each file not seen before in its own mapped task:
archives it byte-for-byte with its sha256, detects its format by content, validates it with Great Expectations (Data
Docs under `$REMATCH_HOME/data_docs`), quarantines bad rows with a reason and stores the good ones. A file whose
processing fails is recorded `failed` with its reason (`rematch quarantine list`) and fails only its own task, at
once; the inbox scan leaves it until it is resubmitted.
Updates the assets `rematch://households`, `rematch://capacities` and `rematch://decisions` only when valid rows of
that kind were added; decisions refresh the open rounds' packets, letters and report (packets DAG). Its last task
says in one line what the run did ("nothing new in the inbox: ..." when it found nothing to ingest).
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, dag, task

from rematch_pipeline.config import load_settings
from rematch_pipeline.orchestration import (
    CAPACITIES_ASSET,
    DECISIONS_ASSET,
    DEFAULT_ARGS,
    HOUSEHOLDS_ASSET,
    TAGS,
)


@dag(
    schedule=load_settings().ingest_schedule,
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

    def publisher(kind: str, asset: str):  # noqa: ANN202
        # all_done: a file whose ingest failed fails only its own task; what the other files added is published.
        @task(task_id=f"publish_{asset.split('://')[1]}", outlets=[Asset(asset)], trigger_rule="all_done")
        def publish(reports: list[dict]) -> int:
            from airflow.sdk.exceptions import AirflowSkipException

            from rematch_pipeline.orchestration import rows_added

            added = rows_added(list(reports), kind)
            if not added:
                raise AirflowSkipException(f"no valid {kind} rows added: {asset} not updated")
            return added

        return publish

    @task(trigger_rule="all_done")
    def outcome(reports: list[dict]) -> str:
        from rematch_pipeline.orchestration import ingest_outcome

        return ingest_outcome(list(reports))

    reports = ingest.expand(path=scan_inbox())
    published = [publisher(kind, asset)(reports) for kind, asset in (
        ("households", HOUSEHOLDS_ASSET), ("capacity", CAPACITIES_ASSET), ("decisions", DECISIONS_ASSET))]
    published >> outcome(reports)  # the run's last word


rematch_ingest()
