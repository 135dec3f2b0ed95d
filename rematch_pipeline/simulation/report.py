"""The simulation report: simulation.json and an HTML page with static charts (the round report's chart helpers)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rematch_pipeline.packets.render import document_environment, write_atomic
from rematch_pipeline.reports.charts import Series, count, counted, hbar_chart, number, percent, signed
from rematch_pipeline.reports.round_report import DIMENSION_LABELS, PHASE_LABELS, TEMPLATE_DIR
from rematch_pipeline.simulation import WITHOUT_CHANGES
from rematch_pipeline.simulation.whatif import change_note

JSON_FILE = "simulation.json"
HTML_FILE = "simulation_report.html"
# Summary key, as the report names it (every table and line).
POLICY_NAMES = {"myopic": "myopic rounds", "look_ahead": "rounds that look ahead"}
WHAT_IF_POLICIES = tuple(POLICY_NAMES.items())
FILL_SHOWN = 30  # municipalities in the fill chart: all of a small run, the least filled of a large one

_ENV = document_environment(TEMPLATE_DIR)
_ENV.filters.update(count=count, number=number, percent=percent, signed=signed)


def summary_json(summary: dict[str, Any]) -> str:
    """The summary as `--json` prints it and simulation.json holds it: the same seed gives the same text."""
    return json.dumps(summary, indent=2, sort_keys=True) + "\n"


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary for people (no names: the report speaks of counts, weeks and municipalities only)."""
    t, placed, ratio = summary["totals"], summary["persons_placed"], summary["ratio_to_hindsight"]
    ahead = summary.get("look_ahead")
    lines = [
        f"weeks: {len(summary['weeks'])}, households arrived (consenting to matching, of "
        f"{count(summary['parameters']['arrivals_per_week'] * summary['parameters']['weeks'])} interviewed): "
        f"{count(t['households_arrived'])} ({counted(t['persons_arrived'], 'person')})",
        f"policy options of the {POLICY_NAMES['myopic']}: " + _options(summary.get("policy") or {}),
        f"persons placed, hindsight optimum: {count(placed['hindsight'])}",
        f"persons placed (accepted), {POLICY_NAMES['myopic']}: {count(placed['myopic'])} "
        f"({percent(ratio['myopic'])} of hindsight)",
    ]
    if ahead:
        lines.append(f"persons placed (accepted), {POLICY_NAMES['look_ahead']} ({_options(ahead['policy'])}): "
                     f"{count(placed['look_ahead'])} ({percent(ratio['look_ahead'])} of hindsight)")
    else:
        lines.append(f"{POLICY_NAMES['look_ahead']}: " + summary["absent"]["look_ahead"])
    for name, part in [(POLICY_NAMES["myopic"], summary), *([(POLICY_NAMES["look_ahead"], ahead)] if ahead else [])]:
        wait = part["totals"]["wait_weeks"]
        lines += [
            f"{name}: households still waiting at the end: {count(part['totals']['households_waiting_at_end'])}; "
            f"weeks each household waited for its place, counted from the round it arrived for (a household still "
            f"waiting: its weeks so far): mean {number(wait['mean'])}, 90th percentile {number(wait['p90'])}, "
            f"max {number(wait['max'])}",
            f"{name}: longest wait while a place the household could take stayed free: "
            f"{counted(part['max_wait_weeks_with_free_place'], 'week')}",
        ]
    rows = summary.get("what_if") or []
    for row in rows:
        p, r, free = row["persons_placed"], row["ratio_to_hindsight"], row["max_wait_weeks_with_free_place_by_policy"]
        name = ("the simulation above, without changes" if row["variant"] == WITHOUT_CHANGES
                else f"what if {row['variant']} {change_note(row)}".rstrip())
        lines.append(f"{name}: hindsight {count(p['hindsight'])}; " + "; ".join(
            f"{name} {count(p[key])} ({percent(r[key])}), longest wait beside a free place "
            f"{counted(free[key], 'week')}" if p.get(key) is not None
            else f"{name} {(row.get('absent') or {}).get(key, 'not run')}" for key, name in ran_policies(rows)))
    return lines


