"""
### Re:Match — packets, letters, delivery, report

Runs when a round is solved (`rematch_solved_round`) and whenever decisions arrive (`rematch://decisions`), or by
hand with the param `round_id`.

1. **targets**: the triggering round, or every round whose offers are still open; one entry per receiving
   municipality (and **letter_batches**: the round's households in batches).
2. **packet** (mapped, one task per municipality): renders the German pre-arrival packet (HTML + PDF) into
   `outbox/<AGS>/<round>/` and delivers it — by e-mail to the offer's contact when the `rematch_smtp` connection
   is configured. A ledger with the content hash delivers each version once across retries; a packet that changed
   (an acceptance, a decline) becomes a new version.
3. **letters** (mapped, one task per batch of about 250 households, cut by pseudonym): the offer letter of each
   household offered a place, in its language, rendered and delivered likewise.
4. **report**: the round report (HTML with charts) and the audit export in `exports/<round>/`.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import Asset, Param, dag, task

from rematch_pipeline.orchestration import DECISIONS_ASSET, DEFAULT_ARGS, ROUND_ASSET, TAGS


@dag(
    schedule=(Asset(ROUND_ASSET) | Asset(DECISIONS_ASSET)),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=[*TAGS, "packets"],
    doc_md=__doc__,
    params={"round_id": Param(None, type=["null", "string"],
                              description="Round id (default: the triggering round, else every open round)")},
)
def rematch_packets() -> None:
    @task
    def pick_rounds(params: dict | None = None, triggering_asset_events=None) -> list[str]:  # noqa: ANN001
        from rematch_pipeline.orchestration import latest_round_id, open_round_ids

        if (params or {}).get("round_id"):
            return [str(params["round_id"])]
        named = sorted({str(event.extra["round_id"]) for events in (triggering_asset_events or {}).values()
                        for event in events if event.extra.get("round_id")})
        return named or open_round_ids() or [latest_round_id()]

    @task
    def targets(round_ids: list[str]) -> list[dict]:
        from rematch_pipeline.orchestration import packet_targets

        return packet_targets(round_ids)

    @task
    def packet(target: dict) -> dict:
        from rematch_pipeline.orchestration import deliver_municipality_packet, render_municipality_packet

        rendered = render_municipality_packet(target["round_id"], target["ags"])
        delivered = deliver_municipality_packet(target["round_id"], target["ags"])
        return {**target, "rendered": rendered, "delivered": delivered}

    @task
    def letter_batches(round_ids: list[str]) -> list[dict]:
        from rematch_pipeline.orchestration import letter_batches

        return letter_batches(round_ids)

    @task
    def letters(batch: dict) -> dict:
        from rematch_pipeline.orchestration import letters_in_batch

        return letters_in_batch(batch["round_id"], batch["from"], batch["before"])

    @task
    def report(round_ids: list[str]) -> list[str]:
        from rematch_pipeline.orchestration import export_round_files

        return [path for rid in round_ids for path in export_round_files(rid)]

    rounds = pick_rounds()
    municipalities = targets(rounds)
    [packet.expand(target=municipalities), letters.expand(batch=letter_batches(rounds))] >> report(rounds)


rematch_packets()
