"""The round report (HTML) for the data team and auditors: charts, solver statistics, validation and audit links."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC
from pathlib import Path
from typing import Any

from rematch_pipeline import glossary
from rematch_pipeline.config import Settings
from rematch_pipeline.db.engine import require_schema
from rematch_pipeline.domain import (
    ACCEPTED,
    CAPACITY_DIMENSIONS,
    DECLINED,
    EXPIRED,
    PENDING,
    ROOM_CLASSES,
    WITHDRAWN,
    Assignment,
    Capacity,
    MatchingRound,
    MatchOffer,
    Unmatched,
    demand_of,
    units_taken,
)
from rematch_pipeline.matching.bound import proves_maximal
from rematch_pipeline.matching.reasons import category
from rematch_pipeline.packets.render import document_environment, write_atomic
from rematch_pipeline.reports.charts import (
    Series,
    count,
    counted,
    fraction,
    hbar_chart,
    heat_color,
    number,
    percent,
    seconds,
    stat,
    yes_no,
)
from rematch_pipeline.repository import StoredSnapshot, reading, require_round

TEMPLATE_DIR = Path(__file__).with_name("templates")
RANK_BUCKETS = ("1", "2", "3", "4-5", "6-10", "11+")
METHODS = (("rematch", "Re:Match (ours)"), ("greedy_by_score", "greedy by score"),
           ("state_quota", "state quota (Königstein key)"))
DIMENSION_LABELS = {d: glossary.DIMENSIONS[d].en for d in CAPACITY_DIMENSIONS}
SHADOW_PRICES_SHOWN = 25
# The two bounds a reader compares the round with, each by one name wherever the report and `round status` use it.
PERSONS_BOUND = "persons bound: the most persons an LP over every eligible pair places"
QUALITY_BOUND = "quality bound: the most match quality possible with persons as placed, over every eligible pair"
# What each statistic stored with a round means, in the table that lists them all (its key beside it).
# Listed in this order in that table: the pool, persons, quality, how it was solved, then the model and the times.
STAT_LABELS = {
    "households": "households in the pool", "persons_in_pool": "persons in the pool",
    "offers": "capacity offers valid on the round date",
    "persons_placed": "persons placed by the round (each household offered its place)",
    "lp_bound_persons": PERSONS_BOUND,
    "gap_to_lp": "persons gap: persons placed short of the persons bound",
    "persons_proven_maximal": "persons placed proven the most possible",
    "quality": "match quality (the households' weighted scores, summed)",
    "quality_bound": QUALITY_BOUND,
    "quality_gap": "quality gap: match quality short of the quality bound",
    "balanced_fill": "balanced fill: weight, points, persons within each municipality's share",
    "look_ahead": "look-ahead: futures drawn from the households new since the last round, and the offers whose "
                  "capacity they priced",
    "status": "solver outcome",
    "interface": "how it was solved (pyomo: one model; highspy: neighbourhoods of a large round)",
    "eligible_pairs": "household-municipality pairs meeting every hard need",
    "candidate_pairs": "pairs in the model (the others priced out by the LP's capacity prices)",
    "priced_pairs": "pairs added to the model by pricing", "pricing_rounds": "persons LPs solved while pricing",
    "data_s": "time reading the round's data", "build_s": "time building the model",
    "solve_s": "time in the solver's phases", "baselines_s": "time computing the baselines",
    "message": "summary (as at the top of the report)",
    "deterministic_work": "work limits of the search (the same on every machine)",
}
# The solver's phases (table "Phases").
PHASE_LABELS = {
    "lp_persons": "LP relaxation of persons placed",
    "lagrangian_bound": "bound on persons from the LP's capacity prices (rounds too large for the LP)",
    "max_persons": "most persons placed (integer)", "max_persons_types": "most persons placed, over household types",
    "greedy_start": "greedy allocation by score (the start of the searches)",
    "max_persons_lns": "most persons placed, by neighbourhoods of a few municipalities",
    "max_quality": "best match quality with persons placed kept",
    "max_quality_lns": "best match quality with persons placed kept, by neighbourhoods of a few municipalities",
    "quality_moves": "match quality raised by moving single households, or swapping two, over every eligible pair",
    "quality_bound": "quality LP bound, persons as placed: an LP's prices (or Lagrangian steps past it) over every "
                     "pair a household fits into",
}
# Under the phases table: why the quality bound of the key figures can differ from the quality LP bound's row.
QUALITY_BOUND_NOTE = (f"The {QUALITY_BOUND.split(':')[0]} of the key figures is the quality LP bound, or the quality "
                      "MIP's own bound where that MIP saw every eligible pair and its bound is lower; never below the "
                      "match quality found.")
# What a phase's objective and bound count (column "counts"): persons and match quality share the table.
PHASE_COUNTS = {
    "lp_persons": "persons, plus a tie-break for quality of at most 0.5 (without it, the persons bound)",
    "lagrangian_bound": "persons", "max_persons": "persons", "max_persons_types": "persons",
    "greedy_start": "persons", "max_persons_lns": "persons",
    "max_quality": "match quality", "max_quality_lns": "match quality", "quality_moves": "match quality",
    "quality_bound": "match quality",
}

# The search's work limits (`deterministic_work`), each in words (table "Work limits").
WORK_LABELS = {
    "pricing_rounds": "persons LPs while pricing, at most (the statistic of this name counts those solved)",
    "lp_ipm_iterations": "interior-point iterations per persons LP (at most)",
    "lp_simplex_iterations": "simplex iterations per persons LP (at most)",
    "subgradient_steps": "steps of the Lagrangian persons bound where no LP finished",
    "type_mip_nodes": "branch-and-bound nodes over household types",
    "exact_mip_nodes": "branch-and-bound nodes of a small round's exact MIPs",
    "persons_gap_ppm": "persons searches may stop this close to the bound (millionths; 0: they do all their work)",
    "type_neighbourhoods": "neighbourhoods over household types",
    "type_neighbourhood_nodes": "branch-and-bound nodes per neighbourhood over types",
    "near_relaxation_tie_break_nodes": "branch-and-bound nodes of a household-type neighbourhood's first try: counts "
                                       "near its LP solution, ties broken by quality",
    "guided_type_neighbourhoods": "neighbourhoods over types guided by the persons LP",
    "guided_type_offers": "municipalities per guided neighbourhood over types",
    "guided_type_nodes": "branch-and-bound nodes per guided neighbourhood over types",
    "persons_neighbourhoods": "persons neighbourhoods (rounds without an LP)",
    "persons_neighbourhood_nodes": "branch-and-bound nodes per persons neighbourhood",
    "neighbourhoods_without_gain": "neighbourhoods in a row without a gain that end a persons or quality search",
    "quality_neighbourhoods": "quality neighbourhoods (without the quality LP's guide)",
    "quality_neighbourhood_nodes": "branch-and-bound nodes per quality neighbourhood",
    "lp_guided_every": "quality neighbourhoods of other kinds after each one the quality LP guides",
    "guided_offers": "municipalities per guided quality neighbourhood",
    "guided_neighbourhoods": "quality neighbourhoods of all kinds when the quality LP guides some",
    "move_sweeps": "passes of single moves and swaps after the quality neighbourhoods",
    "quality_bound_lps": "LPs of the quality bound",
    "quality_bound_columns": "pairs in the quality bound's LPs (at most)",
    "quality_bound_candidates": "best offers per household in the quality bound's first LP",
    "quality_bound_ipm_iterations": "interior-point iterations per quality-bound LP",
    "quality_bound_crossover_iterations": "simplex iterations of each quality-bound LP's crossover",
    "quality_bound_subgradient_steps": "steps of the Lagrangian quality bound where its LPs stop short",
}

# How a phase ended (column "termination" of the table "Phases").
TERMINATION_WORDS = {
    "optimal": "solved to the end: an integer phase's result is the best over what it looked at (its bound can lie a "
               "fraction above it, which whole persons cannot reach); a bound's LP covered every eligible pair",
    "work_limit": "stopped after its fixed amount of work, the same on every machine, so a replay gives the same "
                  "result (the normal end of the searches in larger rounds)",
    "heuristic": "a result without a proof of the best: the greedy allocation, or moves that ended because none "
                 "was left",
    "time_limit": "cut short by the clock, the safety net: a replay on another machine may differ",
    "solution_limit": "stopped after the number of solutions it may find",
}

OFFER_STATES = (PENDING, ACCEPTED, DECLINED, EXPIRED, WITHDRAWN)

_ENV = document_environment(TEMPLATE_DIR)
# The template formats every number with the charts' functions, so a figure reads the same in a chart and a table.
_ENV.filters.update(count=count, number=number, percent=percent, seconds=seconds, yes_no=yes_no, stat=stat)


def reason_group(u: Unmatched) -> str:
    """Which need excluded most offers, or which capacity ran out at most of them; a round stored before reasons
    were kept as codes is grouped by its words."""
    return category(u.why) if u.why else u.reason


def _fill_rows(rnd: MatchingRound, snapshot: StoredSnapshot | None, assignments: list[Assignment],
               offers: list[MatchOffer]) -> list[dict[str, Any]]:
    """Per offer of the round: capacity left at round time and what this round assigned, in every dimension."""
    from rematch_pipeline.config import policy_from_dict
    from rematch_pipeline.snapshot import inputs_from_json, unpack

    if snapshot is None:
        return []
    inputs = inputs_from_json(unpack(snapshot.data))
    pol = policy_from_dict(dict(rnd.policy)) if rnd.policy else inputs.policy
    round_date = rnd.round_date
    households = {h.case_id: h for h in inputs.households}
    stored = {o.case_id: o.demand for o in offers}
    used: dict[str, Counter[str]] = {}
    for a in assignments:
        c = used.setdefault(a.offer_id, Counter())
        if a.case_id in stored:
            d = dict(stored[a.case_id])
            rooms = int(d.pop("rooms_needed", 1))
            c.update({k: int(v) for k, v in d.items() if k in CAPACITY_DIMENSIONS})
        elif a.case_id in households:
            dem = demand_of(households[a.case_id], round_date, pol)
            c.update({k: dem.of(k) for k in CAPACITY_DIMENSIONS})
            rooms = dem.rooms_needed
        else:
            c["places_persons"] += a.persons  # erased after the round: only the pseudonymous count is left
            continue
        c.update({f"rooms_{k}": t for k, t in zip(ROOM_CLASSES, units_taken(rooms), strict=True)})
    rows = []
    for o in sorted(inputs.offers, key=lambda o: (o.ags, o.offer_id)):
        left = Capacity.of(o, inputs.consumed.get(o.offer_id))
        cells: list[dict[str, Any]] = []
        for dim, cap in zip(CAPACITY_DIMENSIONS, left.dimensions, strict=True):
            u = used.get(o.offer_id, Counter())[dim]
            share = (u / cap) if cap > 0 else (0.0 if u == 0 else 2.0)
            cells.append({"dimension": dim, "used": u, "capacity": cap, "share": share, "color": heat_color(share)})
        for k, cap in zip(ROOM_CLASSES, left.units, strict=True):
            u = used.get(o.offer_id, Counter())[f"rooms_{k}"]
            share = (u / cap) if cap > 0 else (0.0 if u == 0 else 2.0)
            cells.append({"dimension": f"rooms_{k}", "used": u, "capacity": cap, "share": share,
                          "color": heat_color(share)})
        rows.append({"ags": o.ags, "municipality": o.municipality_name, "cells": cells,
                     "persons_share": cells[0]["share"], "persons_used": cells[0]["used"],
                     "no_places_left": cells[0]["capacity"] <= 0})
    return rows


def _breaks(m: dict[str, Any]) -> str:
    """What an allocation breaks, in words ("breaks 26 capacities, 5 hard needs"); empty when it is feasible."""
    broken = [counted(n, noun, plural) for n, noun, plural in (
        (int(m.get("capacity_violations") or 0), "capacity", "capacities"),
        (int(m.get("hard_need_violations") or 0), "hard need", None)) if n]
    return "breaks " + ", ".join(broken) if broken else ""


def _no_rank_note(label: str, missing: int, placed: int, hard_needs: int) -> str:
    """Why a method's rank distribution counts fewer households than it placed. Ranks are taken among a household's
    eligible municipalities only (`baselines.evaluate`), so a household placed where a hard need is not met has none."""
    if missing < 0:
        return f"{label}: the distribution counts {counted(-missing, 'household')} more than were placed."
    why = []
    if (explained := min(missing, hard_needs)):
        why.append(f"{count(explained)} {'was' if explained == 1 else 'were'} placed at a municipality that does "
                   "not meet a hard need, and ranks count only the household's eligible municipalities")
    if missing > explained:
        why.append(f"for {count(missing - explained)} the round stored no rank")
    have = "has" if missing == 1 else "have"
    return f"{label}: {count(missing)} of {counted(placed, 'household')} placed {have} no rank — {'; '.join(why)}."


def _methods(comparison: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The rank buckets (with any a round stored beyond ours) and, per method, its figures, rank counts and what
    is missing from them, so each row sums to the households the method placed."""
    present = [(key, label, dict(comparison[key] or {})) for key, label in METHODS if key in comparison]
    buckets = list(RANK_BUCKETS)
    for _, _, m in present:
        buckets += [b for b in m.get("preference_rank_distribution") or {} if b not in buckets]
    rows = []
    for key, label, m in present:
        dist = m.get("preference_rank_distribution") or {}
        ranks = [int(dist.get(b, 0)) for b in buckets]
        placed = int(m.get("households_placed") or 0)
        missing = placed - sum(ranks)
        rows.append({"key": key, "label": label, "m": m, "ranks": ranks, "no_rank": missing, "placed": placed,
                     "breaks": _breaks(m),
                     "no_rank_note": _no_rank_note(label, missing, placed, int(m.get("hard_need_violations") or 0))
                     if missing else ""})
    return buckets, rows


