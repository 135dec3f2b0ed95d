"""Planning report from the LP duals: which extra capacity, where, would let most additional persons be placed."""

from __future__ import annotations

from typing import Any

import numpy as np

from rematch_pipeline.domain import CAPACITY_DIMENSIONS
from rematch_pipeline.matching.bound import Prices
from rematch_pipeline.matching.build import LinearModel
from rematch_pipeline.matching.data import MatchingData

MIN_VALUE = 0.01  # smaller shadow prices are noise from the LP's tie-breaking perturbation
ONE_MORE = {
    "places_persons": "place for a person", "units_wheelchair": "wheelchair-accessible unit",
    "units_pets_allowed": "pet-allowed unit", "kita_u3": "Kita U3 place", "kita_ue3": "Kita Ü3 place",
    "school_primary": "primary-school place", "school_secondary": "secondary-school place",
    "language_course_seats": "language-course seat",
}


def planning_report(data: MatchingData, model: LinearModel, duals: np.ndarray, top: int = 3) -> list[dict[str, Any]]:
    """Per municipality, the capacities whose shadow price (persons placed per extra unit, LP) is highest.

    A dual value of 0.8 on Kita U3 means: one more Kita U3 place there would let about 0.8 more persons be
    placed (as long as the LP basis stays the same). Only binding capacities have a positive value.
    """
    # Read as the bound reads them (`Prices.from_duals`): a negative dual on a capacity row is solver noise, never a
    # reason to ask for more of it.
    prices = Prices.from_duals(data, model, duals)
    entries: dict[int, list[tuple[float, str, int]]] = {}
    for o, d in zip(*np.nonzero(prices.capacity > MIN_VALUE), strict=True):
        name = CAPACITY_DIMENSIONS[d]
        entries.setdefault(int(o), []).append((float(prices.capacity[o, d]), f"+1 {ONE_MORE[name]}", int(d)))
    for o, k in zip(*np.nonzero(prices.rooms > MIN_VALUE), strict=True):
        entries.setdefault(int(o), []).append((float(prices.rooms[o, k]), f"+1 unit with {k + 1}+ rooms", -int(k + 1)))
    report = []
    for o, items in sorted(entries.items(), key=lambda kv: -max(v for v, _, _ in kv[1])):
        offer = data.offers[o]
        best = sorted(items, key=lambda t: (-t[0], t[2]))[:top]
        extra = [{"capacity": label, "persons_per_unit": round(v, 4)} for v, label, _ in best]
        report.append({"ags": offer.ags, "municipality": offer.municipality_name, "extra_capacity": extra})
    return report
