"""`rematch demo`: one complete round on generated pilot-sized data, ending with a short printed summary."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import date
from pathlib import Path

from rematch_pipeline import progress
from rematch_pipeline.cli import round_summary_lines
from rematch_pipeline.config import DEFAULT_COORDINATION_CONTACT, Settings, load_policy, save_home_setting
from rematch_pipeline.db.engine import migrate
from rematch_pipeline.ingest.service import ingest_file
from rematch_pipeline.packets.delivery import deliver_round
from rematch_pipeline.packets.letters import render_round_letters
from rematch_pipeline.packets.service import render_round_packets
from rematch_pipeline.reports.round_report import write_round_report
from rematch_pipeline.rounds import offer_round, run_round, summarize
from rematch_pipeline.scenario import generate_scenario

DEMO_COORDINATION_CONTACT = "Re:Match Koordinationsteam (Demo), koordination@rematch.example"


def run_demo(settings: Settings, households: int, municipalities: int, seed: int, round_date: date) -> int:
    settings.ensure_dirs()
    migrate(settings.database_url)  # the demo initialises the home it fills, as `rematch db upgrade` would
    # The letters tell households to answer the coordination team: the demo's is fictitious but reachable in form.
    # It is kept with the home, so the DAGs and commands run on this home later print the same letters.
    if settings.coordination_contact == DEFAULT_COORDINATION_CONTACT:
        save_home_setting(settings.home, "coordination_contact", DEMO_COORDINATION_CONTACT)
        settings = replace(settings, coordination_contact=DEMO_COORDINATION_CONTACT)
        print(f"0. coordination contact of this home: {DEMO_COORDINATION_CONTACT} (fictitious; set yours with "
              "`rematch config set coordination_contact ...`)")
    policy = load_policy()
    scenario_dir = settings.home / "scenario" / f"seed-{seed}"
    with progress.step("demo 1/6: generating the scenario"):
        files = generate_scenario(scenario_dir, households=households, municipalities=municipalities, seed=seed,
                                  round_date=round_date)
    print(f"1. scenario: {households} households, {municipalities} municipalities (seed {seed}) in {scenario_dir}")
    reports = []
    inputs = (files.capacity_xlsx, files.households_xlsx)
    for f in progress.track(inputs, "demo 2/6: ingesting", total=len(inputs), unit="files"):
        # Files arrive through the inbox, as a coordinator would drop them.
        inbox_copy = settings.inbox / f.name
        shutil.copyfile(f, inbox_copy)
        reports.append(ingest_file(inbox_copy, settings, actor="demo"))
    for r in reports:
        print(f"2. ingest {r.file}: {r.status} — {r.message}")
    with progress.step("demo 3/6: the round"):
        summary = run_round(settings, policy, round_date, actor="demo")
    print(f"3. round {summary.round_id}: {summary.message}"
          + (" (already solved earlier; unchanged)" if summary.already_existed else ""))
    with progress.step("demo 4/6: making the offers"):
        offered = offer_round(settings, summary.round_id, actor="demo")
    print(f"4. offers: {offered} new (deadline in {policy.offer_response_days} days)")
    with progress.step("demo 5/6: packets and letters") as documents:
        packets = render_round_packets(settings, policy, summary.round_id, actor="demo")
        documents.note("rendering the offer letters")
        letters = render_round_letters(settings, policy, summary.round_id, actor="demo")
        documents.note("delivering")
        delivered = deliver_round(settings, summary.round_id, actor="demo")
    print(f"5. packets and letters: {len(packets)} packets, {len(letters)} letters; "
          f"{sum(1 for d in delivered if d['delivered'])} newly delivered "
          f"({', '.join(sorted({d['channel'] for d in delivered})) or 'nothing new'})")
    with progress.step("demo 6/6: writing the round report"):
        report = write_round_report(settings, summary.round_id)
    csv_path, json_path = report.parent / "assignments.csv", report.parent / "round.json"

    print("\n=== Re:Match demo summary ===")
    print("\n".join(round_summary_lines(summarize(settings, summary.round_id))))
    print("packets:")
    for p in packets:
        print(f"  {p['pdf_path']}")
    print("validation reports (Data Docs):")
    for r in reports:
        for table, path in sorted(r.reports.items()):
            print(f"  {table}: {path}")
    print("offer letters:       " + (str(Path(letters[0]["pdf_path"]).parent) if letters else "none"))
    print(f"round report:        {report}")
    print(f"round export:        {csv_path}\n                     {json_path}")
    return 0