def _rank_chart(buckets: list[str], methods: list[dict[str, Any]], no_rank: bool) -> Any:
    labels = [f"rank {b}" for b in buckets] + (["no rank"] if no_rank else [])
    series = [Series(m["label"], m["ranks"] + ([max(m["no_rank"], 0)] if no_rank else []), m["breaks"])
              for m in methods]
    # The warning is in the legend; repeated at every bucket it would drown the counts.
    return hbar_chart("Preference rank of the assigned municipality (households)", labels, series,
                      fmt=count, warn_in_values=False) if series else None


def _comparison_chart(methods: list[dict[str, Any]]) -> Any:
    if not methods:
        return None
    series = [Series(m["label"], [int(m["m"].get("persons_placed") or 0), m["placed"]], m["breaks"]) for m in methods]
    return hbar_chart("Persons and households placed, ours versus the baselines",
                      ["persons placed", "households placed"], series,
                      fmt=[lambda v: counted(v, "person"), lambda v: counted(v, "household")])


def _offer_note(total: int, placed: int, state: str, round_id: str) -> str:
    if total == placed:
        return ""
    if total == 0:
        return (f"No offers yet: the round is {state}. `rematch round offer {round_id}` makes one offer to each of "
                f"the {counted(placed, 'household')} placed.")
    return f"{counted(total, 'offer')} for {counted(placed, 'household')} placed: one offer per household is expected."


