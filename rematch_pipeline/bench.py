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
from rematch_pipeline.reports.charts import count, counted, number, percent
from rematch_pipeline.reports.round_report import METHODS, PHASE_COUNTS, PHASE_LABELS
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
        "households": len(hh), "households_generated": households, "municipalities": len(offers),
        "time_limit_s": policy.solver.time_limit_s, "eligible_pairs": s.get("eligible_pairs"),
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


def _gap(share: Any) -> str:
    # Gaps to a bound in thousandths of a per cent: the goals are 0.02 % and 0.5 %.
    return "none" if share is None else f"{100 * share:.3f} %"


def _seconds(value: Any) -> str:
    return "none" if value is None else f"{value:.3f} s"


def match_lines(r: dict[str, Any]) -> list[str]:
    """The bench's figures for people: words, units and the baselines by name (`--json` keeps every key)."""
    left_out = r["households_generated"] - r["households"]
    fill = r.get("balanced_fill")
    lines = [
        f"scenario: {counted(r['households_generated'], 'household')} generated, {count(r['households'])} in the pool"
        + (f" ({count(left_out)} did not consent to matching)" if left_out else "")
        + f", {counted(r['persons_in_pool'], 'person')}; {counted(r['municipalities'], 'capacity offer')}",
        f"pairs: {counted(r['eligible_pairs'], 'eligible household-offer pair')}, {count(r['candidate_pairs'])} in "
        f"the model ({count(r.get('priced_pairs') or 0)} added by pricing); interface {r['interface']}",
        f"solver outcome: {r['status']} (safety-net time limit {number(r['time_limit_s'], 0)} s)",
        f"persons placed: {count(r['persons_placed'])}; upper bound (LP, every eligible pair) "
        f"{number(r['lp_bound_persons'])}, gap {_gap(r['gap_to_lp'])}; proven the most possible: "
        + ("yes" if r["persons_proven_maximal"] else "no")
        + (f"; {number(r['persons_placed_vs_greedy'])} times as many as greedy by score"
           if r.get("persons_placed_vs_greedy") else ""),
        f"match quality: {number(r['objective'])} points; upper bound {number(r['quality_bound'])}, "
        f"gap {_gap(r['quality_gap'])}" + (" (balanced-fill points included)" if fill else ""),
        "balanced fill: " + (f"weight {number(fill['weight'])}, {number(fill['points'])} points in match quality, "
                             f"{number(fill['persons_within_share'])} of {count(r['persons_placed'])} persons within "
                             "their municipality's share" if fill else "off"),
        f"time: the round {_seconds(r['wall_s'])} (reading its data {_seconds(r['data_s'])}, building "
        f"{_seconds(r['build_s'])}, solving {_seconds(r['solve_s'])}, baselines {_seconds(r['baselines_s'])}); "
        f"generating and reading the scenario {_seconds(r['generate_and_read_s'])}; peak memory "
        f"{number(r['peak_rss_mb'], 1)} MB",
    ]
    for p in r.get("phases") or []:
        lines.append(f"phase {p['phase']}: {PHASE_LABELS.get(p['phase'], p['phase'])}: "
                     f"{p['termination']}, objective {number(p.get('objective'))}, bound {number(p.get('bound'))} "
                     f"(counting {PHASE_COUNTS.get(p['phase'], 'what the phase counts')}), "
                     f"{_seconds(p.get('seconds'))}")
    for key, name in METHODS:
        m = (r.get("comparison") or {}).get(key)
        if m:
            broken = m["hard_need_violations"] or m["capacity_violations"]
            who = "ours" if key == "rematch" else f"baseline {name}"
            lines.append(
                f"{who}: {counted(m['households_placed'], 'household')}, {counted(m['persons_placed'], 'person')}; "
                f"mean preference rank {number(m['mean_preference_rank'])}, {percent(m['share_top3'])} in their "
                f"top 3; fill {percent(m['fill_min'])} / {percent(m['fill_mean'])} / {percent(m['fill_max'])} "
                f"(least / mean / most filled); persons beyond share {number(m['persons_beyond_share'])}; "
                f"{count(m['hard_need_violations'])} hard-need violations, {count(m['capacity_violations'])} "
                "capacity violations" + (" (not feasible: it places households the rules forbid, so it can place "
                                         "more)" if broken else ""))
    runs = r["repeat"]
    lines += [
        f"assignments sha256 (sorted household-offer pairs): {r['assignments_sha256']}"
        + (f"; {runs} runs, every run placed every household alike: {'yes' if r['hashes_agree'] else 'no'}"
           if runs > 1 else ""),
        "work limits: " + ", ".join(f"{k} {v}" for k, v in r["deterministic_work"].items()),
    ]
    return lines
