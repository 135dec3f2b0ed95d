"""Matching data as arrays: the pool's demands, the offers' remaining capacity, eligibility, scores, candidates."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import date

import numpy as np

from rematch_pipeline.contract import AGS_RE, OCCUPATIONS, SETTLEMENT_TYPES, WEIGHT_ASPECTS
from rematch_pipeline.domain import (
    CAPACITY_DIMENSIONS,
    ROOM_CLASSES,
    Capacity,
    CapacityOffer,
    Consumption,
    Demand,
    Household,
    Policy,
    demand_of,
    weeks_waiting,
)
from rematch_pipeline.matching.eligibility import ELIGIBLE, exclusion_codes, medical_mask
from rematch_pipeline.matching.scoring import COMMUNITY_VALUE, CULTURE_VALUE, score_matrices
from rematch_pipeline.matching.units import ROOM_TABLE

SECTORS = tuple(o for o in OCCUPATIONS if o not in ("none", "other"))
N_DIMS = len(CAPACITY_DIMENSIONS)


@dataclass
class HouseholdArrays:
    persons: np.ndarray  # (H,)
    rooms: np.ndarray  # (H,) 1..4
    demand: np.ndarray  # (H, N_DIMS) in CAPACITY_DIMENSIONS order
    need_accessible: np.ndarray
    need_pets: np.ndarray
    need_medical: np.ndarray  # bit mask
    weights: np.ndarray  # (H, 6) in WEIGHT_ASPECTS order
    occupations: np.ndarray  # (H, sectors): working-age adults per shortage-relevant sector
    workers: np.ndarray  # (H,) working-age adults with such an occupation
    child_need: np.ndarray  # (H,) Kita and school places needed
    ties_ags: np.ndarray  # (H,) int AGS, 0 if none
    pref_settlement: np.ndarray  # (H,) settlement code, -1 for "any"
    weeks_waiting: np.ndarray  # (H,) `domain.weeks_waiting` on the round's date
    # (H, O) look-ahead rounds: persons' worth a place costs the coming rounds beyond the household's least costly
    # one (`matching.look_ahead`); (H, 0) in a round that does not look ahead.
    future_cost: np.ndarray

    def units_taken(self, h: np.ndarray | slice = slice(None)) -> np.ndarray:
        """(n, len(ROOM_CLASSES)): `domain.units_taken` of each household h, as arrays."""
        return ROOM_TABLE[self.rooms[h]]


@dataclass
class OfferArrays:
    ags: np.ndarray  # (O,) int
    valid: np.ndarray  # (O,) bool
    remaining: np.ndarray  # (O, N_DIMS) capacity left after earlier accepted matches
    units_ge_left: np.ndarray  # (O, 4) units with >= k rooms left
    units_ge_total: np.ndarray  # (O, 4) units with >= k rooms offered
    medical: np.ndarray  # bit mask
    n_medical: np.ndarray
    shortage: np.ndarray  # (O, sectors) 0/1
    community: np.ndarray
    culture: np.ndarray
    settlement: np.ndarray
    education_seats: np.ndarray


@dataclass
class MatchingData:
    round_date: date
    policy: Policy
    households: list[Household]
    demands: list[Demand]
    offers: list[CapacityOffer]
    hh: HouseholdArrays
    of: OfferArrays
    codes: np.ndarray  # (H, O) int8 exclusion code, 0 = eligible
    score: np.ndarray  # (H, O) objective score (household + municipality terms)
    own_score: np.ndarray  # (H, O) the household's own score (preference rank)
    pair_h: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # candidate pairs
    pair_o: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    copies: np.ndarray | None = None  # households each row stands for (see `types`); None: one each

    @property
    def weight(self) -> np.ndarray:
        """(H,) households each row stands for: 1, or the size of its household type."""
        return np.ones(len(self.households)) if self.copies is None else self.copies

    @property
    def n_pairs(self) -> int:
        return len(self.pair_h)

    @property
    def eligible(self) -> np.ndarray:
        return self.codes == ELIGIBLE

    @property
    def n_eligible(self) -> int:
        return int(self.eligible.sum())

    def set_pairs(self, pair_h: np.ndarray, pair_o: np.ndarray) -> None:
        # Canonical order (household, offer) keeps models, and so results, deterministic.
        order = np.lexsort((pair_o, pair_h))
        self.pair_h, self.pair_o = pair_h[order].astype(np.int64), pair_o[order].astype(np.int64)

    def rows(self, idx: np.ndarray, copies: np.ndarray) -> MatchingData:
        """The same round restricted to the households `idx`, each standing for `copies` households; no pairs."""
        ha = HouseholdArrays(**{f.name: getattr(self.hh, f.name)[idx] for f in fields(HouseholdArrays)})
        return replace(self, households=[self.households[i] for i in idx],
                       demands=[self.demands[i] for i in idx], hh=ha, codes=self.codes[idx], score=self.score[idx],
                       own_score=self.own_score[idx], pair_h=np.zeros(0, dtype=np.int64),
                       pair_o=np.zeros(0, dtype=np.int64), copies=np.asarray(copies, dtype=np.float64))

    def preference_rank(self, h: np.ndarray, o: np.ndarray) -> np.ndarray:
        """Rank (1 = best) of the municipality of offer o among household h's eligible municipalities, by the
        household's own score; a municipality counts once (its best offer) and ties share the better rank."""
        if len(h) == 0:
            return np.zeros(0, dtype=np.int64)
        own = np.where(self.eligible[h], self.own_score[h], -np.inf)  # (n, O)
        # Offers are sorted by AGS, so each municipality is a contiguous block of columns.
        starts = np.flatnonzero(np.r_[True, self.of.ags[1:] != self.of.ags[:-1]])
        best_per_municipality = np.maximum.reduceat(own, starts, axis=1)  # (n, municipalities)
        mine = self.own_score[h, o][:, None]
        return np.asarray((best_per_municipality > mine + 1e-9).sum(axis=1) + 1)