LOOK_AHEAD_ENDINGS = {
    "optimal": "",
    "work_limit": "; an LP of a future stopped at its work limit, so fewer futures counted",
    "time_limit": "; the time limit cut the look-ahead's LPs, so a replay may differ",
}


def persons_proof(placed: int, bound: float) -> str:
    """Why persons placed are proven the most possible, in words (the round report and `rematch round status`):
    a gap to the LP bound beside the proof otherwise reads as a contradiction."""
    if proves_maximal(placed, bound):
        return f"persons are whole, and the persons bound, {fraction(bound)}, allows no whole person more"
    return ("the integer program over every eligible pair was solved to the end; the persons bound, "
            f"{fraction(bound)}, lies above what whole households can reach")



def look_ahead_line(ahead: dict[str, Any]) -> str:
    """What the look-ahead did in a round, in words (the round report and `rematch round status`)."""
    if ahead.get("status") == "no_arrivals":
        return ("no effect this round: every household in the pool was already in an earlier round's pool, so there "
                "were no new arrivals to estimate the coming weeks from")
    if ahead.get("solved") == 0:
        return ("no effect this round: no LP of a simulated future finished within its limits "
                + ("(the time limit cut them, so a replay may differ)" if ahead.get("status") == "time_limit"
                   else "(each stopped at its work limit)"))
    points = ahead.get("points")
    setting = (f"weight {number(ahead['weight'])}, {counted(ahead['rounds'], 'round')} ahead: "
               if ahead.get("weight") is not None and ahead.get("rounds") is not None else "")
    judged = (f"each household's place weighed against a plan for this round and the coming ones "
              f"(the plan places {count(ahead.get('planned_households'))} households of the pool)"
              if ahead.get("method", "prices") == "plan" else
              f"places at {count(ahead.get('priced_offers'))} capacity offers valued by what they are expected to "
              "place in the coming rounds")
    return (f"{setting}{judged}, judged from {counted(ahead.get('samples'), 'simulated set')} of future "
            f"arrivals of {counted(ahead.get('future_households'), 'household')} each (drawn from the "
            f"{counted(ahead.get('arrivals'), 'household')} new in the pool since the last round)"
            + (f", with {counted(ahead['later_offers'], 'capacity offer')} opening before the last of those rounds"
               if ahead.get("later_offers") else "")
            + (f"; look-ahead points included in match quality: {number(points)}" if points is not None else "")
            + LOOK_AHEAD_ENDINGS.get(str(ahead.get("status")), ""))


