"""Matching rounds as a service: load the pool, solve once per round date, store, export."""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from rematch_pipeline import offers, progress
from rematch_pipeline.config import Settings, exported_policy, policy_to_dict
from rematch_pipeline.db.engine import require_schema
from rematch_pipeline.domain import MatchingRound, Policy
from rematch_pipeline.forms import safe_text
from rematch_pipeline.matching.engine import match
from rematch_pipeline.matching.solve import deterministic_work
from rematch_pipeline.repository import UnitOfWork, reading, require_round, unit_of_work
from rematch_pipeline.snapshot import RoundInputs, inputs_from_json, pack, unpack

log = logging.getLogger(__name__)

SOLVED_STATES = ("solved", "offered", "closed")


def round_id_for(round_date: date) -> str:
    return f"R-{round_date.isoformat()}"


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
    offers: dict[str, Any] = dataclasses.field(default_factory=dict)  # offered, accepted, declined, expired, pending
    warnings: list[str] = dataclasses.field(default_factory=list)  # e.g. an offer cut below what its offers hold

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["round_date"] = self.round_date.isoformat()
        return d


def plan_round(settings: Settings, policy: Policy, round_date: date, actor: str = "cli") -> str:
    """Record the round for `round_date` as planned with its policy (idempotent); returns the round id."""
    require_schema(settings.database_url)
    round_id = round_id_for(round_date)
    with unit_of_work(settings) as uow:
        uow.rounds.lock(round_id)
        if uow.rounds.get(round_id) is None:
            at = settings.clock.now()
            uow.rounds.add(MatchingRound(round_id, round_date, "planned", policy=policy_to_dict(policy), created_at=at))
            uow.audit(actor, "round_planned", round_id, {"round_date": round_date.isoformat()}, at)
    return round_id


def load_round_inputs(uow: UnitOfWork, round_id: str, round_date: date, policy: Policy) -> RoundInputs:
    """The pool and capacity at round time: consenting households waiting without an open offer, declined
    municipalities excluded, offers valid on the date minus what accepted and pending offers take."""
    open_offers = offers.households_with_open_offers(uow)
    households = [h for h in uow.households.pool() if h.case_id not in open_offers]
    arrivals, later = None, None
    if policy.look_ahead_weight > 0:
        seen = uow.rounds.seen_before(round_date)
        arrivals = sorted(h.case_id for h in households if h.case_id not in seen)
        last = round_date + timedelta(days=policy.look_ahead_interval_days * policy.look_ahead_rounds)
        later = [o for o in uow.capacity_offers.all() if round_date < o.valid_from <= last]
    return RoundInputs(round_id=round_id, round_date=round_date, policy=policy, households=households,
                       offers=uow.capacity_offers.all(valid_on=round_date), declined=offers.declined_pairs(uow),
                       consumed=offers.consumed_capacity(uow), arrivals=arrivals, later_offers=later)


def _status(settings: Settings, round_id: str) -> str | None:
    require_schema(settings.database_url)
    with reading(settings) as uow:
        rnd = uow.rounds.get(round_id)
    return None if rnd is None else rnd.status


def run_round(settings: Settings, policy: Policy, round_date: date, actor: str = "cli", *,
              allow_future: bool = False) -> RoundSummary:
    """Plan and solve the round for `round_date` once; a rerun returns the stored round unchanged (idempotent),
    except a round that had nothing to solve (no households, no valid offers, or no eligible pair) and made no
    offers: it is solved again, so a round run before the day's files arrived does not use up the day.

    Everything the solve writes (expired offers, snapshot, assignments, state, audit) is one transaction. A date
    after today is refused unless `allow_future` (solving settles the offers as of that day).
    """
    today = settings.clock.today()
    if not allow_future and round_date > today and _status(settings, round_id_for(round_date)) not in SOLVED_STATES:
        refuse_future(round_date, today, "the round date")  # (a round solved before is only read back)
    round_id = plan_round(settings, policy, round_date, actor)
    with unit_of_work(settings) as uow:
        uow.rounds.lock(round_id)
        rnd = require_round(uow, round_id)
        empty_before = rnd.status in SOLVED_STATES and _had_nothing_to_solve(uow, rnd)
        solved_before = rnd.status in SOLVED_STATES and not empty_before
        if not solved_before:
            with progress.step(f"round {round_id}"):
                _solve(uow, rnd, policy, actor, settings.clock.now(), again=empty_before)
    return summarize(settings, round_id, already_existed=solved_before)


