"""Matching rounds as a service: load the pool, solve once per round date, store, export."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from rematch_pipeline import store
from rematch_pipeline.config import Settings
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine, migrate
from rematch_pipeline.domain import Household, Policy
from rematch_pipeline.forms import safe_text
from rematch_pipeline.matching.engine import match

log = logging.getLogger(__name__)

SOLVED_STATES = ("solved", "offered", "closed")


def round_id_for(round_date: date) -> str:
    return f"R-{round_date.isoformat()}"


def _checksum(obj: Any) -> str:
    return hashlib.sha256(store.canonical_json(obj).encode()).hexdigest()


def _household_snapshot(h: Household) -> dict[str, Any]:
    # Checksums cover what the solver saw, without contact data or free text.
    d = dataclasses.asdict(h)
    for personal in ("contact_phone", "contact_email", "notes", "interview_location"):
        d.pop(personal, None)
    return d


@dataclass
class RoundSummary:
    round_id: str
    round_date: date
    status: str
    message: str
    households: int
    persons_in_pool: int
    households_placed: int
    persons_placed: int
    fill: list[dict[str, Any]]  # per municipality: ags, name, persons placed, places, share
    stats: dict[str, Any]
    already_existed: bool = False

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["round_date"] = self.round_date.isoformat()
        return d


def run_round(settings: Settings, policy: Policy, round_date: date, actor: str = "cli") -> RoundSummary:
    """Solve the round for `round_date` once; a rerun returns the stored round unchanged (idempotent)."""
    migrate(settings.database_url)
    engine = get_engine(settings.database_url)
    round_id = round_id_for(round_date)
    with engine.connect() as conn:
        row = conn.execute(select(t.rounds).where(t.rounds.c.round_id == round_id)).first()
    if row is not None and row.status in SOLVED_STATES:
        return summarize(settings, round_id, already_existed=True)
    with engine.connect() as conn:
        households = store.load_households(conn, pool_only=True)
        offers = store.load_offers(conn, valid_on=round_date)
    checksums = {
        "households": _checksum([_household_snapshot(h) for h in households]),
        "capacity_offers": _checksum([dataclasses.asdict(o) for o in offers]),
        "policy": _checksum(dataclasses.asdict(policy)),
    }
    result = match(households, offers, round_date, policy, round_id)
    status = "failed" if result.status == "infeasible" else "solved"
    stats = dict(result.stats)
    stats["message"] = result.message
    stats["planning"] = result.planning
    with engine.begin() as conn:  # every write of the round in one transaction
        values = dict(round_date=round_date, status=status, policy=dataclasses.asdict(policy), solver_stats=stats,
                      input_checksums=checksums, solved_at=store.now())
        if row is None:
            conn.execute(insert(t.rounds).values(round_id=round_id, created_at=store.now(), **values))
        else:  # a failed round may be retried; its earlier partial rows are replaced
            conn.execute(t.assignments.delete().where(t.assignments.c.round_id == round_id))
            conn.execute(t.unmatched.delete().where(t.unmatched.c.round_id == round_id))
            conn.execute(update(t.rounds).where(t.rounds.c.round_id == round_id).values(**values))
        store.save_assignments(conn, result.assignments, result.unmatched)
        store.audit(conn, actor, "round_solved" if status == "solved" else "round_failed", round_id,
                    {"status": result.status, "persons_placed": result.persons_placed,
                     "households": len(households), "input_checksums": checksums})
    log.info("round %s %s: %s", round_id, status, result.message)
    return summarize(settings, round_id)


def summarize(settings: Settings, round_id: str, already_existed: bool = False) -> RoundSummary:
    engine = get_engine(settings.database_url)
    with engine.connect() as conn:
        r = conn.execute(select(t.rounds).where(t.rounds.c.round_id == round_id)).first()
        if r is None:
            raise LookupError(f"round {round_id} does not exist; run `rematch round run --date YYYY-MM-DD` first")
        assignments = store.load_assignments(conn, round_id)
        unmatched = store.load_unmatched(conn, round_id)
        offers = {o.offer_id: o for o in store.load_offers(conn)}
    stats = dict(r.solver_stats or {})
    # Every offer valid in the round, also those that received nobody.
    placed_by_offer = {oid: 0 for oid, o in offers.items() if o.is_valid_on(r.round_date)}
    for a in assignments:
        placed_by_offer[a.offer_id] = placed_by_offer.get(a.offer_id, 0) + a.persons
    fill = []
    for oid, persons in sorted(placed_by_offer.items(), key=lambda kv: (offers[kv[0]].ags, kv[0])):
        o = offers[oid]
        fill.append({"ags": o.ags, "municipality": o.municipality_name, "persons_placed": persons,
                     "places_persons": o.places_persons, "fill": round(persons / o.places_persons, 4)})
    return RoundSummary(
        round_id=round_id, round_date=r.round_date, status=r.status, message=str(stats.get("message", "")),
        households=len(assignments) + len(unmatched),
        persons_in_pool=sum(a.persons for a in assignments) + sum(u.persons for u in unmatched),
        households_placed=len(assignments), persons_placed=sum(a.persons for a in assignments),
        fill=fill, stats=stats, already_existed=already_existed,
    )


def export_round(settings: Settings, round_id: str, out_dir: Path) -> tuple[Path, Path]:
    """Write assignments.csv and round.json as in section 4 of the data contract."""
    engine = get_engine(settings.database_url)
    with engine.connect() as conn:
        r = conn.execute(select(t.rounds).where(t.rounds.c.round_id == round_id)).first()
        if r is None:
            raise LookupError(f"round {round_id} does not exist")
        assignments = store.load_assignments(conn, round_id)
        unmatched = store.load_unmatched(conn, round_id)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / "assignments.csv"
    rows: list[dict[str, Any]] = [
        {"round_id": a.round_id, "case_id": a.case_id, "ags": a.ags, "persons": a.persons,
         "score": f"{a.score:.6f}", "preference_rank": a.preference_rank, "unmatched_reason": ""}
        for a in assignments
    ] + [
        {"round_id": u.round_id, "case_id": u.case_id, "ags": "", "persons": u.persons, "score": "",
         "preference_rank": "", "unmatched_reason": u.reason}
        for u in unmatched
    ]
    rows.sort(key=lambda d: str(d["case_id"]))
    with open(csv_path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["round_id", "case_id", "ags", "persons", "score", "preference_rank",
                                           "unmatched_reason"])
        w.writeheader()
        # Every text cell is neutralised: a value starting with = + - @ must never run as a spreadsheet formula.
        w.writerows({k: safe_text(v) for k, v in row.items()} for row in rows)
    stats = dict(r.solver_stats or {})
    doc = {
        "round_id": round_id,
        "round_date": r.round_date.isoformat(),
        "status": r.status,
        "solver_status": stats.get("status"),
        "objective": {"persons_placed": stats.get("persons_placed"), "quality": stats.get("quality")},
        "bound": {"persons": stats.get("lp_bound_persons"), "quality": stats.get("quality_bound")},
        "gap": {"persons_to_lp": stats.get("gap_to_lp"), "quality": stats.get("quality_gap")},
        "persons_proven_maximal": stats.get("persons_proven_maximal"),
        "comparison_with_baselines": stats.get("comparison"),
        "planning_report": stats.get("planning"),
        "wall_time_s": round(float(stats.get("data_s", 0) or 0) + float(stats.get("build_s", 0) or 0)
                             + float(stats.get("solve_s", 0) or 0), 3),
        "input_checksums": r.input_checksums,
        "solver_stats": {k: v for k, v in stats.items() if k not in ("comparison", "planning")},
        "policy": r.policy,
    }
    json_path = out_dir / "round.json"
    json_path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return csv_path, json_path
