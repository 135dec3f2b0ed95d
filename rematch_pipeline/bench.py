"""`rematch bench match`: generate a scenario, run one round in memory, report times, memory, quality, baselines."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from rematch_pipeline import progress
from rematch_pipeline.config import load_policy
from rematch_pipeline.matching.engine import match
from rematch_pipeline.matching.solve import deterministic_work
from rematch_pipeline.scenario import DEFAULT_ROUND_DATE as BENCH_DATE
from rematch_pipeline.scenario import generate_scenario
from rematch_pipeline.scenario_load import load_scenario


def bench_match(households: int, municipalities: int, seed: int, time_limit_s: float | None = None,
                balanced_fill_weight: float | None = None, repeat: int = 1) -> dict[str, Any]:
    """One scenario solved `repeat` times: the figures of the first run, and whether every run placed every
    household in the same offer (`hashes_agree`)."""
    settings = (("time_limit_s", time_limit_s), ("balanced_fill_weight", balanced_fill_weight))
    overrides: dict[str, object] = {k: v for k, v in settings if v is not None}
    policy = load_policy(overrides=overrides)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        with progress.step("generating and reading the scenario"):
            files = generate_scenario(Path(tmp), households=households, municipalities=municipalities, seed=seed,
                                      round_date=BENCH_DATE)
            hh, offers = load_scenario(files.households_xlsx, files.capacity_xlsx)
        gen_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    with progress.step(f"round 1 of {repeat}"):
        result = match(hh, offers, BENCH_DATE, policy, "BENCH")
    wall = time.perf_counter() - t1
    hashes = [result.assignments_sha256]
    for run in range(2, repeat + 1):
        with progress.step(f"round {run} of {repeat}"):
            hashes.append(match(hh, offers, BENCH_DATE, policy, "BENCH").assignments_sha256)
    s = result.stats
    comparison = s.get("comparison", {})
    greedy_persons = comparison.get("greedy_by_score", {}).get("persons_placed")
    return {
        "households": len(hh), "municipalities": len(offers), "time_limit_s": policy.solver.time_limit_s,
        "eligible_pairs": s.get("eligible_pairs"),
        "candidate_pairs": s.get("candidate_pairs"), "priced_pairs": s.get("priced_pairs"),
        "persons_in_pool": s.get("persons_in_pool"), "interface": s.get("interface"),
        "generate_and_read_s": round(gen_s, 3), "data_s": s.get("data_s"), "build_s": s.get("build_s"),
        "solve_s": s.get("solve_s"), "baselines_s": s.get("baselines_s"), "wall_s": round(wall, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "status": result.status, "objective": s.get("quality"), "quality_bound": s.get("quality_bound"),
        "quality_gap": s.get("quality_gap"),
        "persons_placed": result.persons_placed, "lp_bound_persons": s.get("lp_bound_persons"),
        "gap_to_lp": s.get("gap_to_lp"), "persons_proven_maximal": s.get("persons_proven_maximal"),
        "persons_placed_vs_greedy": round(result.persons_placed / greedy_persons, 4) if greedy_persons else None,
        "balanced_fill": s.get("balanced_fill"), "phases": s.get("phases"), "comparison": comparison,
        "assignments_sha256": hashes[0], "repeat": repeat, "hashes_agree": len(set(hashes)) == 1,
        "deterministic_work": deterministic_work(),
    }
