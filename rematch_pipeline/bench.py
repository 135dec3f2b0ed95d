"""`rematch bench match`: generate a scenario, run one round in memory, report times, memory and quality."""

from __future__ import annotations

import resource
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

from rematch_pipeline.config import load_policy
from rematch_pipeline.matching.baselines import greedy_by_score
from rematch_pipeline.matching.engine import match
from rematch_pipeline.scenario import generate_scenario
from rematch_pipeline.scenario_load import load_scenario

BENCH_DATE = date(2026, 11, 23)


def bench_match(households: int, municipalities: int, seed: int) -> dict[str, Any]:
    policy = load_policy()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        files = generate_scenario(Path(tmp), households=households, municipalities=municipalities, seed=seed,
                                  round_date=BENCH_DATE)
        hh, offers = load_scenario(files.households_xlsx, files.capacity_xlsx, policy)
        gen_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    result = match(hh, offers, BENCH_DATE, policy, "BENCH")
    wall = time.perf_counter() - t1
    assert result.data is not None
    t2 = time.perf_counter()
    greedy = greedy_by_score(result.data)
    greedy_s = time.perf_counter() - t2
    s = result.stats
    persons = result.persons_placed
    return {
        "households": len(hh), "municipalities": len(offers), "pairs": s.get("pairs"),
        "persons_in_pool": s.get("persons_in_pool"),
        "generate_s": round(gen_s, 3), "data_s": s.get("data_s"), "build_s": s.get("build_s"),
        "solve_s": s.get("solve_s"), "wall_s": round(wall, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "status": result.status, "objective": s.get("quality"), "persons_placed": persons,
        "persons_bound": s.get("persons_bound"), "gap_persons": s.get("gap"),
        "greedy_persons_placed": greedy.persons_placed, "greedy_s": round(greedy_s, 3),
        "persons_placed_vs_greedy": round(persons / greedy.persons_placed, 4) if greedy.persons_placed else None,
        "wall_vs_greedy": round(wall / greedy_s, 1) if greedy_s else None,
    }
