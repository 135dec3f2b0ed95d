"""Weekly rounds through the real pipeline (ingest, round, offers, decisions, expiry) on a throwaway home."""

from __future__ import annotations

import csv
import dataclasses
import math
import random
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from pathlib import Path
from typing import Any

import numpy as np

from rematch_pipeline import offers as offer_rules
from rematch_pipeline import progress
from rematch_pipeline.clock import ManualClock
from rematch_pipeline.config import (
    Settings,
    load_policy,
    policy_to_dict,
    policy_with,
    validate_policy,
)
from rematch_pipeline.contract import DECISION_FIELDS
from rematch_pipeline.db.engine import migrate
from rematch_pipeline.domain import ACCEPTED, CAPACITY_DIMENSIONS, DECLINED, Capacity, CapacityOffer, Household, Policy
from rematch_pipeline.ingest.service import ingest_file
from rematch_pipeline.matching.data import build_data
from rematch_pipeline.matching.scoring import future_points
from rematch_pipeline.repository import reading
from rematch_pipeline.rounds import load_round_inputs, offer_round, run_round, settle_offers
from rematch_pipeline.scenario import DEFAULT_ROUND_DATE
from rematch_pipeline.simulation import DEFAULTS, LOOK_AHEAD_WEIGHT, PLANS, SECOND_PROCESS_FROM
from rematch_pipeline.simulation.arrivals import WeekFiles, generate_weeks
from rematch_pipeline.simulation.beside import SecondProcess
from rematch_pipeline.simulation.hindsight import HindsightResult, solve_hindsight

ACTOR = "simulate"
ANSWERED_AT = day_time(10, 0)  # households answer in office hours (UTC) on the day they answer


@dataclass(frozen=True)
class SimulationParameters:
    weeks: int
    arrivals_per_week: int
    municipalities: int
    seed: int = 1
    start: date = DEFAULT_ROUND_DATE
    accept_share: float = DEFAULTS["accept_share"]  # of the offers made, answered "accept"
    decline_share: float = DEFAULTS["decline_share"]  # answered "decline"; the rest are never answered and expire
    response_days: int = DEFAULTS["response_days"]  # days after the round the answers come back
    capacity_share: float = DEFAULTS["capacity_share"]  # initial capacity for this share of the horizon's arrivals
    renew_every_weeks: int = DEFAULTS["renew_every_weeks"]  # 0: no renewals
    renew_share: float = DEFAULTS["renew_share"]  # each renewal offers this share of the initial offer again
    # The look-ahead run: the same weeks again with the policy's look_ahead_weight set to this; 0: no such run.
    look_ahead_weight: float = LOOK_AHEAD_WEIGHT
    look_ahead_rounds: int | None = None  # the look-ahead run's rounds ahead; None: the policy's
    # A round every this many weeks, on the same arrivals (each round takes all of its weeks' arrivals).
    round_every_weeks: int = DEFAULTS["round_every_weeks"]
    # (AGS, capacity column, amount) added to that municipality's first offer: "what if Kiel added five flats".
    added_capacity: tuple[tuple[str, str, int], ...] = ()

    def check(self, policy: Policy) -> None:
        """Refuse parameters no run can honour, naming the option (`--KEY`, or KEY= in a what-if variant)."""
        for plan in PLANS:
            value = getattr(self, plan.field)
            if isinstance(value, float) and not math.isfinite(value):  # nan passes every comparison below
                raise ValueError(f"{plan.key} takes a number, not {value}")
        if self.weeks < 1 or self.arrivals_per_week < 1 or self.municipalities < 1:
            raise ValueError("a simulation needs at least one week, one arrival a week and one municipality")
        if not (0 <= self.accept_share <= 1 and 0 <= self.decline_share <= 1
                and self.accept_share + self.decline_share <= 1):
            raise ValueError("accept-share and decline-share are between 0 and 1 and add up to at most 1")
        if not 0 <= self.response_days < min(7, policy.offer_response_days + 1):
            raise ValueError(f"answers come back within the week and the offer's {policy.offer_response_days} days "
                             "to answer: response-days is 0 to 6")
        if self.capacity_share <= 0 or self.renew_every_weeks < 0 or self.renew_share < 0:
            raise ValueError("capacity-share is above 0; renew-every and renew-share at least 0")
        if not 1 <= self.round_every_weeks <= self.weeks or self.weeks % self.round_every_weeks:
            raise ValueError(f"round-every is at least 1 and divides the weeks (whole rounds over the horizon): "
                             f"{self.round_every_weeks} does not divide {self.weeks} weeks")
        if self.look_ahead_rounds is not None and not self.look_ahead_weight:
            raise ValueError("look-ahead-rounds needs a look-ahead run: leave look-ahead-rounds out, or give a "
                             "look-ahead-weight above 0")
        if self.look_ahead_weight:
            # The look-ahead run's settings are its policy's, so the policy's rules check them (one home).
            validate_policy(self.look_ahead_policy(policy),
                            "the look-ahead run (look-ahead-weight, look-ahead-rounds, round-every)")

    def look_ahead_policy(self, policy: Policy) -> Policy:
        """The look-ahead run's policy: its weight and rounds, and rounds ahead as far apart as the simulation's,
        whatever the policy file says."""
        return policy_with(policy, look_ahead_weight=self.look_ahead_weight,
                           look_ahead_interval_days=7 * self.round_every_weeks,
                           look_ahead_rounds=policy.look_ahead_rounds if self.look_ahead_rounds is None
                           else self.look_ahead_rounds)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["start"] = self.start.isoformat()
        return d