def used_capacity(data: MatchingData, h: np.ndarray, o: np.ndarray,
                  copies: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """What households h placed at offers o take per offer: (O, dims) and units per room class (O, len(ROOM_CLASSES));
    `copies` households of each (households of one type)."""
    n_off = len(data.offers)
    many = np.ones(len(h)) if copies is None else np.asarray(copies, dtype=np.float64)
    used = np.zeros((n_off, N_DIMS))
    np.add.at(used, o, data.hh.demand[h] * many[:, None])
    units = np.zeros((n_off, len(ROOM_CLASSES)))
    np.add.at(units, o, data.hh.units_taken(h) * many[:, None])
    return used, units


def capacity_left(data: MatchingData) -> tuple[np.ndarray, np.ndarray]:
    """(O, dims) and (O, len(ROOM_CLASSES)) what the round may place at each offer: what is left, and nothing where
    a resubmission cut an offer below what it already holds (the model's right-hand sides)."""
    return (np.maximum(data.of.remaining, 0).astype(np.float64),
            np.maximum(data.of.units_ge_left, 0).astype(np.float64))


def usage(data: MatchingData) -> tuple[np.ndarray, np.ndarray]:
    """(H, D) what each household takes of an offer, and (O, D) what an offer has left (`capacity_left`), over the
    same D rows a model's capacity families hold: every capacity dimension, then the units of each room class."""
    left, units = capacity_left(data)
    return np.column_stack([data.hh.demand, data.hh.units_taken()]), np.column_stack([left, units])


def fits(takes: np.ndarray, left: np.ndarray) -> np.ndarray:
    """Whether what a household takes (..., D) fits in what an offer has left (..., D): on every row, broadcast."""
    return np.asarray((takes <= left).all(axis=-1))


FIT_CHUNK = 1000  # households per slice in `fits_left`: (H, O, D) at once is too large at national scale


def fits_left(data: MatchingData) -> np.ndarray:
    """(H, O) bool: the household takes no more of any capacity row than the offer has left (`fits`). A pair that
    does not fit is in no placement, though an LP may use a share of it (a household needing two Kita places where
    one is left), so the quality bound's values leave such pairs out; eligibility does not, as it answers for hard
    needs only."""
    demand, left = usage(data)
    out = np.empty((len(demand), len(left)), dtype=bool)
    for lo in range(0, len(demand), FIT_CHUNK):
        out[lo:lo + FIT_CHUNK] = fits(demand[lo:lo + FIT_CHUNK, None, :], left[None, :, :])
    return out


def _ags_code(ags: str | None) -> int:
    """An 8-digit AGS as an integer; anything else (validation bypassed) means no tie, never a crash."""
    return int(ags) if ags and AGS_RE.fullmatch(ags) else 0


def _household_arrays(households: list[Household], demands: list[Demand], round_date: date,
                      policy: Policy) -> HouseholdArrays:
    lo, hi = policy.working_ages
    settlement_code = {s: i for i, s in enumerate(SETTLEMENT_TYPES)}
    occupations = np.zeros((len(households), len(SECTORS)), dtype=np.int64)
    sector_index = {s: i for i, s in enumerate(SECTORS)}
    for i, h in enumerate(households):
        for m in h.members:
            if lo <= round_date.year - m.birth_year <= hi and m.occupation in sector_index:
                occupations[i, sector_index[m.occupation]] += 1
    return HouseholdArrays(
        persons=np.array([d.persons for d in demands], dtype=np.int64),
        rooms=np.array([d.rooms_needed for d in demands], dtype=np.int64),
        demand=np.array([[d.of(dim) for dim in CAPACITY_DIMENSIONS] for d in demands],
                        dtype=np.int64).reshape(len(demands), N_DIMS),
        need_accessible=np.array([h.needs_accessible_unit for h in households], dtype=bool),
        need_pets=np.array([h.needs_pet_unit for h in households], dtype=bool),
        need_medical=np.array([medical_mask(h.hard_medical_needs) for h in households], dtype=np.int64),
        weights=np.array([[h.weights.get(a, 0) for a in WEIGHT_ASPECTS] for h in households],
                         dtype=np.float64).reshape(len(households), len(WEIGHT_ASPECTS)),
        occupations=occupations,
        workers=occupations.sum(axis=1),
        child_need=np.array([d.kita_u3 + d.kita_ue3 + d.school_primary + d.school_secondary for d in demands],
                            dtype=np.int64),
        ties_ags=np.array([_ags_code(h.ties_ags) for h in households], dtype=np.int64),
        pref_settlement=np.array([settlement_code.get(h.pref_settlement, -1) for h in households], dtype=np.int64),
        weeks_waiting=np.array([weeks_waiting(h, round_date) for h in households], dtype=np.int64),
        future_cost=np.zeros((len(households), 0), dtype=np.float64),
    )


def _offer_arrays(offers: list[CapacityOffer], round_date: date,
                  consumed: Mapping[str, Consumption]) -> OfferArrays:
    rem = [Capacity.of(o, consumed.get(o.offer_id)) for o in offers]
    settlement_code = {s: i for i, s in enumerate(SETTLEMENT_TYPES)}
    return OfferArrays(
        ags=np.array([int(o.ags) for o in offers], dtype=np.int64),
        valid=np.array([o.is_valid_on(round_date) for o in offers], dtype=bool),
        remaining=np.array([r.dimensions for r in rem], dtype=np.int64).reshape(len(offers), N_DIMS),
        units_ge_left=np.array([r.units for r in rem], dtype=np.int64).reshape(len(offers), len(ROOM_CLASSES)),
        units_ge_total=np.array([[o.units_with_at_least(k) for k in ROOM_CLASSES] for o in offers],
                                dtype=np.float64).reshape(len(offers), len(ROOM_CLASSES)),
        medical=np.array([medical_mask(o.medical_services) for o in offers], dtype=np.int64),
        n_medical=np.array([len(o.medical_services - {"none"}) for o in offers], dtype=np.float64),
        shortage=np.array([[s in o.job_sectors_shortage for s in SECTORS] for o in offers],
                          dtype=np.int64).reshape(len(offers), len(SECTORS)),
        community=np.array([COMMUNITY_VALUE.get(o.ukrainian_community, 0.0) for o in offers], dtype=np.float64),
        culture=np.array([CULTURE_VALUE.get(o.settlement_type, 0.0) for o in offers], dtype=np.float64),
        settlement=np.array([settlement_code.get(o.settlement_type, -2) for o in offers], dtype=np.int64),
        education_seats=np.array([o.kita_u3 + o.kita_ue3 + o.school_primary + o.school_secondary for o in offers],
                                 dtype=np.float64),
    )


def build_data(
    households: Sequence[Household],
    offers: Sequence[CapacityOffer],
    round_date: date,
    policy: Policy,
    declined: Mapping[str, set[str]] | None = None,
    consumed: Mapping[str, Consumption] | None = None,
    ignore_dates: bool = False,
) -> MatchingData:
    """Pure: order inputs canonically (deterministic results), derive demands, eligibility, scores, candidates.
    `ignore_dates`: every offer counts as valid (the look-ahead applies each coming round's date itself)."""
    declined = declined or {}
    hh = sorted(households, key=lambda h: h.case_id)
    of = sorted(offers, key=lambda o: (o.ags, o.offer_id))
    demands = [demand_of(h, round_date, policy) for h in hh]
    ha = _household_arrays(hh, demands, round_date, policy)
    oa = _offer_arrays(of, round_date, consumed or {})
    declined_m = np.zeros((len(hh), len(of)), dtype=bool)
    ags_index: dict[str, list[int]] = {}
    for j, o in enumerate(of):
        ags_index.setdefault(o.ags, []).append(j)
    for i, h in enumerate(hh):
        for ags in declined.get(h.case_id, ()):
            declined_m[i, ags_index.get(ags, [])] = True
    dims = {d: i for i, d in enumerate(CAPACITY_DIMENSIONS)}
    codes = exclusion_codes(
        need_accessible=ha.need_accessible, need_pets=ha.need_pets, need_medical=ha.need_medical,
        persons=ha.persons, rooms=ha.rooms, declined=declined_m,
        valid=np.ones(len(of), dtype=bool) if ignore_dates else oa.valid,
        wheelchair_left=oa.remaining[:, dims["units_wheelchair"]],
        pets_left=oa.remaining[:, dims["units_pets_allowed"]],
        medical_offered=oa.medical, places_left=oa.remaining[:, dims["places_persons"]], units_ge_left=oa.units_ge_left,
    )
    score, own = score_matrices(ha, oa, policy) if hh and of else (np.zeros(codes.shape), np.zeros(codes.shape))
    data = MatchingData(
        round_date=round_date, policy=policy, households=hh, demands=demands, offers=of,
        hh=ha, of=oa, codes=codes, score=score, own_score=own,
    )
    data.set_pairs(*top_candidates(data, policy.solver.candidates_per_household))
    return data


def top_candidates(data: MatchingData, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each household's k best eligible offers by score: the pruned pair set the model starts from."""
    eligible = data.eligible
    if eligible.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    n_off = eligible.shape[1]
    if k >= n_off:
        rows_all, cols_all = np.nonzero(eligible)
        return rows_all.astype(np.int64), cols_all.astype(np.int64)
    masked = np.where(eligible, data.score, -np.inf)
    # A stable sort breaks ties by offer order, whatever the number of offers.
    top = np.argsort(-masked, axis=1, kind="stable")[:, :k]
    rows = np.repeat(np.arange(eligible.shape[0]), k)
    cols = top.ravel()
    keep = eligible[rows, cols]
    return rows[keep], cols[keep]
