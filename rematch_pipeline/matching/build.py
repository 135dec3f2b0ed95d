"""Build the Pyomo model from matching data: variables, constraint families, the two objectives."""

from __future__ import annotations

import pyomo.environ as pyo

from rematch_pipeline.matching.constraints.assignment import add_household_at_most_once
from rematch_pipeline.matching.constraints.capacity import add_capacity_per_dimension
from rematch_pipeline.matching.constraints.rooms import add_units_by_room_class
from rematch_pipeline.matching.data import MatchingData


def build_model(data: MatchingData) -> pyo.ConcreteModel:
    model = pyo.ConcreteModel(name="rematch_round")
    model.P = pyo.RangeSet(0, data.n_pairs - 1)
    model.x = pyo.Var(model.P, within=pyo.Binary)
    add_household_at_most_once(model, data)
    add_capacity_per_dimension(model, data)
    add_units_by_room_class(model, data)
    persons = [data.demands[h].persons for h in data.pair_household]
    # Lexicographic objective: persons placed first, then quality among the placements of that size.
    model.persons_placed = pyo.Expression(expr=sum(persons[p] * model.x[p] for p in model.P))
    model.quality = pyo.Expression(expr=sum(data.pair_score[p] * model.x[p] for p in model.P))
    model.max_persons = pyo.Objective(expr=model.persons_placed, sense=pyo.maximize)
    model.max_quality = pyo.Objective(expr=model.quality, sense=pyo.maximize)
    model.max_quality.deactivate()
    return model