@dataclass
class SimulationRun:
    """What the weekly rounds did: per week, the arrivals, and the summary (JSON) with timings kept apart."""

    summary: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)  # never in the summary: it is the same on every run


def wait_stats(weeks_waited: Sequence[int]) -> dict[str, float | int | None]:
    """Mean, 90th percentile (nearest rank) and maximum of weeks in the pool."""
    if not weeks_waited:
        return {"mean": None, "p90": None, "max": None}
    ordered = sorted(weeks_waited)
    return {"mean": round(sum(ordered) / len(ordered), 3), "p90": ordered[math.ceil(0.9 * len(ordered)) - 1],
            "max": ordered[-1]}


def run_simulation(params: SimulationParameters, policy: Policy | None = None,
                   weeks: Sequence[WeekFiles] | None = None, processes: int = 1) -> SimulationRun:
    """Run the weekly rounds on a new home in a temporary folder (deleted afterwards); `weeks` replaces the
    generated exports (a test's hand-made case). Never reads or writes the user's REMATCH_HOME or database.
    `processes`: 2 runs the myopic rounds and the hindsight in a second process beside the look-ahead's rounds (a
    script calling it so needs the `if __name__ == "__main__":` guard of spawned processes), 1 all in this one; the
    same summary either way."""
    policy = policy or load_policy()
    params.check(policy)
    with tempfile.TemporaryDirectory(prefix="rematch-simulate-") as tmp:
        t0 = time.perf_counter()
        if weeks is None:
            with progress.step("generating the weekly exports"):
                every = params.round_every_weeks
                # Renewals every K weeks come with every K // every-th round (at least every round).
                renew = max(1, params.renew_every_weeks // every) if params.renew_every_weeks else 0
                weeks = generate_weeks(Path(tmp) / "exports", weeks=params.weeks // every,
                                       arrivals_per_week=params.arrivals_per_week * every,
                                       municipalities=params.municipalities, seed=params.seed, start=params.start,
                                       capacity_share=params.capacity_share, renew_every_weeks=renew,
                                       renew_share=params.renew_share, interval_days=7 * every,
                                       added=params.added_capacity)
        if not weeks:
            raise ValueError("a simulation needs at least one week")
        timings = {"generate_s": time.perf_counter() - t0}
        myopic = policy_with(policy, look_ahead_weight=0.0)
        ahead = params.look_ahead_policy(policy) if params.look_ahead_weight > 0 else None
        if ahead is None or processes < 2:
            first = _Simulation(_home(Path(tmp), "myopic", params.start), myopic, params, timings, "").run(weeks)
            runs = [first]
            if ahead is not None:
                runs.append(_Simulation(_home(Path(tmp), "look_ahead", params.start), ahead, params, timings,
                                        "look_ahead_").run(weeks))
            hindsight = _hindsight(first, myopic, _union(r.declined for r in runs), timings)
        else:
            # The myopic rounds and their hindsight in a second process beside the rounds that look ahead: the
            # runs share nothing but the exports, so each gives what it gives alone (docs/solver-tuning.md).
            with SecondProcess("the myopic rounds", _myopic_and_hindsight, Path(tmp), myopic, params,
                               weeks) as beside:
                later = _Simulation(_home(Path(tmp), "look_ahead", params.start), ahead, params, timings,
                                    "look_ahead_").run(weeks, between=beside.check)
                with progress.step("the myopic rounds and the hindsight optimum, in a second process"):
                    first, hindsight, their = beside.result()
            timings.update(their)
            timings["processes"] = 2
            runs = [first, later]
            declined = _union(r.declined for r in runs)
            if declined != first.declined:  # the hindsight respects every decline of either run: solved again
                beside_s = timings["hindsight_s"]
                for key in [k for k in timings if k.startswith("hindsight_")]:
                    del timings[key]
                hindsight = _hindsight(first, myopic, declined, timings)
                timings["hindsight_beside_s"] = beside_s
        summary = _summary(params, runs, hindsight, weeks)
        timings["total_s"] = time.perf_counter() - t0
        return SimulationRun(summary, {k: round(v, 3) for k, v in timings.items()})


def default_processes(params: SimulationParameters, given: int | None = None) -> int:
    """The processes given, else two when there is a look-ahead run beside the myopic one and the horizon is large
    enough."""
    if given is not None:
        return given
    return 2 if params.look_ahead_weight > 0 and params.weeks * params.arrivals_per_week >= SECOND_PROCESS_FROM else 1


def _hindsight(first: _PolicyRun, myopic: Policy, declined: dict[str, set[str]],
               timings: dict[str, float]) -> HindsightResult:
    """The hindsight optimum over the weeks' arrivals and capacity, respecting every decline given, timed."""
    t = time.perf_counter()
    with progress.step("the hindsight optimum"):
        hindsight = solve_hindsight(first.arrivals, first.capacity, myopic, declined)
    timings["hindsight_s"] = time.perf_counter() - t
    timings["hindsight_data_s"] = hindsight.data_s
    timings.update({f"hindsight_{phase}_s": secs for phase, secs in hindsight.phase_s.items()})
    return hindsight


def _myopic_and_hindsight(tmp: Path, myopic: Policy, params: SimulationParameters,
                          weeks: Sequence[WeekFiles]) -> tuple[_PolicyRun, HindsightResult, dict[str, float]]:
    """The myopic rounds, then the hindsight optimum with their declines (a second process's share of the work)."""
    timings: dict[str, float] = {}
    first = _Simulation(_home(tmp, "myopic", params.start), myopic, params, timings, "").run(weeks)
    return first, _hindsight(first, myopic, first.declined, timings), timings


def _home(tmp: Path, name: str, start: date) -> tuple[Settings, ManualClock]:
    """A new home with its own database for one policy's rounds."""
    home = tmp / name
    clock = ManualClock(start)
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'simulation.sqlite'}", clock=clock)
    settings.ensure_dirs()
    migrate(settings.database_url)
    return settings, clock