def _had_nothing_to_solve(uow: UnitOfWork, rnd: MatchingRound) -> bool:
    """The round's solve found nothing to match, and it made no offers: nothing depends on it yet."""
    return (rnd.solver_stats or {}).get("status") == "empty" and not uow.offers.of_round(rnd.round_id)


def _solve(uow: UnitOfWork, rnd: MatchingRound, policy: Policy, actor: str, at: datetime,
           again: bool = False) -> None:
    round_id, round_date = rnd.round_id, rnd.round_date
    # Unanswered offers of earlier rounds return to the pool.
    offers.expire_offers(uow, round_date, actor, at)
    inputs = load_round_inputs(uow, round_id, round_date, policy)
    blob, digest = pack(inputs)
    checksums = {**inputs.checksums(), "snapshot": digest}
    result = match(inputs.households, inputs.offers, round_date, policy, round_id, inputs.declined,
                   inputs.consumed, inputs.arrivals, inputs.later_offers)
    status = "failed" if result.status == "infeasible" else "solved"
    stats = dict(result.stats)
    stats["message"] = result.message
    stats["planning"] = result.planning
    # A failed round may be retried; its earlier rows are replaced.
    solved = dataclasses.replace(rnd, status=status, policy=policy_to_dict(policy), solver_stats=stats,
                                 input_checksums=checksums, solved_at=at)
    uow.rounds.record_solve(solved, blob, digest, result.assignments, result.unmatched)
    # `again`: an earlier solve of this round had nothing to match; the audit log keeps both.
    uow.audit(actor, "round_solved" if status == "solved" else "round_failed", round_id,
              {"status": result.status, "persons_placed": result.persons_placed,
               "households": len(inputs.households), "input_checksums": checksums,
               **({"solved_again_after": "nothing to solve"} if again else {})}, at)
    log.info("round %s %s: %s", round_id, status, result.message)


def offer_round(settings: Settings, round_id: str, actor: str = "cli") -> int:
    """Make the offers of a solved round (idempotent: an offered or closed round is left as it is)."""
    require_schema(settings.database_url)
    with unit_of_work(settings) as uow:
        uow.rounds.lock(round_id)
        status = require_round(uow, round_id).status
        if status in ("offered", "closed"):
            return 0
        if status != "solved":
            raise RuntimeError(f"round {round_id} is {status}; only a solved round can make offers")
        made = offers.make_offers(uow, round_id, actor, settings.clock.now())
    log.info("round %s: %d offers made", round_id, made)
    return made


class FutureDateError(ValueError):
    """A round or settlement dated after today, refused: see `refuse_future`."""


def refuse_future(day: date, today: date, what: str) -> None:
    """Settling as of a day after today expires offers whose deadline has not passed yet, and expiry cannot be
    undone: a mistyped date would send every household with an open offer back to the pool. Refused, in words."""
    if day > today:
        raise FutureDateError(f"{what} {day} is after today ({today}): offers whose deadline has not passed would "
                              "expire for good")


def settle_offers(settings: Settings, today: date, actor: str = "cli", *, allow_future: bool = False) -> int:
    """Expire unanswered offers whose deadline passed before `today`; rounds with nothing pending close. A `today`
    after the clock's today is refused unless `allow_future`."""
    if not allow_future:
        refuse_future(today, settings.clock.today(), "the settlement date")
    require_schema(settings.database_url)
    with unit_of_work(settings) as uow:
        return offers.expire_offers(uow, today, actor, settings.clock.now())


