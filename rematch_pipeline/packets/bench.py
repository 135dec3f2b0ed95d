"""`rematch bench packets`: render every municipality packet (HTML + PDF) of a generated round, timed."""

from __future__ import annotations

import os
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from itertools import repeat
from pathlib import Path
from typing import Any

from rematch_pipeline import progress
from rematch_pipeline.bench import BENCH_DATE
from rematch_pipeline.config import DEFAULT_PSEUDONYM_SALT, load_policy, policy_with
from rematch_pipeline.domain import pseudonym
from rematch_pipeline.matching.engine import match
from rematch_pipeline.packets.render import PacketHousehold, PacketInput, write_packet
from rematch_pipeline.scenario import generate_scenario
from rematch_pipeline.scenario_load import load_scenario

SAMPLE_PACKETS = 8  # packets rendered one after another first: the single-process baseline of the same run


def _round_packets(households: int, municipalities: int, seed: int, time_limit_s: float) -> list[PacketInput]:
    policy = policy_with(load_policy(), time_limit_s=time_limit_s)
    with tempfile.TemporaryDirectory() as tmp, progress.step("generating and reading the scenario"):
        files = generate_scenario(Path(tmp), households=households, municipalities=municipalities, seed=seed,
                                  round_date=BENCH_DATE)
        hh, offers = load_scenario(files.households_xlsx, files.capacity_xlsx)
    result = match(hh, offers, BENCH_DATE, policy, "R-BENCH")
    by_case = {h.case_id: h for h in hh}
    by_offer: dict[str, list[PacketHousehold]] = {}
    for a in result.assignments:
        by_offer.setdefault(a.offer_id, []).append(PacketHousehold(
            by_case[a.case_id], a, pseudonym(a.case_id, DEFAULT_PSEUDONYM_SALT), accepted=False))
    offer_of = {o.offer_id: o for o in offers}
    return [PacketInput("R-BENCH", BENCH_DATE, offer_of[oid], tuple(sorted(items, key=lambda p: p.pseudonym)),
                        "Re:Match Koordinationsteam", BENCH_DATE + timedelta(days=policy.offer_response_days), policy)
            for oid, items in sorted(by_offer.items())]


def bench_packets(households: int, municipalities: int, seed: int, workers: int | None = None,
                  time_limit_s: float = 20.0) -> dict[str, Any]:
    workers = workers or os.cpu_count() or 1
    t0 = time.perf_counter()
    packets = _round_packets(households, municipalities, seed, time_limit_s)
    prepare_s = time.perf_counter() - t0
    n_households = sum(len(p.households) for p in packets)
    step = max(1, len(packets) // SAMPLE_PACKETS)
    sample = packets[::step][:SAMPLE_PACKETS]
    with tempfile.TemporaryDirectory() as tmp:
        t1 = time.perf_counter()
        for p in progress.track(sample, "rendering sample packets in one process", len(sample), "packets"):
            write_packet(p, Path(tmp) / "sequential")
        sample_s = time.perf_counter() - t1
        sample_households = sum(len(p.households) for p in sample) or 1
        t2 = time.perf_counter()
        with ProcessPoolExecutor(max_workers=workers) as pool:
            written = list(progress.track(pool.map(write_packet, packets, repeat(Path(tmp) / "all"), chunksize=1),
                                          f"rendering every packet in {workers} processes", len(packets), "packets"))
        wall_s = time.perf_counter() - t2
        pdf_mb = sum(f.pdf_path.stat().st_size for f in written) / 2**20
    sequential_estimate_s = sample_s / sample_households * n_households
    return {
        "households_in_pool": households, "municipalities": municipalities, "seed": seed,
        "packets": len(packets), "households_in_packets": n_households, "workers": workers,
        "prepare_round_s": round(prepare_s, 2),
        "baseline_sample": {"packets": len(sample), "households": sample_households, "seconds": round(sample_s, 2),
                            "ms_per_household": round(1000 * sample_s / sample_households, 1)},
        "render_wall_s": round(wall_s, 2),
        "ms_per_household": round(1000 * wall_s / max(n_households, 1), 1),
        "sequential_estimate_s": round(sequential_estimate_s, 1),
        "speedup_vs_one_process": round(sequential_estimate_s / wall_s, 2) if wall_s else None,
        "pdf_mb": round(pdf_mb, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "goal_s": 120.0,
    }
