"""Housing units by room class: households needing >= k rooms fit in the units with >= k rooms (Hall's condition)."""

from __future__ import annotations

import pyomo.environ as pyo

from rematch_pipeline.domain import ROOM_CLASSES
from rematch_pipeline.matching.data import MatchingData


def room_rows(data: MatchingData) -> list[tuple[int, int]]:
    by_offer = data.pairs_of_offer()
    rows = []
    for o, ps in enumerate(by_offer):
        for k in ROOM_CLASSES:
            n = sum(1 for p in ps if data.demands[data.pair_household[p]].rooms_needed >= k)
            if n > data.remaining[o][f"units_ge_{k}"]:
                rows.append((o, k))
    return rows


def add_units_by_room_class(model: pyo.ConcreteModel, data: MatchingData) -> None:
    by_offer = data.pairs_of_offer()
    model.room_rows = pyo.Set(initialize=room_rows(data), dimen=2, ordered=True)

    def rule(m: pyo.ConcreteModel, o: int, k: int) -> object:
        expr = sum(m.x[p] for p in by_offer[o] if data.demands[data.pair_household[p]].rooms_needed >= k)
        return expr <= max(0, data.remaining[o][f"units_ge_{k}"])

    model.units_by_room_class = pyo.Constraint(model.room_rows, rule=rule)
