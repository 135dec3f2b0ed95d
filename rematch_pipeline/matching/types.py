"""Household types: households with equal demand, room need and eligibility are interchangeable for persons placed."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from rematch_pipeline.domain import Policy
from rematch_pipeline.matching.backends import HighsDirect, PhaseResult, SolveError, relaxation
from rematch_pipeline.matching.bound import INTEGRAL, persons_target
from rematch_pipeline.matching.budget import BUDGET, WorkBudget
from rematch_pipeline.matching.build import LinearModel, build_model, lp_objective
from rematch_pipeline.matching.data import MatchingData, capacity_left, fits
from rematch_pipeline.matching.neighbourhoods import Step, draw_offers, search

TYPE_START_CANDIDATES = 5  # offers per type the first LP starts from (its best by score); pricing adds the rest


@dataclass
class HouseholdTypes:
    """The persons problem over types: one row per type, standing for all its households.

    Placing persons only depends on what a household needs (capacity per dimension, rooms) and where it may go, so
    the model over types has the same optimum as the model over households, with one integer per (type, offer)
    instead of one binary per household and offer, and no interchangeable columns for the LP to stall on.
    """

    data: MatchingData  # one row per type (its first household), copies = households of the type
    of_household: np.ndarray  # (H,) the type of each household
    members: list[np.ndarray]  # the households of each type, in canonical order

    @property
    def n_types(self) -> int:
        return len(self.members)

    def counts(self, h: np.ndarray, o: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Household pairs (h, o) as (type, offer, households) triples."""
        n_off = max(1, len(self.data.offers))
        codes, n = np.unique(self.of_household[h] * n_off + o, return_counts=True)
        return codes // n_off, codes % n_off, n.astype(np.float64)


def type_keys(data: MatchingData, group: np.ndarray | None = None) -> np.ndarray:
    """(H, k): what makes a household's type: the capacity it needs, its rooms, where it may go, and `group`."""
    extra = [] if group is None else [np.asarray(group)[:, None]]
    return np.column_stack([data.hh.demand, data.hh.rooms, np.packbits(data.eligible, axis=1), *extra])


def household_types(data: MatchingData, group: np.ndarray | None = None) -> HouseholdTypes:
    """`group` (H,): households of different groups never share a type (the look-ahead keeps its pool apart)."""
    key = type_keys(data, group)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    members = np.split(order, np.cumsum(np.bincount(inverse))[:-1])
    copies = np.bincount(inverse, weights=data.weight)  # rows that already stand for several count as many
    return HouseholdTypes(data.rows(first, copies), inverse.astype(np.int64), members)


