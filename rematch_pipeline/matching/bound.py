"""A bound on persons placed that holds for EVERY eligible pair, from any non-negative capacity prices (Lagrange)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from rematch_pipeline.matching.build import LinearModel
from rematch_pipeline.matching.data import MatchingData, capacity_left, used_capacity

CHUNK = 4096  # households per slice of the (households x offers) value matrix, to bound memory at national scale
INTEGRAL = 1e-6  # a solver's value this close to an integer counts as that integer
PRICED_PER_HOUSEHOLD = 5  # columns added per household and pricing round (the most attractive first)


@dataclass
class Prices:
    """Non-negative prices on capacity (offer x dimension) and on units by room class (offer x class)."""

    capacity: np.ndarray  # (O, N_DIMS)
    rooms: np.ndarray  # (O, 4)

    @classmethod
    def zero(cls, data: MatchingData) -> Prices:
        n_off = len(data.offers)
        return cls(np.zeros((n_off, data.hh.demand.shape[1])), np.zeros((n_off, data.of.units_ge_left.shape[1])))

    @classmethod
    def from_duals(cls, data: MatchingData, model: LinearModel, duals: np.ndarray) -> Prices:
        prices = cls.zero(data)
        block, y = model.block_duals(duals, "capacity_per_dimension")
        for (o, d), val in zip(block.keys, y, strict=True):
            prices.capacity[o, d] = val
        block, y = model.block_duals(duals, "units_by_room_class")
        for (o, k), val in zip(block.keys, y, strict=True):
            prices.rooms[o, k - 1] = val
        return prices.clipped()

    def clipped(self) -> Prices:
        return Prices(np.maximum(self.capacity, 0.0), np.maximum(self.rooms, 0.0))


def priced_use(data: MatchingData, prices: Prices, lo: int, hi: int) -> np.ndarray:
    """(hi-lo, O): the price of the capacity and the unit households lo..hi would use at each offer."""
    hh = data.hh
    return hh.demand[lo:hi].astype(np.float64) @ prices.capacity.T + hh.units_taken(slice(lo, hi)) @ prices.rooms.T


def most_persons(bound: float) -> float:
    """The most whole persons a valid (finite) bound allows: a bound a hair below a whole number (the solver's
    tolerance) still allows that number."""
    return float(np.floor(bound + INTEGRAL))


def proves_maximal(persons: float, bound: float) -> bool:
    """Persons are whole: a placement within one person of a valid bound cannot be beaten."""
    return bool(np.isfinite(bound) and persons >= most_persons(bound))


def persons_target(bound: float, gap_ppm: int) -> float:
    """The fewest whole persons within `gap_ppm` millionths of a valid bound (never above what proves maximal);
    infinite without a bound."""
    if not np.isfinite(bound):
        return float("inf")
    return float(min(np.ceil(bound * (1 - gap_ppm / 1e6) - INTEGRAL), most_persons(bound)))


def most_attractive(values: np.ndarray, attractive: np.ndarray,
                    k: int = PRICED_PER_HOUSEHOLD) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of each row's k highest `values` among its `attractive` pairs: the columns a pricing round adds.

    argpartition, not a sort: at national scale it is the cheaper of the two, and it picks alike on every machine.
    """
    k = min(k, values.shape[1])
    if k == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    top = np.argpartition(-np.where(attractive, values, -np.inf), k - 1, axis=1)[:, :k]
    rows = np.repeat(np.arange(values.shape[0]), k)
    cols = top.ravel()
    keep = attractive[rows, cols]
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64)


def priced_capacity(data: MatchingData, prices: Prices) -> float:
    """The price of all the capacity and units offered: the constant term of every Lagrangian bound."""
    cap, units = capacity_left(data)
    return float((prices.capacity * cap).sum() + (prices.rooms * units).sum())


def household_values(data: MatchingData, prices: Prices, lo: int, hi: int, eligible_only: bool = True) -> np.ndarray:
    """(hi-lo, O): persons of the household minus the priced capacity it would use there (-inf if not eligible)."""
    value = data.hh.persons[lo:hi, None].astype(np.float64) - priced_use(data, prices, lo, hi)
    return np.where(data.eligible[lo:hi], value, -np.inf) if eligible_only else value


def lagrangian_bound(data: MatchingData, prices: Prices) -> tuple[float, np.ndarray]:
    """Weak duality with the capacity rows relaxed: every household independently takes its best priced offer.

    For prices >= 0 the value is an upper bound on the persons any feasible assignment over all eligible pairs
    places (it equals the LP bound at optimal LP prices). Also returns each household's best offer (-1: none),
    which gives `improve_bound` its subgradient.
    """
    n_hh = len(data.households)
    best = np.full(n_hh, -1, dtype=np.int64)
    total = 0.0
    for lo in range(0, n_hh, CHUNK):
        hi = min(n_hh, lo + CHUNK)
        value = household_values(data, prices, lo, hi)
        if value.shape[1] == 0:
            continue
        arg = value.argmax(axis=1)
        top = value[np.arange(hi - lo), arg]
        take = top > 0
        best[lo:hi][take] = arg[take]
        total += float((top * data.weight[lo:hi])[take].sum())
    return total + priced_capacity(data, prices), best


def improve_bound(data: MatchingData, prices: Prices, target: float, deadline: float,
                  max_iterations: int) -> tuple[float, Prices, bool]:
    """Projected subgradient steps (Polyak step towards `target`, a known feasible value) on the prices.

    Used when the LP gives no prices; every iterate is a valid bound, so stopping early is safe. Returns the best
    bound, its prices, and whether `deadline` (a safety net) cut the steps short.
    """
    cap, units = capacity_left(data)
    best_bound, best_prices = lagrangian_bound(data, prices)[0], prices
    step_scale, stale = 2.0, 0
    for _ in range(max_iterations):
        if time.perf_counter() > deadline:
            return best_bound, best_prices, True
        bound, choice = lagrangian_bound(data, prices)
        if bound < best_bound - 1e-9:
            best_bound, best_prices, stale = bound, prices, 0
        else:
            stale += 1
            if stale >= 10:
                step_scale, stale = step_scale / 2, 0
        chosen = choice >= 0
        h, o = np.nonzero(chosen)[0], choice[chosen]
        used, used_rooms = used_capacity(data, h, o, data.weight[h])
        g_cap, g_rooms = cap - used, units - used_rooms  # the bound decreases along -g
        norm = float((g_cap ** 2).sum() + (g_rooms ** 2).sum())
        if norm == 0 or bound - target < 1e-6:
            break
        step = step_scale * (bound - target) / norm
        prices = Prices(prices.capacity - step * g_cap, prices.rooms - step * g_rooms).clipped()
    return best_bound, best_prices, False