def _union(declines: Iterable[dict[str, set[str]]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for d in declines:
        for case_id, ags in d.items():
            out.setdefault(case_id, set()).update(ags)
    return out


@dataclass
class _PolicyRun:
    """What one policy's weekly rounds did."""

    policy: Policy
    rows: list[dict[str, Any]]
    arrivals: list[tuple[date, list[Household]]]
    arrived: dict[str, int]  # case_id -> arrival week
    accepted_week: dict[str, int]
    max_free_streak: int
    capacity: list[CapacityOffer]
    declined: dict[str, set[str]]
    accepted: list[Any]
    declined_offers: int
    every: int  # weeks per round


class _Simulation:
    def __init__(self, home: tuple[Settings, ManualClock], policy: Policy, params: SimulationParameters,
                 timings: dict[str, float], prefix: str) -> None:
        self.settings, self.clock = home
        self.policy, self.params = policy, params
        self.timings, self.prefix = timings, prefix  # timings of the look-ahead run are named look_ahead_...
        self.arrived: dict[str, int] = {}  # case_id -> arrival week
        self.arrivals: list[tuple[date, list[Household]]] = []
        self.accepted_week: dict[str, int] = {}
        self.free_streak: dict[str, int] = {}
        self.max_free_streak = 0

    def _time(self, key: str, started: float) -> None:
        key = self.prefix + key
        self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - started

    def run(self, weeks: Sequence[WeekFiles], between: Callable[[], None] | None = None) -> _PolicyRun:
        """The weekly rounds; `between` is called after each week (it raises to stop them)."""
        rows = []
        label = "simulated weeks" + (" (look-ahead)" if self.prefix else "")
        for wf in progress.track(weeks, label, total=len(weeks), unit="weeks"):
            rows.append(self._week(wf))
            if between is not None:
                between()
        last = weeks[-1].round_date
        self.clock.set(last + timedelta(days=7))
        settle_offers(self.settings, self.clock.today(), actor=ACTOR)  # the no-answers of the last rounds expire
        with reading(self.settings) as uow:
            capacity = uow.capacity_offers.all()
            declined = offer_rules.declined_pairs(uow)
            accepted = uow.offers.with_status((ACCEPTED,))
            declined_offers = len(uow.offers.with_status((DECLINED,)))
        return _PolicyRun(self.policy, rows, self.arrivals, self.arrived, self.accepted_week, self.max_free_streak,
                          capacity, declined, accepted, declined_offers, self.params.round_every_weeks)

    def _week(self, wf: WeekFiles) -> dict[str, Any]:
        s, day, w = self.settings, wf.round_date, wf.week
        self.clock.set(day)
        t = time.perf_counter()
        for f in wf.files:
            inbox_copy = s.inbox / f"week{w:02d}-{f.name}"  # files arrive through the inbox, as a team drops them
            shutil.copyfile(f, inbox_copy)
            report = ingest_file(inbox_copy, s, actor=ACTOR)
            if report.status != "ingested":
                raise RuntimeError(f"week {w}: {f.name} was {report.status}, not ingested")
        with reading(s) as uow:
            new = sorted((h for h in uow.households.pool() if h.case_id not in self.arrived), key=lambda h: h.case_id)
        for h in new:
            self.arrived[h.case_id] = w
        self.arrivals.append((day, new))
        self._time("ingest_s", t)

        t = time.perf_counter()
        summary = run_round(s, self.policy, day, actor=ACTOR)
        offer_round(s, summary.round_id, actor=ACTOR)
        self._time("round_s", t)
        t = time.perf_counter()
        free = self._waiting_with_free_place(day)
        self._time("free_place_check_s", t)

        t = time.perf_counter()
        answers = self._answer(summary.round_id, day, w)
        self._time("decisions_s", t)
        with reading(s) as uow:
            pool = uow.households.pool()
            accepted = uow.offers.with_status((ACCEPTED,))
            # Match quality without the look-ahead's own (never positive) points, so the policies compare on what
            # households and municipalities get.
            assignments = {a.case_id: a.score - future_points(a.score_terms)
                           for a in uow.rounds.assignments(summary.round_id)}
            valid_now = uow.capacity_offers.all(valid_on=day)
            held = offer_rules.consumed_capacity(uow)
        for o in accepted:
            self.accepted_week.setdefault(o.case_id, w)
        every = self.params.round_every_weeks  # rounds count weeks this many at a time
        waiting = [(w - self.arrived[h.case_id] + 1) * every for h in pool if h.case_id in self.arrived]
        accepted_now = [o for o in accepted if o.round_id == summary.round_id]
        places = sum(o.places_persons for o in valid_now)
        valid_ids = {o.offer_id for o in valid_now}
        held_persons = sum(c.dimensions.get("places_persons", 0) for oid, c in held.items() if oid in valid_ids)
        return {
            "week": w * every, "round_date": day.isoformat(), "solver_status": summary.stats.get("status"),
            "arrived_households": len(new), "arrived_persons": sum(h.persons for h in new),
            "pool_households": summary.households, "pool_persons": summary.persons_in_pool,
            "offered_households": summary.households_placed, "offered_persons": summary.persons_placed,
            # The round's look-ahead points are the sum of its assignments' (engine), so both qualities agree.
            "quality_round": None if summary.stats.get("quality") is None else round(
                summary.stats["quality"] - (summary.stats.get("look_ahead") or {}).get("points", 0.0), 6),
            "quality_accepted": round(sum(assignments.get(o.case_id, 0.0) for o in accepted_now), 6),
            **answers,
            "persons_accepted": sum(o.persons for o in accepted_now),
            "persons_placed_cumulative": sum(o.persons for o in accepted),
            "households_waiting": len(waiting), "wait_weeks": wait_stats(waiting),
            "waiting_with_free_place": free,
            "fill_valid_offers": round(held_persons / places, 4) if places else None,
            "exhausted": _exhausted(valid_now, held),
        }

    def _waiting_with_free_place(self, day: date) -> int:
        """Households the round left without an offer while a place they could take stayed free: eligible by the
        round's own rules (`build_data`: hard needs, validity, declines) at an offer whose capacity left after the
        round's offers still fits their whole demand (`Capacity.fits`). Also counts each one's streak of such weeks
        (a week without such a place ends it)."""
        with reading(self.settings) as uow:
            inputs = load_round_inputs(uow, "free-place-check", day, self.policy)
        data = build_data(inputs.households, inputs.offers, day, self.policy, inputs.declined, inputs.consumed)
        left = [Capacity.of(o, inputs.consumed.get(o.offer_id)) for o in data.offers]
        free = set()
        for i, h in enumerate(data.households):
            if any(left[j].fits(data.demands[i]) for j in np.flatnonzero(data.eligible[i])):
                free.add(h.case_id)
        self.free_streak = {c: self.free_streak.get(c, 0) + 1 for c in free}
        self.max_free_streak = max([self.max_free_streak,
                                    *(n * self.params.round_every_weeks for n in self.free_streak.values())])
        return len(free)

    def _answer(self, round_id: str, day: date, week: int) -> dict[str, int]:
        """The households' answers, drawn from the seed, come back as a decisions file through the inbox."""
        p = self.params
        with reading(self.settings) as uow:
            made = sorted(uow.offers.of_round(round_id), key=lambda o: o.case_id)
        answered_at = datetime.combine(day + timedelta(days=p.response_days), ANSWERED_AT, tzinfo=UTC)
        rows, counts = [], {"accepted": 0, "declined": 0, "no_answer": 0}
        for o in made:
            # Drawn per household and week, not in offer order: a household answers alike under every policy that
            # offers it a place that week, so policies differ by their rounds, not by the draws.
            u = random.Random(f"{p.seed}:answers:{week}:{o.case_id}").random()
            decision = "accept" if u < p.accept_share else "decline" if u < p.accept_share + p.decline_share else ""
            counts["accepted" if decision == "accept" else "declined" if decision else "no_answer"] += 1
            if decision:
                rows.append({"case_id": o.case_id, "round_id": round_id, "decision": decision,
                             "decided_at": answered_at.isoformat(), "reason": ""})
        if rows:
            self.clock.set(answered_at + timedelta(hours=1))
            path = self.settings.inbox / f"decisions-{round_id}.csv"
            with open(path, "w", newline="", encoding="utf-8") as fh:
                writer = csv.DictWriter(fh, fieldnames=list(DECISION_FIELDS))
                writer.writeheader()
                writer.writerows(rows)
            report = ingest_file(path, self.settings, actor=ACTOR)
            if report.status != "ingested" or report.quarantined:
                raise RuntimeError(f"the decisions of {round_id} were not all applied ({report.status})")
        return counts

def _policy_summary(run: _PolicyRun, end: int) -> dict[str, Any]:
    """One policy's rounds: per week, in total, the waits and the fill per municipality."""
    persons_arrived = sum(h.persons for _, hs in run.arrivals for h in hs)
    # Rounds each household was in without a place: none if the round of its arrival week placed it.
    every = run.every
    waited = [(run.accepted_week.get(c, end) - a) * every for c, a in run.arrived.items()]
    fill: dict[str, dict[str, Any]] = {}
    for o in run.capacity:
        f = fill.setdefault(o.ags, {"ags": o.ags, "municipality": o.municipality_name, "places_offered": 0,
                                    "persons_placed": 0})
        f["places_offered"] += o.places_persons
    by_offer = {o.offer_id: o.ags for o in run.capacity}
    for a in run.accepted:
        fill[by_offer[a.offer_id]]["persons_placed"] += a.persons
    for f in fill.values():
        f["fill"] = round(f["persons_placed"] / f["places_offered"], 4) if f["places_offered"] else None
    return {
        "policy": policy_to_dict(run.policy),  # what the rounds weighed: a comparison names its policies
        "weeks": run.rows,
        "totals": {
            "households_arrived": len(run.arrived), "persons_arrived": persons_arrived,
            "households_placed": len(run.accepted), "persons_placed": sum(o.persons for o in run.accepted),
            "declines": run.declined_offers,
            "quality_accepted": round(sum(r["quality_accepted"] for r in run.rows), 6),
            "households_waiting_at_end": len(run.arrived) - len(run.accepted_week),
            "wait_weeks": wait_stats(waited),
            "places_offered": sum(o.places_persons for o in run.capacity),
        },
        "max_wait_weeks_with_free_place": run.max_free_streak,
        "fill_by_municipality": sorted(fill.values(), key=lambda f: f["ags"]),
    }


def _summary(params: SimulationParameters, runs: Sequence[_PolicyRun], hindsight: HindsightResult,
             weeks: Sequence[WeekFiles]) -> dict[str, Any]:
    """The myopic rounds at the top level (as before there were others), the look-ahead run beside them."""
    end = len(weeks)
    parts = [_policy_summary(r, end) for r in runs]
    placed = {"myopic": parts[0]["totals"]["persons_placed"],
              "look_ahead": parts[1]["totals"]["persons_placed"] if len(parts) > 1 else None,
              "hindsight": hindsight.persons_placed}

    def ratio(persons: int | None) -> float | None:
        return round(persons / hindsight.persons_placed, 4) if persons is not None and hindsight.persons_placed \
            else None

    summary = {
        "parameters": params.to_json(),
        **parts[0],
        "round_dates": [w.round_date.isoformat() for w in weeks],
        "persons_placed": placed,
        "ratio_to_hindsight": {"myopic": ratio(placed["myopic"]), "look_ahead": ratio(placed["look_ahead"]),
                               "hindsight": 1.0 if hindsight.persons_placed else None},
        "max_wait_weeks_with_free_place_by_policy": {
            "myopic": parts[0]["max_wait_weeks_with_free_place"],
            "look_ahead": parts[1]["max_wait_weeks_with_free_place"] if len(parts) > 1 else None},
        "hindsight": hindsight.to_json(),
    }
    if len(parts) > 1:
        summary["look_ahead"] = parts[1]
    else:
        summary["absent"] = {"look_ahead": "not run (look-ahead weight 0)"}
    return summary


def _exhausted(valid: Sequence[CapacityOffer], held: dict[str, Any]) -> dict[str, int]:
    """Per capacity dimension, the valid offers that offered some of it and have none left."""
    out = dict.fromkeys(CAPACITY_DIMENSIONS, 0)
    for o in valid:
        left = Capacity.of(o, held.get(o.offer_id)).dimensions
        for d, n in zip(CAPACITY_DIMENSIONS, left, strict=True):
            if o.capacity(d) > 0 and n <= 0:
                out[d] += 1
    return {d: n for d, n in out.items() if n}
