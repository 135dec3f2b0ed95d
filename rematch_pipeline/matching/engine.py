"""One matching round from domain objects to assignments: data → build → solve → extract, timed."""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from rematch_pipeline import progress
from rematch_pipeline.domain import Assignment, CapacityOffer, Consumption, Household, Policy, Unmatched
from rematch_pipeline.matching.backends import SolveError
from rematch_pipeline.matching.baselines import evaluate, state_quota
from rematch_pipeline.matching.data import MatchingData, build_data
from rematch_pipeline.matching.extract import extract
from rematch_pipeline.matching.look_ahead import apply_look_ahead, sample_futures
from rematch_pipeline.matching.planning import planning_report
from rematch_pipeline.matching.scoring import future_points
from rematch_pipeline.matching.solve import deterministic_work, solve_model

log = logging.getLogger(__name__)
# Of the safety net: the look-ahead's LPs stop by their work limits long before it (a backlog's 259 s, a weekly
# round's 125 s); the round's own work at 10,000 x 400 needs about 100 s of the rest (docs/solver-tuning.md).
LOOK_AHEAD_SHARE = 0.5


@dataclass
class MatchResult:
    status: str  # optimal, time_limit, iteration_limit, empty, infeasible
    message: str
    assignments: list[Assignment]
    unmatched: list[Unmatched]
    stats: dict[str, Any] = field(default_factory=dict)
    data: MatchingData | None = None
    planning: list[dict[str, Any]] = field(default_factory=list)

    @property
    def persons_placed(self) -> int:
        return sum(a.persons for a in self.assignments)

    @property
    def assignments_sha256(self) -> str:
        """A fingerprint of who goes where: sha256 of the sorted `case_id<TAB>offer_id` lines."""
        lines = sorted(f"{a.case_id}\t{a.offer_id}\n" for a in self.assignments)
        return hashlib.sha256("".join(lines).encode()).hexdigest()