def starting_pairs(types: HouseholdTypes, h: np.ndarray, o: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The first LP's columns: the (type, offer) pairs of a feasible allocation and each type's best offers."""
    tdata = types.data
    masked = np.where(tdata.eligible, tdata.score, -np.inf)
    k = min(TYPE_START_CANDIDATES, masked.shape[1])
    top = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(types.n_types), k)
    cols = top.ravel()
    keep = tdata.eligible[rows, cols]
    t, oo, _ = types.counts(h, o)
    return np.concatenate([rows[keep], t]), np.concatenate([cols[keep], oo])


def dedupe(pair_h: np.ndarray, pair_o: np.ndarray, n_off: int) -> tuple[np.ndarray, np.ndarray]:
    codes = np.unique(pair_h * max(1, n_off) + pair_o)
    return codes // max(1, n_off), codes % max(1, n_off)


def households_for(types: HouseholdTypes, data: MatchingData, t: np.ndarray, o: np.ndarray,
                   n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Turn (type, offer, households) counts into household pairs: within a type, who goes where by match score.

    All households of a type are alike for capacity, so any choice is feasible; an assignment problem per type
    picks the one with the best total score (what the quality phase starts from).
    """
    out_h: list[np.ndarray] = []
    out_o: list[np.ndarray] = []
    for ti in np.unique(t):
        sel = t == ti
        slots = np.repeat(o[sel], np.round(n[sel]).astype(np.int64))
        if len(slots) == 0:
            continue
        members = types.members[ti]
        if len(slots) > len(members):
            raise ValueError(f"type {ti}: {len(slots)} places for {len(members)} households")
        rows, cols = linear_sum_assignment(data.score[members][:, slots], maximize=True)
        out_h.append(members[rows])
        out_o.append(slots[cols])
    if not out_h:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(out_h).astype(np.int64), np.concatenate(out_o).astype(np.int64)


TYPE_LNS_VALUE_SLACK = 1.0  # pairs priced more than this many persons below zero stay out of neighbourhoods


class TypeAllocation:
    """Households of each type per offer, (T, O) integers, with the capacity they leave."""

    def __init__(self, tdata: MatchingData) -> None:
        self.data = tdata
        self.counts = np.zeros(tdata.codes.shape)
        self.placed = np.zeros(tdata.codes.shape[0])
        self.left, self.units = capacity_left(tdata)
        self.demand = tdata.hh.demand.astype(np.float64)
        self.uses = tdata.hh.units_taken()

    @classmethod
    def of_counts(cls, tdata: MatchingData, t: np.ndarray, o: np.ndarray, n: np.ndarray) -> TypeAllocation:
        """n[i] households of type t[i] at offer o[i]."""
        alloc = cls(tdata)
        for ti, oi, ni in zip(t, o, n, strict=True):
            if ni > 0:
                alloc.add(int(ti), int(oi), float(ni))
        return alloc

    @property
    def persons(self) -> float:
        return float(self.placed @ self.data.hh.persons)

    @property
    def unplaced(self) -> np.ndarray:
        return self.data.weight - self.placed

    def fits(self, t: int, o: np.ndarray) -> np.ndarray:
        return fits(self.demand[t], self.left[o]) & fits(self.uses[t], self.units[o])

    def add(self, t: int, o: int, n: float = 1.0) -> None:
        self.counts[t, o] += n
        self.placed[t] += n
        self.left[o] -= n * self.demand[t]
        self.units[o] -= n * self.uses[t]

    def replace_offers(self, offers: np.ndarray, counts: np.ndarray) -> None:
        """Set the counts of `offers` (columns) and recompute what they leave."""
        self.counts[:, offers] = counts
        self.placed = self.counts.sum(axis=1)
        left, units = capacity_left(self.data)
        self.left[offers] = left[offers] - counts.T @ self.demand
        self.units[offers] = units[offers] - counts.T @ self.uses


def round_lp(tdata: MatchingData, lp_x: np.ndarray) -> TypeAllocation:
    """A feasible allocation from the type LP: its integer part, then the largest fractions, then the rest greedily.

    Rounding down keeps every capacity row (all coefficients are non-negative); each further household is added
    only where it fits.
    """
    whole = np.floor(lp_x + INTEGRAL)
    alloc = TypeAllocation.of_counts(tdata, tdata.pair_h, tdata.pair_o, whole)
    frac = lp_x - whole
    for j in np.argsort(-frac, kind="stable"):
        if frac[j] < INTEGRAL:
            break
        t, o = int(tdata.pair_h[j]), int(tdata.pair_o[j])
        if alloc.placed[t] + 1 <= tdata.weight[t] and alloc.fits(t, np.array([o]))[0]:
            alloc.add(t, o)
    # The rest: larger households first, each to its best-scoring eligible offer that still fits.
    for t in np.argsort(-tdata.hh.persons, kind="stable"):
        el = np.nonzero(tdata.eligible[t])[0]
        while alloc.placed[t] + 1 <= tdata.weight[t] and len(el):
            el = el[alloc.fits(int(t), el)]
            if len(el) == 0:
                break
            alloc.add(int(t), int(el[np.argmax(tdata.score[t, el])]))
    return alloc


def improve_by_neighbourhoods(alloc: TypeAllocation, lp_x: np.ndarray, values: np.ndarray, policy: Policy,
                              deadline: float, bound: float, budget: WorkBudget) -> tuple[str, int]:
    """Persons up, a few municipalities at a time (`TypeNeighbourhoods`, by the shared loop of `neighbourhoods`),
    then many at a time where the LP's placement differs (`GuidedTypeNeighbourhoods`, docs/solver-tuning.md).
    Returns the termination and the number of neighbourhoods solved."""
    target = persons_target(bound, budget.persons_gap_ppm)
    outcome = search([TypeNeighbourhoods(alloc, lp_x, values, policy, budget.types.offers)], budget.types,
                     policy.solver.random_seed, deadline, budget.deadline_margin_s, bound, target)
    if outcome.termination != "work_limit" or budget.guided_types.rounds == 0 or alloc.persons >= target - INTEGRAL:
        return outcome.termination, outcome.rounds  # optimal, the goal reached, or the safety net has cut in
    guided = search([GuidedTypeNeighbourhoods(alloc, lp_x, values, policy, budget.guided_types.offers)],
                    budget.guided_types, policy.solver.random_seed, deadline, budget.deadline_margin_s, bound, target)
    return guided.termination, outcome.rounds + guided.rounds


SCREEN_SLACK = 1e-3  # persons: an LP relaxation this close below one person more cannot reach it


class TypeNeighbourhoods:
    """Re-solves a few municipalities' share of the types exactly as a small MIP.

    Municipalities are drawn where the LP places more persons than the allocation does (and, a little, where
    unplaced households could go). Everything outside stays; the MIP starts from the current counts, so persons
    never drop. `values` (T, O) are the LP's priced values of each pair; pairs far below zero are left out of the
    neighbourhoods, which keeps them small (so even one of every municipality is not the whole model).
    """

    def __init__(self, alloc: TypeAllocation, lp_x: np.ndarray, values: np.ndarray, policy: Policy,
                 offers: int) -> None:
        tdata = alloc.data
        self.alloc, self.policy, self.offers = alloc, policy, offers
        self.persons = tdata.hh.persons.astype(np.float64)
        lp_counts = np.zeros(tdata.codes.shape)
        lp_counts[tdata.pair_h, tdata.pair_o] = lp_x
        self.lp_persons = self.persons @ lp_counts
        self.promising = tdata.eligible & (values >= -TYPE_LNS_VALUE_SLACK)

    def value(self) -> float:
        return self.alloc.persons

    def draw(self, rng: np.random.Generator, offers: int, movers: int | None) -> np.ndarray | None:
        """The offers of the neighbourhood, in order; every type promising there may move (`movers` has no say)."""
        alloc = self.alloc
        want = (alloc.unplaced * self.persons) @ self.promising
        weights = np.maximum(self.lp_persons - self.persons @ alloc.counts, 0.0) \
            + 0.01 * want / max(float(want.max()), 1.0)
        chosen = draw_offers(rng, weights, offers)
        return None if chosen is None else np.nonzero(chosen)[0]

    def solve(self, chosen: np.ndarray, nodes: int, deadline: float) -> Step:
        """The best counts for these offers given the rest replace theirs when they place more persons."""
        alloc = self.alloc
        tdata = alloc.data
        n_types = tdata.codes.shape[0]
        avail = alloc.unplaced + alloc.counts[:, chosen].sum(axis=1)
        sub = tdata.rows(np.arange(n_types), avail)
        t, k = np.nonzero((self.promising[:, chosen] | (alloc.counts[:, chosen] > 0)) & (avail[:, None] >= 1))
        sub.set_pairs(t, chosen[k])
        model = build_model(sub)
        start = alloc.counts[sub.pair_h, sub.pair_o]
        # Most neighbourhoods cannot place one person more: their LP relaxation proves it faster than the MIP's
        # root does, and the outcome is the same (persons are whole, so a gain is at least one; the slack is far
        # above the LP's tolerances and below the half-integral values its optimum often takes).
        relaxed = relaxation(model, self.policy, model.persons, deadline - time.perf_counter(),
                             BUDGET.lp_simplex_iterations)
        if relaxed is not None and relaxed.objective < model.persons @ start + 1.0 - SCREEN_SLACK:
            return Step("optimal", improved=False)
        res = None if relaxed is None else self._near_relaxation(model, start, relaxed, nodes, deadline)
        if res is None:
            res = HighsDirect(model, self.policy, integer=True).solve(
                "max_persons_types", model.persons, deadline - time.perf_counter(), abs_gap=0.5, start=start,
                max_nodes=nodes)
        x = np.round(res.x)
        if model.persons @ x <= model.persons @ start + 0.5:
            return Step(res.termination, improved=False)
        counts = np.zeros((n_types, len(chosen)))
        counts[sub.pair_h, np.searchsorted(chosen, sub.pair_o)] = x
        alloc.replace_offers(chosen, counts)
        return Step(res.termination, improved=True)

    def _near_relaxation(self, model: LinearModel, start: np.ndarray, relaxed: PhaseResult, nodes: int,
                         deadline: float) -> PhaseResult | None:
        """The best counts each within one of the LP relaxation's (or at the incumbent's), when they place as many
        persons as the relaxation allows: then they are the neighbourhood's optimum, found by a MIP a tenth its size
        without the root cuts the whole one spends a second on (docs/solver-tuning.md). None when they fall short,
        and the whole MIP decides."""
        if time.perf_counter() >= deadline:
            return None  # the safety net has cut in: one MIP, as before, not three
        # Within the model's own bounds too: an LP's value a tolerance outside them must not widen the box.
        lower = np.minimum(np.clip(np.floor(relaxed.x + INTEGRAL), 0.0, model.most), start)
        upper = np.maximum(np.clip(np.ceil(relaxed.x - INTEGRAL), 0.0, model.most), start)
        most = np.floor(relaxed.objective + SCREEN_SLACK)  # persons are whole
        # First with the persons LP's tie-break by quality, a few nodes: persons alone leave HiGHS any of many
        # allocations, and at 10,000 x 400 the quality found then fell by 1-2 %. Then persons alone, whose whole
        # values let HiGHS prove in few nodes what the tie-break makes it branch on.
        for objective, limit in ((lp_objective(model), BUDGET.near_tie_nodes), (model.persons, nodes)):
            try:
                res = HighsDirect(model, self.policy, integer=True, fixed=(lower, upper)).solve(
                    "max_persons_types", objective, deadline - time.perf_counter(), abs_gap=0.5, start=start,
                    max_nodes=limit)
            except SolveError:
                continue
            if model.persons @ np.round(res.x) >= most - 0.5:
                if res.termination != "time_limit":
                    res.termination = "optimal"  # persons reach the relaxation's: none more fit
                return res
        return None


class GuidedTypeNeighbourhoods(TypeNeighbourhoods):
    """Re-solves the municipalities where the LP and the allocation differ type by type, linked by the types that
    would move between them.

    The first municipality is drawn by the persons the LP places there of types the allocation has elsewhere or
    not at all; each further one by how many persons of the types the chosen ones lack (by the LP) the allocation
    holds there beyond the LP, and of the types the chosen ones hold beyond the LP that the LP places there. A
    household can only move between municipalities of one neighbourhood, so the chain keeps each move's both ends
    together; the plain neighbourhoods compare only the persons per municipality, where such moves cancel out.
    """

    def __init__(self, alloc: TypeAllocation, lp_x: np.ndarray, values: np.ndarray, policy: Policy,
                 offers: int) -> None:
        super().__init__(alloc, lp_x, values, policy, offers)
        tdata = alloc.data
        self.lp_counts = np.zeros(tdata.codes.shape)
        self.lp_counts[tdata.pair_h, tdata.pair_o] = lp_x

    def draw(self, rng: np.random.Generator, offers: int, movers: int | None) -> np.ndarray | None:
        """The offers of the neighbourhood, in order; None when the allocation holds every type where the LP does."""
        diff = (self.lp_counts - self.alloc.counts) * self.persons[:, None]
        lacking = np.where(diff > INTEGRAL, diff, 0.0)  # (T, O) persons the LP places there and the allocation not
        beyond = np.where(diff < -INTEGRAL, -diff, 0.0)  # the allocation's persons there beyond the LP
        weights = lacking.sum(axis=0)
        if not weights.any():
            return None
        # Few (type, offer) cells differ: sparse, and the chosen municipalities' sums kept as they grow, so a draw
        # costs little beside its MIP (dense, it was about a third of the guided search's time).
        beyond_at, lacking_at = self._cells(beyond), self._cells(lacking)
        n = len(weights)
        chosen = np.zeros(n, dtype=bool)
        first = rng.choice(n, p=weights / weights.sum())
        chosen[first] = True
        lacked, held = lacking[:, first].copy(), beyond[:, first].copy()
        while chosen.sum() < offers:
            # Where the types the chosen municipalities lack are now, and where those they hold beyond the LP go;
            # a little of the first weight keeps every municipality with a difference in reach.
            link = beyond_at @ lacked + lacking_at @ held
            link = np.where(chosen, 0.0, link + 1e-3 * weights)
            if not link.any():
                break
            more = rng.choice(n, p=link / link.sum())
            chosen[more] = True
            lacked += lacking[:, more]
            held += beyond[:, more]
        return np.nonzero(chosen)[0]

    @staticmethod
    def _cells(persons: np.ndarray) -> sp.csr_matrix:
        """(O, T) 1 where `persons` (T, O) is positive."""
        t, o = np.nonzero(persons)
        return sp.csr_matrix((np.ones(len(t)), (o, t)), shape=persons.shape[::-1])
