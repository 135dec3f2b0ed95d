"""The hindsight optimum: all weeks' arrivals solved as one round with every one of them known (the yardstick)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import Any

import numpy as np

from rematch_pipeline.domain import CapacityOffer, Household, Policy
from rematch_pipeline.matching.data import HouseholdArrays, MatchingData, build_data, top_candidates
from rematch_pipeline.matching.eligibility import ELIGIBLE
from rematch_pipeline.matching.solve import solve_model


@dataclass
class HindsightResult:
    status: str
    persons_placed: int
    households_placed: int
    persons_arrived: int
    placed: dict[str, str]  # case_id -> offer_id
    eligible_pairs: int
    seconds: float  # all of it; data_s of it building the data (one build per week)
    data_s: float
    # The LP bound over every eligible pair: when the solve stops by its work limits (status work_limit), the true
    # hindsight optimum lies between persons_placed and this.
    persons_bound: float | None = None
    phase_s: dict[str, float] = field(default_factory=dict)  # seconds per solver phase (never in the summary)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "persons_placed": self.persons_placed,
                "households_placed": self.households_placed, "persons_arrived": self.persons_arrived,
                "eligible_pairs": self.eligible_pairs, "persons_bound": self.persons_bound}


def hindsight_data(arrivals: Sequence[tuple[date, Sequence[Household]]], offers: Sequence[CapacityOffer],
                   policy: Policy, declined: Mapping[str, set[str]] | None = None) -> MatchingData:
    """One round over all arrivals, built from the round's own data for every week (`build_data`).

    `arrivals` lists each week's round date with the households that arrived in that week. A pair is
    eligible when the round of some week at or after the household's arrival would find it eligible (so an offer
    counts only in the weeks it is valid, and a household never before it arrives); a household's demand, scores
    and exclusion reasons are those of its arrival week. Capacity is the offers' full capacity, once: a place taken
    in one week is gone for the later ones, as accepted offers consume it in the weekly rounds.
    """
    households = [h for _, week in arrivals for h in week]
    arrival = {h.case_id: w for w, (_, week) in enumerate(arrivals) for h in week}
    if len(arrival) != len(households):
        raise ValueError("a household arrives once: the weeks' case ids repeat")
    acc: MatchingData | None = None
    eligible = valid = np.zeros(0, dtype=bool)
    arr = np.zeros(0, dtype=np.int64)
    for w, (day, _) in enumerate(arrivals):
        # Canonical order (case id; AGS, offer id) is the same every week, so the rows line up.
        week = build_data(households, offers, day, policy, declined)
        if acc is None:
            arr = np.array([arrival[h.case_id] for h in week.households], dtype=np.int64)
            hh = HouseholdArrays(**{f.name: getattr(week.hh, f.name).copy() for f in fields(HouseholdArrays)})
            acc = replace(week, hh=hh, codes=week.codes.copy(), score=week.score.copy(),
                          own_score=week.own_score.copy(), demands=list(week.demands))
            eligible = np.zeros(week.codes.shape, dtype=bool)
            valid = np.zeros(len(week.offers), dtype=bool)
        eligible |= (week.codes == ELIGIBLE) & (arr <= w)[:, None]
        valid |= week.of.valid
        rows = np.flatnonzero(arr == w)
        if w > 0 and len(rows):
            for f in fields(HouseholdArrays):
                getattr(acc.hh, f.name)[rows] = getattr(week.hh, f.name)[rows]
            acc.codes[rows], acc.score[rows], acc.own_score[rows] = (week.codes[rows], week.score[rows],
                                                                     week.own_score[rows])
            for i in rows:
                acc.demands[i] = week.demands[i]
    if acc is None:
        raise ValueError("hindsight needs at least one week")
    # Where some week made the pair eligible it is; elsewhere the arrival week's reason (never eligible) stays.
    acc.codes = np.where(eligible, ELIGIBLE, acc.codes).astype(np.int8)
    acc.of.valid = valid
    acc.round_date = arrivals[-1][0]
    acc.set_pairs(*top_candidates(acc, policy.solver.candidates_per_household))
    return acc


def solve_hindsight(arrivals: Sequence[tuple[date, Sequence[Household]]], offers: Sequence[CapacityOffer],
                    policy: Policy, declined: Mapping[str, set[str]] | None = None) -> HindsightResult:
    """The most persons any sequence of rounds could have placed over the horizon, by the round's own solver (most
    persons first, then quality), had every week's arrivals been known in advance and every offer accepted."""
    t0 = time.perf_counter()
    data = hindsight_data(arrivals, offers, policy, declined)
    data_s = round(time.perf_counter() - t0, 3)
    persons_arrived = int(data.hh.persons.sum())
    if data.n_pairs == 0:
        return HindsightResult("empty", 0, 0, persons_arrived, {}, 0, round(time.perf_counter() - t0, 3), data_s)
    result = solve_model(data, policy, started=t0, persons_only=True)  # the yardstick counts persons only
    h, o = data.pair_h[result.chosen], data.pair_o[result.chosen]
    placed = {data.households[i].case_id: data.offers[j].offer_id for i, j in zip(h, o, strict=True)}
    bound = round(result.lp_bound_persons, 3) if math.isfinite(result.lp_bound_persons) else None
    phase_s: dict[str, float] = {}
    for p in result.phases:
        phase_s[p.phase] = round(phase_s.get(p.phase, 0.0) + p.seconds, 3)
    return HindsightResult(result.status, int(result.persons_placed), len(placed), persons_arrived, placed,
                           data.n_eligible, round(time.perf_counter() - t0, 3), data_s, bound, phase_s)