def match(
    households: Sequence[Household],
    offers: Sequence[CapacityOffer],
    round_date: date,
    policy: Policy,
    round_id: str,
    declined: Mapping[str, set[str]] | None = None,
    consumed: Mapping[str, Consumption] | None = None,
    arrivals: Collection[str] | None = None,
    later_offers: Sequence[CapacityOffer] | None = None,
) -> MatchResult:
    """Solve one round. `arrivals` (look-ahead rounds): the households of the pool that entered it since the last
    round; None counts the whole pool as arrived (a first round). `later_offers` (look-ahead rounds): offers that
    open after the round date, which the coming rounds will have."""
    t0 = time.perf_counter()
    with progress.step("preparing the data") as preparing:
        preparing.note(f"{len(households)} households, {len(offers)} capacity offers")
        data = build_data(households, offers, round_date, policy, declined, consumed)
    t_data = time.perf_counter() - t0
    stats: dict[str, Any] = {
        "households": len(data.households), "offers": len(data.offers), "eligible_pairs": data.n_eligible,
        "candidate_pairs": data.n_pairs, "persons_in_pool": int(data.hh.persons.sum()), "data_s": round(t_data, 3),
    }
    if policy.look_ahead_weight > 0 and data.n_pairs:
        with progress.step("pricing capacity for the coming rounds (look-ahead)"):
            new = None if arrivals is None else set(arrivals)
            arrived = np.array([new is None or h.case_id in new for h in data.households], dtype=bool)
            # The coming rounds' offers, dates ignored: each coming round applies its own date.
            horizon = (build_data(households, [*offers, *later_offers], round_date, policy, declined, consumed,
                                  ignore_dates=True) if later_offers else None)
            future = sample_futures(data, arrived, policy, round_id,
                                    t0 + LOOK_AHEAD_SHARE * policy.solver.time_limit_s, horizon)
            apply_look_ahead(data, future, policy)
        stats["look_ahead"] = {**future.summary(), "weight": policy.look_ahead_weight,
                               "method": policy.look_ahead_method, "rounds": policy.look_ahead_rounds}
        stats["candidate_pairs"] = data.n_pairs
    log.info("round %s: %d households, %d offers, %d eligible pairs, %d candidates", round_id,
             len(data.households), len(data.offers), data.n_eligible, data.n_pairs)
    if data.n_pairs == 0:
        # Nothing to solve: every household gets its no-eligible reason; not an error for the DAG.
        assignments, unmatched = extract(data, data.pair_h[:0], round_id)
        why = "no households in the pool" if not data.households else (
            "no valid capacity offers" if not data.offers else "no household has an eligible municipality")
        stats.update(status="empty", persons_placed=0, lp_bound_persons=0.0, gap_to_lp=0.0, build_s=0.0,
                     solve_s=0.0, persons_proven_maximal=True)
        return MatchResult("empty", f"empty round: {why}", assignments, unmatched, stats, data)
    try:
        with progress.step("solving (most persons placed, then their preferences)") as solving:
            solving.note(f"{data.n_pairs} candidate pairs, time limit {policy.solver.time_limit_s:g} s")
            result = solve_model(data, policy, started=t0)  # the time limit is the round's, data included
    except SolveError as exc:
        # Every pool household still gets a row: unmatched, with the solver's failure as the round's message.
        stats.update(status="infeasible", message=str(exc))
        assignments, unmatched = extract(data, data.pair_h[:0], round_id)
        return MatchResult("infeasible", str(exc), assignments, unmatched, stats, data)
    with progress.step("extracting the assignments and the reasons for the unmatched"):
        assignments, unmatched = extract(data, result.chosen, round_id)
    if "look_ahead" in stats:  # the (never positive) points the look-ahead took from match quality
        stats["look_ahead"]["points"] = round(sum(future_points(a.score_terms) for a in assignments), 6)
    solve_s = sum(p.seconds for p in result.phases)
    status = result.status
    if stats.get("look_ahead", {}).get("status") == "time_limit":
        status = "time_limit"  # the safety net cut the look-ahead's LPs: prices, and so the round, may differ
    stats.update(
        status=status,
        interface=result.interface,
        candidate_pairs=data.n_pairs,
        priced_pairs=result.priced_pairs,
        pricing_rounds=result.pricing_rounds,
        persons_placed=result.persons_placed,
        lp_bound_persons=round(result.lp_bound_persons, 6) if math.isfinite(result.lp_bound_persons) else None,
        gap_to_lp=round(result.gap_to_lp, 8) if math.isfinite(result.gap_to_lp) else None,
        persons_proven_maximal=result.persons_proven_maximal,
        quality=round(result.quality, 6),
        # None when the solver stopped before it proved any bound on quality.
        quality_bound=round(result.quality_bound, 6) if math.isfinite(result.quality_bound) else None,
        quality_gap=round((result.quality_bound - result.quality) / max(abs(result.quality_bound), 1e-9), 8)
        if math.isfinite(result.quality_bound) else None,
        build_s=round(result.build_s, 3),
        solve_s=round(solve_s, 3),
        phases=[p.summary() for p in result.phases],
        deterministic_work=deterministic_work(),  # so that a replay can tell a change of work from one of inputs
    )
    if result.fair is not None:
        # `quality` then includes these points; the match scores alone are quality minus points. The shares are
        # of the persons the persons phase placed; the quality phase keeps at least that many (more only when the
        # persons phase was cut off), so `persons_beyond_share` of the comparison, taken over the final
        # placement, is persons placed minus persons within share whenever the two totals agree.
        stats["balanced_fill"] = {"weight": result.fair.weight, "points": round(result.balanced_fill_points, 6),
                                  "persons_within_share": round(result.balanced_fill_points / result.fair.weight, 3),
                                  "shares_of_persons": round(float(result.fair.share.sum()), 3)}
    t1 = time.perf_counter()
    with progress.step("comparing with the baselines (state quota, greedy)"):
        stats["comparison"] = {
            "rematch": evaluate(data, data.pair_h[result.chosen], data.pair_o[result.chosen]),
            "state_quota": evaluate(data, *state_quota(data, seed=policy.solver.random_seed)),
            "greedy_by_score": evaluate(data, *result.greedy),  # the solve's own greedy start, on the same input
        }
    stats["baselines_s"] = round(time.perf_counter() - t1, 3)
    message = (f"{result.persons_placed} of {stats['persons_in_pool']} persons placed by the round "
               f"({len(assignments)} households), solver {status}")
    with progress.step("planning report (where more places would help)"):
        planning = planning_report(data, result.lp_model, result.duals) if len(result.duals) else []
    return MatchResult(status, message, assignments, unmatched, stats, data, planning)