def _headline(stats: dict[str, Any], placed: int) -> str:
    """The solver's one-line result, with its numbers formatted (the stored message is plain text of the engine)."""
    if stats.get("persons_placed") is None or stats.get("persons_in_pool") is None:
        return str(stats.get("message", ""))
    return (f"{count(stats['persons_placed'])} of {counted(stats['persons_in_pool'], 'person')} placed by the round "
            f"({counted(placed, 'household')}), solver {stats.get('status', 'unknown')}")


def _proven(stats: dict[str, Any]) -> str:
    """Yes with its proof, or no."""
    placed, bound = stats.get("persons_placed"), stats.get("lp_bound_persons")
    if stats.get("persons_proven_maximal") and placed is not None and bound is not None:
        return f"yes: {persons_proof(int(placed), float(bound))}"
    return yes_no(stats.get("persons_proven_maximal"))


def _fill_label(row: dict[str, Any]) -> Any:
    """A share of no places is no number: an offer with none left says so (and how many it got)."""
    if not row["no_places_left"]:
        return percent
    used = row["persons_used"]
    return lambda _: "no places left" if not used else f"{counted(used, 'person')} placed, no places left"


def report_context(settings: Settings, round_id: str, out_dir: Path) -> dict[str, Any]:
    with reading(settings) as uow:
        r = require_round(uow, round_id)
        stats = dict(r.solver_stats or {})
        unmatched = uow.rounds.unmatched(round_id)
        assignments, offers = uow.rounds.assignments(round_id), uow.offers.of_round(round_id)
        fill = _fill_rows(r, uow.rounds.snapshot(round_id), assignments, offers)
        counts: Counter[str] = Counter(o.status for o in offers)
        answered = [o.resolved_at for o in offers if o.resolved_at is not None]
        placed = len(assignments)
        runs = uow.audit_trail.validations_until(r.solved_at or r.created_at)
    comparison = dict(stats.get("comparison") or {})
    rank_buckets, methods = _methods(comparison)
    no_rank = any(m["no_rank"] for m in methods)
    reasons = Counter(reason_group(u) for u in unmatched)
    reason_items = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    persons_by_reason: Counter[str] = Counter()
    for u in unmatched:
        persons_by_reason[reason_group(u)] += u.persons
    pool = stats.get("households")
    shadow = sorted(((float(e["persons_per_unit"]), p["ags"], p["municipality"], e["capacity"])
                     for p in stats.get("planning") or [] for e in p["extra_capacity"]),
                    key=lambda x: (-x[0], x[1], x[3]))[:SHADOW_PRICES_SHOWN]
    # Statuses we do not know of are shown too, so the offers always add up.
    statuses = list(OFFER_STATES) + sorted(s for s in counts if s not in OFFER_STATES)

    def rel(path: str | None) -> str | None:
        return os.path.relpath(path, out_dir) if path else None

    return {
        "round_id": round_id, "round_date": r.round_date.isoformat(), "state": r.status,
        "message": _headline(stats, placed), "stats": stats,
        "phases": [{**p, "label": PHASE_LABELS.get(str(p.get("phase")), ""),
                    "counts": PHASE_COUNTS.get(str(p.get("phase")), "")} for p in stats.get("phases") or []],
        # In the order of their words (persons, then quality, then the rest); statistics without words last.
        "stat_rows": [(STAT_LABELS.get(k, k), _proven(stats) if k == "persons_proven_maximal" else stat(k, stats[k]), k)
                      for k in
                      [k for k in STAT_LABELS if k in stats] + sorted(k for k in stats if k not in STAT_LABELS)
                      if k not in ("phases", "comparison", "planning", "deterministic_work")],
        "work": [(WORK_LABELS.get(k, k), v, k) for k, v in (stats.get("deterministic_work") or {}).items()],
        "quality_bound_note": QUALITY_BOUND_NOTE if any(p.get("phase") == "quality_bound"
                                                        for p in stats.get("phases") or []) else "",
        "terminations": [(w, TERMINATION_WORDS.get(w, "")) for w in
                         sorted({str(p.get("termination")) for p in stats.get("phases") or []})],
        "key_figures": [
            *((STAT_LABELS[k], fmt(stats.get(k))) for k, fmt in (
                ("households", count), ("persons_in_pool", count), ("persons_placed", count),
                ("lp_bound_persons", fraction), ("gap_to_lp", percent))),
            (STAT_LABELS["persons_proven_maximal"], _proven(stats)),
            *((STAT_LABELS[k], fmt(stats.get(k))) for k, fmt in (
                ("quality", number), ("quality_bound", number), ("quality_gap", percent))),
            # Only in rounds whose policy weighs balanced fill; match quality includes these points then.
            *([("balanced-fill points in match quality", number((stats.get("balanced_fill") or {}).get("points")))]
              if stats.get("balanced_fill") else []),
            # Only in rounds whose policy looks ahead; match quality includes its (never positive) points then.
            *([("look-ahead (places weighed for the coming rounds; its points are in match quality)",
                look_ahead_line(stats["look_ahead"]))] if stats.get("look_ahead") else []),
            (STAT_LABELS["eligible_pairs"], count(stats.get("eligible_pairs"))),
            (STAT_LABELS["candidate_pairs"], count(stats.get("candidate_pairs"))),
        ],
        "offer_counts": [(s, counts.get(s, 0)) for s in statuses],
        "offers_total": sum(counts.values()),
        "offers_note": _offer_note(sum(counts.values()), placed, r.status, round_id),
        # The report is written again as answers come in (packets DAG, `rematch round report`): say which it holds.
        "answers_as_of": (max(answered).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if answered
                          else "no answer recorded yet"),
        "methods": methods,
        "any_breaks": any(m["breaks"] for m in methods),
        "comparison_chart": _comparison_chart(methods),
        "rank_chart": _rank_chart(rank_buckets, methods, no_rank),
        "rank_buckets": rank_buckets,
        "no_rank": no_rank,
        "dimensions": [DIMENSION_LABELS[d] for d in CAPACITY_DIMENSIONS] + [f"units {k}+ rooms" for k in ROOM_CLASSES],
        "fill": fill,
        "fill_chart": hbar_chart("Persons placed as a share of the places left at round time, per municipality",
                                 [f"{f['municipality']} ({f['ags']})" for f in fill],
                                 [Series("persons fill", [f["persons_share"] for f in fill])],
                                 fmt=[_fill_label(f) for f in fill], max_value=1.0) if fill else None,
        "reasons": [(k, v, persons_by_reason[k]) for k, v in reason_items],
        "reason_chart": hbar_chart("Households left unmatched, by reason", [k for k, _ in reason_items],
                                   [Series("households", [v for _, v in reason_items])]) if reason_items else None,
        "reasons_total": (len(unmatched), sum(u.persons for u in unmatched)),
        # Every household of the pool is either placed or has an unmatched row; say so when they do not add up.
        "reasons_note": "" if pool is None or placed + len(unmatched) == pool else (
            f"{counted(placed, 'household')} placed and {count(len(unmatched))} unmatched make "
            f"{count(placed + len(unmatched))}, not the {count(pool)} of the pool."),
        "shadow": shadow,
        "shadow_chart": hbar_chart("Capacity shadow prices: persons more per extra unit (LP duals)",
                                   [f"{m} ({a}): {c}" for _, a, m, c in shadow],
                                   [Series("persons per extra unit", [v for v, *_ in shadow])],
                                   fmt=number) if shadow else None,
        "validations": [{"table": v["table_name"], "file": v["original_name"], "success": v["success"],
                         "evaluated": v["evaluated_rows"], "invalid": v["invalid_rows"], "link": rel(v["report_path"])}
                        for v in runs],
        "data_docs_index": rel(str(settings.data_docs / "index.html"))
        if (settings.data_docs / "index.html").is_file() else None,
        "audit_dir": "audit/" + round_id + "/",
        "export_files": ["assignments.csv", "round.json"],
    }


def write_round_report(settings: Settings, round_id: str, out_dir: Path | None = None) -> Path:
    """Write exports/<round>/round_report.html beside the round and audit exports; same data, same bytes."""
    from rematch_pipeline.audit import export_audit
    from rematch_pipeline.rounds import export_round

    require_schema(settings.database_url)
    out = out_dir or settings.exports / round_id
    out.mkdir(parents=True, exist_ok=True)
    export_round(settings, round_id, out)
    export_audit(settings, round_id, out / "audit")
    html = _ENV.get_template("round_report.html.j2").render(**report_context(settings, round_id, out))
    path = out / "round_report.html"
    write_atomic(path, html.encode("utf-8"))
    return path