def ran_policies(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The policies some what-if row ran (key, name): a row without one of them says why rather than leave it out."""
    return [(key, name) for key, name in WHAT_IF_POLICIES if any(r["persons_placed"].get(key) is not None
                                                                 for r in rows)]


# The timing line's steps of a run of weekly rounds, in the order they run (keys of `SimulationRun.timings`).
RUN_STEPS = {"ingest_s": "ingest", "round_s": "rounds", "free_place_check_s": "free-place check",
             "decisions_s": "answers"}


def timing_line(timings: dict[str, float]) -> str:
    """Where the time went, for people: the total first, then each part in the order it ran (never in the summary)."""
    def steps(prefix: str) -> str:
        return ", ".join(f"{label} {timings[prefix + key]:.1f} s" for key, label in RUN_STEPS.items()
                         if prefix + key in timings)

    parts = [f"generating the weekly input files {timings.get('generate_s', 0.0):.1f} s",
             f"{POLICY_NAMES['myopic']}: {steps('')}"]
    if any(key.startswith("look_ahead_") for key in timings):
        parts.append(f"{POLICY_NAMES['look_ahead']}: {steps('look_ahead_')}")
    if "hindsight_s" in timings:
        phases = [f"{_phase(key[len('hindsight_'):-len('_s')])} {secs:.1f} s" for key, secs in timings.items()
                  if key.startswith("hindsight_") and key not in ("hindsight_s", "hindsight_data_s",
                                                                   "hindsight_beside_s")]
        parts.append(f"hindsight optimum {timings['hindsight_s']:.1f} s (its data "
                     f"{timings.get('hindsight_data_s', 0.0):.1f} s; solver phases: {', '.join(phases) or 'none'})")
    if "hindsight_beside_s" in timings:
        parts.append(f"the {POLICY_NAMES['myopic']} and a first hindsight optimum ({timings['hindsight_beside_s']:.1f} "
                     f"s, without the declines of the {POLICY_NAMES['look_ahead']}) ran in a second process beside "
                     f"the {POLICY_NAMES['look_ahead']}, so the parts add up to more than the whole; the hindsight "
                     "optimum above was solved again with the declines of both")
    elif timings.get("processes", 1) > 1:
        parts.append(f"the {POLICY_NAMES['myopic']} and the hindsight optimum ran in a second process beside the "
                     f"{POLICY_NAMES['look_ahead']}, so the parts add up to more than the whole")
    if "what_if_s" in timings:
        parts.append(f"what-if variants {timings['what_if_s']:.1f} s")
    return f"time: {timings.get('total_s', 0.0):.1f} s in all; " + "; ".join(parts)


def _phase(key: str) -> str:
    """A solver phase by the round report's words, without their explanation in brackets."""
    return PHASE_LABELS.get(key, key.replace("_", " ")).split(" (")[0]


def _context(summary: dict[str, Any]) -> dict[str, Any]:
    weeks = summary["weeks"]
    labels = [f"week {w['week'] + 1} ({w['round_date']})" for w in weeks]
    placed, ahead = summary["persons_placed"], summary.get("look_ahead")
    runs = ["myopic", *(["look_ahead"] if ahead else [])]
    policies = [*((POLICY_NAMES[k], placed[k]) for k in runs), ("hindsight optimum", placed["hindsight"])]
    ratios = summary["ratio_to_hindsight"]
    compared = [(POLICY_NAMES["myopic"], {**summary, "ratio": ratios["myopic"]})]
    if ahead:
        compared.append((POLICY_NAMES["look_ahead"], {**ahead, "ratio": ratios["look_ahead"]}))
    fill = [f for f in summary["fill_by_municipality"] if f["fill"] is not None]
    shown = sorted(fill, key=lambda f: (f["fill"], f["ags"]))[:FILL_SHOWN]
    shown.sort(key=lambda f: f["ags"])
    exhausted = sorted({d for w in weeks for d in w["exhausted"]}, key=list(DIMENSION_LABELS).index)
    return {
        "summary": summary, "lines": summary_lines(summary), "weeks": weeks, "labels": labels, "ahead": ahead,
        "compared": compared, "what_if_policies": ran_policies(summary.get("what_if") or []),
        "change_note": change_note,
        "dimension_labels": DIMENSION_LABELS, "exhausted_dims": exhausted,
        "fill_note": "" if len(shown) == len(fill) else f"the {len(shown)} least filled of {len(fill)} municipalities",
        "policy_chart": hbar_chart("Persons placed over the horizon, per policy", [p for p, _ in policies],
                                   [Series("persons placed", [v for _, v in policies])],
                                   fmt=lambda v: counted(v, "person")),
        "weekly_chart": hbar_chart("Persons per week: offered by the round, accepted", labels, [
            Series("offered", [w["offered_persons"] for w in weeks]),
            Series("accepted", [w["persons_accepted"] for w in weeks])]),
        "waiting_chart": hbar_chart("Households waiting after each week's answers", labels, [
            Series("waiting", [w["households_waiting"] for w in weeks]),
            Series("left waiting while a place they could take stayed free",
                   [w["waiting_with_free_place"] for w in weeks])]),
        "wait_chart": hbar_chart("Weeks in the pool of the households waiting", labels, [
            Series("mean", [w["wait_weeks"]["mean"] or 0 for w in weeks]),
            Series("90th percentile", [w["wait_weeks"]["p90"] or 0 for w in weeks]),
            Series("maximum", [w["wait_weeks"]["max"] or 0 for w in weeks])], fmt=number),
        "fill_chart": hbar_chart("Places taken by accepted offers, per municipality",
                                 [f"{f['municipality']} ({f['ags']})" for f in shown],
                                 [Series("fill", [f["fill"] for f in shown])], fmt=percent, max_value=1.0)
        if shown else None,
    }


def write_report(summary: dict[str, Any], out_dir: Path) -> tuple[Path, Path]:
    """Write simulation.json and simulation_report.html into out_dir; the same summary gives the same bytes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, html_path = out_dir / JSON_FILE, out_dir / HTML_FILE
    write_atomic(json_path, summary_json(summary).encode("utf-8"))
    html = _ENV.get_template("simulation_report.html.j2").render(**_context(summary))
    write_atomic(html_path, html.encode("utf-8"))
    return json_path, html_path


def _options(policy: dict[str, Any]) -> str:
    """The policy's optional objective terms as the rounds ran them (off unless weighed)."""
    waiting, fill = policy.get("waiting_weight_per_week") or 0, policy.get("balanced_fill_weight") or 0
    ahead = policy.get("look_ahead_weight") or 0
    look = (f"look-ahead weight {number(ahead)} over {counted(policy.get('look_ahead_rounds'), 'round')}, "
            f"{counted(policy.get('look_ahead_samples'), 'sample')}" if ahead else "look-ahead off")
    return (f"waiting priority {f'{number(waiting)} points a week' if waiting else 'off'}, "
            f"balanced fill {f'weight {number(fill)}' if fill else 'off'}, {look}")