def decide(settings: Settings, case_id: str, round_id: str, decision: str, reason: str | None = None,
           decided_at: datetime | None = None, actor: str = "cli") -> None:
    """Record one household's answer entered by hand (given now, unless `decided_at` says when it was given); a
    decision that cannot apply is quarantined and raised."""
    require_schema(settings.database_url)
    at = settings.clock.now()
    when = decided_at or at
    with unit_of_work(settings) as uow:
        outcome = offers.record_decision(uow, case_id, round_id, decision, when, reason, actor, at, source="cli")
        if outcome != "inserted":
            field, rule, message = offers.DECISION_REJECTS[outcome]
            uow.quarantine.add(raw_file_id=None, table_name="decisions", field=field, rule=rule, message=message,
                               record={"case_id": case_id, "round_id": round_id, "decision": decision,
                                       "decided_at": when.isoformat(), "source": "cli"}, at=at)
            # The audit trail is exported: it names the case only when it is one we hold, never what was typed.
            named = case_id if uow.personal_data.held([case_id]) else None
            uow.audit(actor, "decision_rejected", round_id, {"case_id": named, "rule": rule}, at)
    if outcome != "inserted":
        raise offers.DecisionError(outcome)


def summarize(settings: Settings, round_id: str, already_existed: bool = False) -> RoundSummary:
    require_schema(settings.database_url)
    with reading(settings) as uow:
        r = require_round(uow, round_id)
        assignments = uow.rounds.assignments(round_id)
        unmatched = uow.rounds.unmatched(round_id)
        snapshot = uow.rounds.snapshot(round_id)
        # The offers as the round saw them: capacity sent after it (or changed since) is not the round's.
        capacity = {o.offer_id: o for o in (inputs_from_json(unpack(snapshot.data)).offers if snapshot
                                            else uow.capacity_offers.all())}
        made = uow.offers.of_round(round_id)
        warnings = [w for _, w in offers.overcommitted(uow, {a.offer_id for a in assignments})]
    counts = offers.offer_counts(made)
    accepted: dict[str, int] = {}
    for m in made:
        if m.status == offers.ACCEPTED:
            accepted[m.offer_id] = accepted.get(m.offer_id, 0) + m.persons
    stats = dict(r.solver_stats or {})
    if stats.get("status") == "time_limit":
        warnings.insert(0, TIME_LIMIT_WARNING)
    # Every offer valid in the round, also those that received nobody.
    placed_by_offer = {oid: 0 for oid, o in capacity.items() if o.is_valid_on(r.round_date)}
    for a in assignments:
        placed_by_offer[a.offer_id] = placed_by_offer.get(a.offer_id, 0) + a.persons
    fill = []
    for oid, persons in sorted(placed_by_offer.items(), key=lambda kv: (capacity[kv[0]].ags, kv[0])):
        o = capacity[oid]
        fill.append({"ags": o.ags, "municipality": o.municipality_name, "persons_placed": persons,
                     "persons_accepted": accepted.get(oid, 0), "places_persons": o.places_persons,
                     "fill": round(persons / o.places_persons, 4) if o.places_persons else 0.0})
    return RoundSummary(
        round_id=round_id, round_date=r.round_date, status=r.status, message=str(stats.get("message", "")),
        households=len(assignments) + len(unmatched),
        persons_in_pool=sum(a.persons for a in assignments) + sum(u.persons for u in unmatched),
        households_placed=len(assignments), persons_placed=sum(a.persons for a in assignments),
        fill=fill, stats=stats, already_existed=already_existed, offers=counts, warnings=warnings,
    )


