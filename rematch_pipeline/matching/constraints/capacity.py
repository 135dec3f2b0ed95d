"""Capacity: for every offer and dimension, what the round assigns stays within what is left."""

from __future__ import annotations

import pyomo.environ as pyo

from rematch_pipeline.domain import CAPACITY_DIMENSIONS
from rematch_pipeline.matching.data import MatchingData


def capacity_rows(data: MatchingData) -> list[tuple[int, str]]:
    """(offer, dimension) rows that can bind: only where the offer's pairs demand more than is left."""
    by_offer = data.pairs_of_offer()
    rows = []
    for o, ps in enumerate(by_offer):
        for d in CAPACITY_DIMENSIONS:
            need = sum(data.demands[data.pair_household[p]].of(d) for p in ps)
            if need > data.remaining[o][d]:
                rows.append((o, d))
    return rows


def add_capacity_per_dimension(model: pyo.ConcreteModel, data: MatchingData) -> None:
    by_offer = data.pairs_of_offer()
    rows = capacity_rows(data)
    model.capacity_rows = pyo.Set(initialize=rows, dimen=2, ordered=True)

    def rule(m: pyo.ConcreteModel, o: int, d: str) -> object:
        expr = sum(data.demands[data.pair_household[p]].of(d) * m.x[p] for p in by_offer[o]
                   if data.demands[data.pair_household[p]].of(d))
        return expr <= max(0, data.remaining[o][d])

    model.capacity = pyo.Constraint(model.capacity_rows, rule=rule)
