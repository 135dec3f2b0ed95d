"""The round report (HTML) for the data team and auditors: charts, solver statistics, validation and audit links."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy import select

from rematch_pipeline import store
from rematch_pipeline.config import Settings
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import require_schema
from rematch_pipeline.domain import CAPACITY_DIMENSIONS, ROOM_CLASSES, Capacity, Unmatched, demand_of, units_taken
from rematch_pipeline.matching.reasons import category
from rematch_pipeline.packets.render import document_environment, write_atomic
from rematch_pipeline.reports.charts import Series, hbar_chart, heat_color

TEMPLATE_DIR = Path(__file__).with_name("templates")
RANK_BUCKETS = ("1", "2", "3", "4-5", "6-10", "11+")
METHODS = (("rematch", "Re:Match (ours)"), ("greedy_by_score", "greedy by score"),
           ("state_quota", "state quota (Königstein key)"))
DIMENSION_LABELS = {
    "places_persons": "persons", "units_wheelchair": "wheelchair units", "units_pets_allowed": "pet units",
    "kita_u3": "Kita U3", "kita_ue3": "Kita Ü3", "school_primary": "primary", "school_secondary": "secondary",
    "language_course_seats": "language course",
}
SHADOW_PRICES_SHOWN = 25

_ENV = document_environment(TEMPLATE_DIR)


def reason_group(u: Unmatched) -> str:
    """Which need excluded most offers, or which capacity ran out at most of them; a round stored before reasons
    were kept as codes is grouped by its words."""
    return category(u.why) if u.why else u.reason


def _fill_rows(conn: Any, round_id: str, round_date: Any, policy: Any) -> list[dict[str, Any]]:
    """Per offer of the round: capacity left at round time and what this round assigned, in every dimension."""
    from rematch_pipeline.config import policy_from_dict
    from rematch_pipeline.snapshot import inputs_from_json, unpack

    snap = conn.execute(select(t.round_inputs).where(t.round_inputs.c.round_id == round_id)).first()
    if snap is None:
        return []
    inputs = inputs_from_json(unpack(snap.snapshot))
    pol = policy_from_dict(policy) if isinstance(policy, dict) and policy else inputs.policy
    households = {h.case_id: h for h in inputs.households}
    stored = {r.case_id: r.demand for r in conn.execute(
        select(t.match_offers.c.case_id, t.match_offers.c.demand).where(t.match_offers.c.round_id == round_id))}
    used: dict[str, Counter[str]] = {}
    for a in store.load_assignments(conn, round_id):
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
        cells = []
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
                     "persons_share": cells[0]["share"]})
    return rows


def _rank_chart(comparison: dict[str, Any]) -> Any:
    series = [Series(label, [int((comparison.get(key) or {}).get("preference_rank_distribution", {}).get(b, 0))
                             for b in RANK_BUCKETS]) for key, label in METHODS if key in comparison]
    return hbar_chart("Preference rank of the assigned municipality (households)",
                      [f"rank {b}" for b in RANK_BUCKETS], series) if series else None


def report_context(settings: Settings, round_id: str, out_dir: Path) -> dict[str, Any]:
    engine = settings.engine()
    with engine.connect() as conn:
        r = conn.execute(select(t.rounds).where(t.rounds.c.round_id == round_id)).first()
        if r is None:
            raise LookupError(f"round {round_id} does not exist")
        stats = dict(r.solver_stats or {})
        unmatched = store.load_unmatched(conn, round_id)
        fill = _fill_rows(conn, round_id, r.round_date, r.policy)
        counts: Counter[str] = Counter(s for (s,) in conn.execute(
            select(t.match_offers.c.status).where(t.match_offers.c.round_id == round_id)))
        cutoff = r.solved_at or r.created_at
        runs = conn.execute(select(t.validation_runs, t.raw_files.c.original_name)
                            .join(t.raw_files, t.raw_files.c.id == t.validation_runs.c.raw_file_id)
                            .where(t.validation_runs.c.created_at <= cutoff)
                            .order_by(t.validation_runs.c.id)).all()
    comparison = dict(stats.get("comparison") or {})
    reasons = Counter(reason_group(u) for u in unmatched)
    reason_items = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
    persons_by_reason: Counter[str] = Counter()
    for u in unmatched:
        persons_by_reason[reason_group(u)] += u.persons
    shadow = sorted(((float(e["persons_per_unit"]), p["ags"], p["municipality"], e["capacity"])
                     for p in stats.get("planning") or [] for e in p["extra_capacity"]),
                    key=lambda x: (-x[0], x[1], x[3]))[:SHADOW_PRICES_SHOWN]

    def rel(path: str | None) -> str | None:
        return os.path.relpath(path, out_dir) if path else None

    return {
        "round_id": round_id, "round_date": r.round_date.isoformat(), "state": r.status,
        "message": stats.get("message", ""), "stats": stats,
        "phases": stats.get("phases") or [],
        "key_figures": [
            ("households in the pool", stats.get("households")), ("persons in the pool", stats.get("persons_in_pool")),
            ("persons placed", stats.get("persons_placed")),
            ("LP bound on persons (all eligible pairs)", stats.get("lp_bound_persons")),
            ("gap to the LP bound", stats.get("gap_to_lp")),
            ("persons proven maximal", stats.get("persons_proven_maximal")),
            ("match quality", stats.get("quality")),
            ("quality bound (LP, all eligible pairs, persons as placed)", stats.get("quality_bound")),
            ("quality gap", stats.get("quality_gap")),
            # Only in rounds whose policy weighs balanced fill; match quality includes these points then.
            *([("balanced-fill points in match quality", (stats.get("balanced_fill") or {}).get("points"))]
              if stats.get("balanced_fill") else []),
            ("eligible pairs", stats.get("eligible_pairs")),
            ("candidate pairs in the model", stats.get("candidate_pairs")),
        ],
        "offer_counts": [(s, counts.get(s, 0)) for s in ("pending", "accepted", "declined", "expired")],
        "methods": [(label, comparison[key]) for key, label in METHODS if key in comparison],
        "comparison_chart": hbar_chart(
            "Persons and households placed, ours versus the baselines", ["persons placed", "households placed"],
            [Series(label, [int(comparison[key].get("persons_placed", 0)),
                            int(comparison[key].get("households_placed", 0))])
             for key, label in METHODS if key in comparison]) if comparison else None,
        "rank_chart": _rank_chart(comparison),
        "rank_buckets": RANK_BUCKETS,
        "dimensions": [DIMENSION_LABELS[d] for d in CAPACITY_DIMENSIONS] + [f"units {k}+ rooms" for k in ROOM_CLASSES],
        "fill": fill,
        "fill_chart": hbar_chart("Persons placed as a share of the places left at round time, per municipality",
                                 [f"{f['municipality']} ({f['ags']})" for f in fill],
                                 [Series("persons fill", [round(100 * f["persons_share"], 1) for f in fill])],
                                 unit=" %", max_value=100.0) if fill else None,
        "reasons": [(k, v, persons_by_reason[k]) for k, v in reason_items],
        "reason_chart": hbar_chart("Households left unmatched, by reason", [k for k, _ in reason_items],
                                   [Series("households", [v for _, v in reason_items])]) if reason_items else None,
        "shadow": shadow,
        "shadow_chart": hbar_chart("Capacity shadow prices: persons more per extra unit (LP duals)",
                                   [f"{m} ({a}): {c}" for _, a, m, c in shadow],
                                   [Series("persons per extra unit", [v for v, *_ in shadow])]) if shadow else None,
        "validations": [{"table": v.table_name, "file": v.original_name, "success": v.success,
                         "evaluated": v.evaluated_rows, "invalid": v.invalid_rows, "link": rel(v.report_path)}
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
