"""Assignment: a household goes to at most one offer, whole (one binary per pair, so it is never split)."""

from __future__ import annotations

import pyomo.environ as pyo

from rematch_pipeline.matching.data import MatchingData


def add_household_at_most_once(model: pyo.ConcreteModel, data: MatchingData) -> None:
    pairs = data.pairs_of_household()
    rows = [h for h, ps in enumerate(pairs) if len(ps) > 1]
    model.household_at_most_once = pyo.Constraint(
        rows, rule=lambda m, h: sum(m.x[p] for p in pairs[h]) <= 1
    )
