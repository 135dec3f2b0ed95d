"""`rematch simulate`: its arguments and what it prints (the heavy modules load only when it runs)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from rematch_pipeline.simulation import LOOK_AHEAD_WEIGHT, PLANS, SECOND_PROCESS_FROM


def add_parser(sub: Any, command: Callable[[Any, str, str], argparse.ArgumentParser], json_help: str) -> None:
    s = command(sub, "simulate", "run weekly rounds on generated arrivals through the whole pipeline (ingest, round, "
                                 "offers, answers) on a throwaway home and compare with the hindsight optimum")
    s.add_argument("--weeks", type=int, default=4, metavar="W", help="weekly rounds (default: %(default)s)")
    s.add_argument("--arrivals-per-week", type=int, default=100, metavar="N",
                   help="households arriving each week (default: %(default)s)")
    s.add_argument("--municipalities", type=int, default=20, metavar="M",
                   help="municipalities offering places (default: %(default)s)")
    s.add_argument("--seed", type=int, default=1, metavar="S", help="seed of everything drawn (default: %(default)s)")
    s.add_argument("--start", type=date.fromisoformat, default=None, metavar="YYYY-MM-DD",
                   help="date of the first round (default: the scenario generator's round date)")
    for plan in PLANS:
        s.add_argument(f"--{plan.key}", dest=plan.field, type=plan.read, default=plan.default, metavar=plan.metavar,
                       help=plan.help)
    s.add_argument("--what-if", action="append", metavar="CHANGES",
                   help="also run a variant with these changes and compare it side by side; repeatable. CHANGES is "
                        "KEY=VALUE parts separated by ';': round-every=2 (a round every 2 weeks), "
                        "add=AGS:units_3_rooms=5 (capacity added to a municipality's first offer; flats need person "
                        "places too: add=AGS:places_persons=N as well; the AGS are those of fill_by_municipality in "
                        "the summary), decline-share=0.3 (the accepting share gives way), "
                        "and the other options above by name: " + ", ".join(
                            p.key for p in PLANS if p.key not in ("round-every", "decline-share")) +
                        " (default: no variant)")
    s.add_argument("--processes", type=int, choices=(1, 2), default=None,
                   help="2: the myopic rounds and the hindsight in a second process beside the rounds that look ahead "
                        "(the same summary, sooner on two cores); default: 2 from "
                        f"{SECOND_PROCESS_FROM:,} households over the weeks, else 1")
    s.add_argument("--out", metavar="DIR", help="write simulation.json and simulation_report.html into DIR")
    s.add_argument("--json", action="store_true", help=json_help)
    s.set_defaults(func=cmd_simulate)


def look_ahead_weight(given: float | None, in_policy: float) -> float:
    """The look-ahead run's weight: as given, else the policy's own when it looks ahead, else the default."""
    return given if given is not None else in_policy if in_policy > 0 else LOOK_AHEAD_WEIGHT


def cmd_simulate(args: argparse.Namespace, settings: Any) -> int:
    # `settings` (the user's home) is deliberately unused: a simulation runs on a home of its own.
    import sys
    import time

    from rematch_pipeline.config import load_policy
    from rematch_pipeline.scenario import DEFAULT_ROUND_DATE
    from rematch_pipeline.simulation.report import summary_json, summary_lines, timing_line, write_report
    from rematch_pipeline.simulation.runner import SimulationParameters, default_processes, run_simulation
    from rematch_pipeline.simulation.whatif import variant_parameters, what_if

    policy = load_policy()
    planned = {plan.field: getattr(args, plan.field) for plan in PLANS}
    planned["look_ahead_weight"] = look_ahead_weight(args.look_ahead_weight, policy.look_ahead_weight)
    params = SimulationParameters(
        weeks=args.weeks, arrivals_per_week=args.arrivals_per_week, municipalities=args.municipalities,
        seed=args.seed, start=args.start or DEFAULT_ROUND_DATE, **planned)
    variants = [(spec, variant_parameters(params, spec)) for spec in args.what_if or []]
    params.check(policy)  # every run's parameters before the first run
    for spec, variant in variants:
        try:
            variant.check(policy)
        except ValueError as exc:
            raise ValueError(f"what-if {spec!r}: {exc}") from exc
    run = run_simulation(params, policy, processes=default_processes(params, args.processes))
    if variants:
        t0 = time.perf_counter()
        run.summary["what_if"] = what_if(run.summary, variants, policy, args.processes)
        run.timings["what_if_s"] = round(time.perf_counter() - t0, 3)
        run.timings["total_s"] = round(run.timings["total_s"] + run.timings["what_if_s"], 3)
    written = write_report(run.summary, Path(args.out)) if args.out else None
    if args.json:
        sys.stdout.write(summary_json(run.summary))
        return 0
    print("\n".join(summary_lines(run.summary)))
    print(timing_line(run.timings))
    if written:
        print(f"report: {written[1]}\nsummary: {written[0]}")
    return 0