# A round stops by work (the same on every machine) unless the clock, its safety net, cut it short.
TIME_LIMIT_WARNING = ("the solve reached its time limit before its fixed work was done, so this round's assignments "
                      "depend on the speed of the machine: a replay elsewhere may differ (raise time_limit_s or run "
                      "it on a less busy machine)")


def latest_round_id(settings: Settings) -> str:
    require_schema(settings.database_url)
    with reading(settings) as uow:
        rounds = uow.rounds.ids(newest_first=True)
    if not rounds:
        raise LookupError("there is no round yet; run `rematch round run --date YYYY-MM-DD` first")
    return rounds[0]


@dataclass
class ReplayReport:
    round_id: str
    identical: bool
    stored_assignments: int
    replayed_assignments: int
    differences: list[dict[str, str]]  # case_id, stored AGS, replayed AGS (empty string: unmatched)
    solver_status: str
    note: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _why_different(stored: dict[str, int] | None) -> str:
    """What an auditor can conclude from a replay that differs although no clock cut the round: only the work
    limits are compared, so a change to the stored assignments after the solve is always among the causes."""
    tampered = ("the stored assignments were changed after the round was solved (this software writes them only "
                "when it solves the round, so that would be a change made directly in the database)")
    if stored is None:
        return (f"either {tampered}, or the software changed since the round was solved: the round was stored before "
                "rounds recorded their work limits, so this replay cannot tell which")
    now = deterministic_work()
    changed = sorted(k for k in set(stored) | set(now) if stored.get(k) != now.get(k))
    if changed:
        return (f"either {tampered}, or the difference comes from the work limits, which are not those the round "
                f"was solved with ({', '.join(changed)})")
    return (f"either {tampered}, or the software changed since the round was solved (its inputs, policy and work "
            "limits are the same); if neither, please report it to the data team as a fault")


def replay_round(settings: Settings, round_id: str) -> ReplayReport:
    """Re-solve a round from its stored snapshot and compare with the stored assignments."""
    require_schema(settings.database_url)
    with reading(settings) as uow:
        snap = uow.rounds.snapshot(round_id)
        if snap is None:
            raise LookupError(f"round {round_id} has no stored input snapshot (not solved, or solved before "
                              "snapshots were kept)")
        stored = {a.case_id: a.ags for a in uow.rounds.assignments(round_id)}
        rnd = require_round(uow, round_id)
        stats = dict(rnd.solver_stats or {})
    if snap.purged_cases:
        raise LookupError(f"round {round_id} cannot be replayed: {snap.purged_cases} household(s) in its snapshot "
                          "were erased or purged (retention), so its inputs no longer exist")
    inputs = inputs_from_json(unpack(snap.data))
    with progress.step(f"replaying round {round_id}"):
        result = match(inputs.households, inputs.offers, inputs.round_date, inputs.policy, round_id,
                       inputs.declined, inputs.consumed, inputs.arrivals, inputs.later_offers)
    replayed = {a.case_id: a.ags for a in result.assignments}
    differences = [{"case_id": c, "stored": stored.get(c, ""), "replayed": replayed.get(c, "")}
                   for c in sorted(set(stored) | set(replayed)) if stored.get(c) != replayed.get(c)]
    note = TIME_LIMIT_WARNING if stats.get("status") == "time_limit" else \
        _why_different(stats.get("deterministic_work")) if differences else ""
    return ReplayReport(round_id, not differences, len(stored), len(replayed), differences, result.status, note)


def export_round(settings: Settings, round_id: str, out_dir: Path) -> tuple[Path, Path]:
    """Write assignments.csv and round.json as in section 4 of the data contract."""
    require_schema(settings.database_url)
    with reading(settings) as uow:
        r = require_round(uow, round_id)
        assignments = uow.rounds.assignments(round_id)
        unmatched = uow.rounds.unmatched(round_id)
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
        "policy": exported_policy(r.policy),
    }
    json_path = out_dir / "round.json"
    json_path.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    return csv_path, json_path
