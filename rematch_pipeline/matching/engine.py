"""One matching round from domain objects to assignments: data → build → solve → extract, timed."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from rematch_pipeline.domain import Assignment, CapacityOffer, Household, Policy, Unmatched
from rematch_pipeline.matching.build import build_model
from rematch_pipeline.matching.data import Consumption, MatchingData, build_data
from rematch_pipeline.matching.extract import extract
from rematch_pipeline.matching.solve import SolveError, solve_model

log = logging.getLogger(__name__)


@dataclass
class MatchResult:
    status: str  # optimal, time_limit, iteration_limit, empty, infeasible
    message: str
    assignments: list[Assignment]
    unmatched: list[Unmatched]
    stats: dict[str, object] = field(default_factory=dict)
    data: MatchingData | None = None

    @property
    def persons_placed(self) -> int:
        return sum(a.persons for a in self.assignments)


def match(
    households: Sequence[Household],
    offers: Sequence[CapacityOffer],
    round_date: date,
    policy: Policy,
    round_id: str,
    declined: Mapping[str, set[str]] | None = None,
    consumed: Mapping[str, Consumption] | None = None,
) -> MatchResult:
    t0 = time.perf_counter()
    data = build_data(households, offers, round_date, policy, declined, consumed)
    t_data = time.perf_counter() - t0
    stats: dict[str, object] = {
        "households": len(data.households), "offers": len(data.offers), "pairs": data.n_pairs,
        "persons_in_pool": sum(d.persons for d in data.demands), "data_s": round(t_data, 3),
    }
    log.info("round %s: %d households, %d offers, %d eligible pairs", round_id, len(data.households),
             len(data.offers), data.n_pairs)
    if data.n_pairs == 0:
        # Nothing to solve: every household gets its no-eligible reason; not an error for the DAG.
        assignments, unmatched = extract(data, [], round_id)
        why = "no households in the pool" if not data.households else (
            "no valid capacity offers" if not data.offers else "no household has an eligible municipality")
        stats.update(status="empty", persons_placed=0, persons_bound=0, gap=0.0, build_s=0.0, solve_s=0.0)
        return MatchResult("empty", f"empty round: {why}", assignments, unmatched, stats, data)
    t1 = time.perf_counter()
    model = build_model(data)
    build_s = time.perf_counter() - t1
    try:
        result = solve_model(model, policy)
    except SolveError as exc:
        stats.update(status="infeasible", build_s=round(build_s, 3), message=str(exc))
        return MatchResult("infeasible", str(exc), [], [], stats, data)
    assignments, unmatched = extract(data, result.chosen_pairs, round_id)
    stats.update(
        status=result.status,
        persons_placed=result.persons_placed,
        persons_bound=result.persons_bound,
        gap=round(result.gap_persons, 8),
        quality=round(result.quality, 6),
        quality_bound=result.quality_bound,
        build_s=round(build_s, 3),
        solve_s=round(sum(ph.seconds for ph in result.phases), 3),
        phases=[vars(ph) for ph in result.phases],
    )
    message = (f"{result.persons_placed} of {stats['persons_in_pool']} persons placed "
               f"({len(assignments)} households), solver {result.status}")
    return MatchResult(result.status, message, assignments, unmatched, stats, data)
