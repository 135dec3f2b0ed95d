"""Typed domain core: households, capacity offers, rounds and assignments, and the pure rules that derive needs."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

# Capacity dimensions every offer carries and every household consumes; names are the contract's columns.
CAPACITY_DIMENSIONS = (
    "places_persons", "units_wheelchair", "units_pets_allowed", "kita_u3", "kita_ue3",
    "school_primary", "school_secondary", "language_course_seats",
)
ROOM_CLASSES = (1, 2, 3, 4)  # 4 means "4 or more rooms"
LOOK_AHEAD_METHODS = ("plan", "prices")  # policy look_ahead_method (`matching.look_ahead`)


@dataclass(frozen=True)
class Member:
    relation: str
    sex: str
    birth_year: int
    mobility_impaired: bool
    occupation: str
    qualification: str


@dataclass(frozen=True)
class Household:
    case_id: str
    interview_date: date
    consent_matching: bool
    consent_health_share: bool
    languages: tuple[str, ...]
    german_level: str
    wheelchair_access: bool
    medical_needs: tuple[str, ...]
    pets: str
    pref_settlement: str
    weights: Mapping[str, int]
    members: tuple[Member, ...]
    ties_ags: str | None = None
    interview_location: str = ""
    # Personal data below: never logged, never given to the solver, only in packets after acceptance.
    contact_name: str = field(default="", repr=False)  # the name the household wants to be addressed by
    contact_phone: str = field(default="", repr=False)
    contact_email: str = field(default="", repr=False)
    notes: str = field(default="", repr=False)

    @property
    def persons(self) -> int:
        return len(self.members)

    @property
    def needs_accessible_unit(self) -> bool:
        return self.wheelchair_access or any(m.mobility_impaired for m in self.members)

    @property
    def needs_pet_unit(self) -> bool:
        return self.pets != "none"

    @property
    def hard_medical_needs(self) -> frozenset[str]:
        return frozenset(n for n in self.medical_needs if n != "none")


@dataclass(frozen=True)
class CapacityOffer:
    offer_id: str
    ags: str
    municipality_name: str
    state: str
    settlement_type: str
    valid_from: date
    valid_until: date
    places_persons: int
    units_1_room: int
    units_2_rooms: int
    units_3_rooms: int
    units_4plus_rooms: int
    units_wheelchair: int
    units_pets_allowed: int
    kita_u3: int
    kita_ue3: int
    school_primary: int
    school_secondary: int
    language_course_seats: int
    medical_services: frozenset[str]
    job_sectors_shortage: frozenset[str]
    ukrainian_community: str
    contact_name: str = ""
    contact_email: str = field(default="", repr=False)

    def is_valid_on(self, day: date) -> bool:
        return self.valid_from <= day <= self.valid_until

    @property
    def kreis(self) -> str:
        return self.ags[:5]

    def units_with_at_least(self, rooms: int) -> int:
        """Units that can house a household needing `rooms` rooms (a larger unit may house a smaller household)."""
        by_class = {1: self.units_1_room, 2: self.units_2_rooms, 3: self.units_3_rooms, 4: self.units_4plus_rooms}
        return sum(n for k, n in by_class.items() if k >= rooms)

    def capacity(self, dimension: str) -> int:
        return int(getattr(self, dimension))


@dataclass(frozen=True)
class Policy:
    """Every policy choice of a round, read from policy.toml: the one home of every default (`config.load_policy`)."""

    rooms_by_persons: tuple[tuple[int, int], ...]  # (min persons, rooms)
    kita_u3_ages: tuple[int, int]
    kita_ue3_ages: tuple[int, int]
    primary_ages: tuple[int, int]
    secondary_ages: tuple[int, int]
    language_course_ages: tuple[int, int]
    language_course_levels: tuple[str, ...]
    working_ages: tuple[int, int]
    # Objective: persons first (lexicographic), then quality. Term weights scale the household's own 0-5 weights.
    settlement_bonus: float
    ties_same_municipality_bonus: float
    ties_same_kreis_bonus: float
    municipality_interest_weight: float
    # Balanced fill (optional, 0 = off): points per person placed within their offer's proportional share of the
    # round (`matching.fair_share`). Like the terms above it only decides between placements of equal size.
    balanced_fill_weight: float
    # Waiting (optional, 0 = off): points per full week since the household's interview (`weeks_waiting`),
    # so of two placements of equal size the one placing households that waited longer wins.
    waiting_weight_per_week: float
    # Look-ahead (optional, 0 = off): points per person a placement costs the coming `look_ahead_rounds`
    # (`matching.look_ahead`), so of two placements of equal size the one that keeps what the coming rounds need wins.
    look_ahead_weight: float
    look_ahead_method: str  # LOOK_AHEAD_METHODS: by the plan over the coming rounds, or by its dual prices
    look_ahead_rounds: int
    look_ahead_interval_days: int  # the coming rounds' dates: an offer that expires before one serves none of it
    look_ahead_samples: int
    offer_response_days: int
    solver: SolverSettings  # how hard to search, as opposed to what a good match is


@dataclass(frozen=True)
class SolverSettings:
    """How hard the solver searches for the best match the policy describes, read from policy.toml's [solver]."""

    time_limit_s: float  # a safety net only: every phase stops after a fixed amount of work
    mip_rel_gap: float
    threads: int
    random_seed: int
    candidates_per_household: int
    pyomo_max_pairs: int  # larger models are passed to HiGHS as arrays (Pyomo's construction dominates)


@dataclass(frozen=True)
class Demand:
    """What one household consumes of a municipality's capacity in one round."""

    persons: int
    rooms_needed: int
    kita_u3: int
    kita_ue3: int
    school_primary: int
    school_secondary: int
    language_course_seats: int
    units_wheelchair: int
    units_pets_allowed: int

    def of(self, dimension: str) -> int:
        return self.persons if dimension == "places_persons" else int(getattr(self, dimension))


def units_taken(rooms_needed: int) -> tuple[int, ...]:
    """The room rule. Units are counted per room class k as "units with at least k rooms", so a larger unit may
    house a smaller household: a household needing r rooms takes one unit from every class k <= r (1 or 0 per
    class, in ROOM_CLASSES order). With nested classes, households fit an offer's units exactly when no class is
    asked for more units than it counts (Hall's condition)."""
    return tuple(int(rooms_needed >= k) for k in ROOM_CLASSES)


@dataclass(frozen=True)
class Consumption:
    """What earlier accepted (and still pending) matches took from one offer: per capacity dimension, and the rooms
    each of those households needs."""

    dimensions: Mapping[str, int] = field(default_factory=dict)
    rooms_needed: tuple[int, ...] = ()


@dataclass(frozen=True)
class Capacity:
    """What an offer has left: each capacity dimension (CAPACITY_DIMENSIONS order) and the units with at least k
    rooms (ROOM_CLASSES order). Negative where a resubmission cut below what is already held."""

    dimensions: tuple[int, ...]
    units: tuple[int, ...]

    @classmethod
    def of(cls, offer: CapacityOffer, consumed: Consumption | None = None) -> Capacity:
        """The offer's capacity less what earlier matches hold."""
        consumed = consumed or Consumption()
        held = [units_taken(r) for r in consumed.rooms_needed]
        return cls(tuple(offer.capacity(d) - int(consumed.dimensions.get(d, 0)) for d in CAPACITY_DIMENSIONS),
                   tuple(offer.units_with_at_least(k) - sum(u[i] for u in held) for i, k in enumerate(ROOM_CLASSES)))

    def units_for(self, rooms: int) -> int:
        """Free units for a household needing `rooms` rooms: the tightest of the classes it takes from."""
        return min(n for n, take in zip(self.units, units_taken(rooms), strict=True) if take)

    def fits(self, demand: Demand) -> bool:
        """Every dimension the household needs is left, and a unit with enough rooms."""
        return all(left >= demand.of(d) for d, left in zip(CAPACITY_DIMENSIONS, self.dimensions, strict=True)
                   if demand.of(d)) and self.units_for(demand.rooms_needed) >= 1

    def take(self, demand: Demand) -> Capacity:
        return Capacity(tuple(left - demand.of(d) for d, left in zip(CAPACITY_DIMENSIONS, self.dimensions,
                                                                     strict=True)),
                        tuple(n - t for n, t in zip(self.units, units_taken(demand.rooms_needed), strict=True)))

    def shortfalls(self) -> list[tuple[str, int]]:
        """(dimension, how many more are held than offered) where the offer is overcommitted; a room class is named
        `units_{k}_rooms_or_more`."""
        dims = [(d, -left) for d, left in zip(CAPACITY_DIMENSIONS, self.dimensions, strict=True) if left < 0]
        return dims + [(f"units_{k}_rooms_or_more", -left) for k, left in zip(ROOM_CLASSES, self.units, strict=True)
                       if left < 0]


def rooms_needed(persons: int, policy: Policy) -> int:
    """The largest room class whose minimum household size is reached (the table's order does not matter)."""
    return max((k for min_persons, k in policy.rooms_by_persons if persons >= min_persons), default=1)


def _count_ages(ages: list[int], bounds: tuple[int, int]) -> int:
    lo, hi = bounds
    return sum(1 for a in ages if lo <= a <= hi)


def weeks_waiting(household: Household, round_date: date) -> int:
    """Full weeks from the household's interview to the round: how long it has waited for a place (0 if the
    interview is dated after the round, which validation refuses for new files)."""
    return max(0, (round_date - household.interview_date).days // 7)


def ages_on(household: Household, round_date: date) -> list[int]:
    return [round_date.year - m.birth_year for m in household.members]


def demand_of(household: Household, round_date: date, policy: Policy) -> Demand:
    ages = ages_on(household, round_date)
    needs_course = household.german_level in policy.language_course_levels
    return Demand(
        persons=household.persons,
        rooms_needed=rooms_needed(household.persons, policy),
        kita_u3=_count_ages(ages, policy.kita_u3_ages),
        kita_ue3=_count_ages(ages, policy.kita_ue3_ages),
        school_primary=_count_ages(ages, policy.primary_ages),
        school_secondary=_count_ages(ages, policy.secondary_ages),
        language_course_seats=_count_ages(ages, policy.language_course_ages) if needs_course else 0,
        units_wheelchair=1 if household.needs_accessible_unit else 0,
        units_pets_allowed=1 if household.needs_pet_unit else 0,
    )


def pseudonym(case_id: str, salt: str) -> str:
    """Stable pseudonymous id used in logs, file names and the audit trail instead of the case id."""
    return "H" + hashlib.sha256(f"{salt}:{case_id}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Assignment:
    round_id: str
    case_id: str
    ags: str
    persons: int
    score: float
    score_terms: Mapping[str, float]
    preference_rank: int
    offer_id: str = ""


@dataclass(frozen=True)
class Unmatched:
    round_id: str
    case_id: str
    persons: int
    reason: str  # in words, rendered from `why` (`matching.reasons.words`)
    why: UnmatchedReason | None = None  # none for rounds stored before reasons were kept as codes


@dataclass(frozen=True)
class UnmatchedReason:
    """Why a household was left unmatched, as codes and counts; the words are rendered from it. For a household that
    did not consent to share health details, its health or disability needs appear only as `health_need`."""

    kind: str  # "no_valid_offer", "no_eligible", "capacity" or "would_displace"
    offers: int  # the round's offers (no_eligible) or the household's eligible offers (capacity, would_displace)
    counts: tuple[tuple[str, int], ...] = ()  # (what excluded an offer or ran out there, at how many offers), in order
    missing_services: tuple[str, ...] = ()  # medical services no offer has (kept only with consent)

    def as_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "offers": self.offers, "counts": [list(c) for c in self.counts],
                "missing_services": list(self.missing_services)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> UnmatchedReason:
        return cls(str(d["kind"]), int(d["offers"]), tuple((str(k), int(n)) for k, n in d.get("counts", ())),
                   tuple(str(s) for s in d.get("missing_services", ())))


PENDING, ACCEPTED, DECLINED, EXPIRED = "pending", "accepted", "declined", "expired"
WITHDRAWN = "withdrawn"  # the household's data were erased on request while its offer was pending
HOLDS_CAPACITY = (PENDING, ACCEPTED)  # a pending offer keeps its places until it is answered or expires


@dataclass
class MatchOffer:
    """A place offered to one household in one round, and its answer. The lifecycle: pending, then accepted or
    declined by the household before its deadline, or expired after it."""

    round_id: str
    case_id: str
    ags: str
    offer_id: str
    persons: int
    respond_by: date
    offered_at: datetime
    status: str = PENDING
    resolved_at: datetime | None = None
    demand: Mapping[str, int] = field(default_factory=dict)  # per capacity dimension, and rooms_needed

    def decide(self, decision: str, when: datetime, at: datetime) -> str:
        """Apply the answer given `when`, recorded `at`: "inserted", or why not (offers.DECISION_REJECTS)."""
        if decision not in ("accept", "decline"):
            raise ValueError(f"decision must be accept or decline, not {decision!r}")
        offered_at = self.offered_at if self.offered_at.tzinfo else self.offered_at.replace(tzinfo=UTC)
        if when < offered_at:
            return "before_offer"
        # The deadline is a day in UTC, as every time here: 23:30 at UTC-12 on the last day is already the next day.
        if self.status == WITHDRAWN:
            return "withdrawn"
        if self.status == EXPIRED or when.astimezone(UTC).date() > self.respond_by:
            return "after_deadline"
        if self.status != PENDING:
            return "already_recorded"
        self.status, self.resolved_at = (ACCEPTED if decision == "accept" else DECLINED), at
        return "inserted"

    def expire(self, today: date, at: datetime) -> bool:
        """A pending offer whose deadline passed before `today` expires: the household is back in the pool."""
        if self.status != PENDING or self.respond_by >= today:
            return False
        self.status, self.resolved_at = EXPIRED, at
        return True

    def withdraw(self, at: datetime) -> bool:
        """A pending offer of a household erased on request ends as withdrawn (not as expired: nobody let it lapse)."""
        if self.status != PENDING:
            return False
        self.status, self.resolved_at = WITHDRAWN, at
        return True


@dataclass
class MatchingRound:
    round_id: str
    round_date: date
    status: str = "planned"  # planned → solved → offered → closed, or failed
    assignments: list[Assignment] = field(default_factory=list)
    unmatched: list[Unmatched] = field(default_factory=list)
    solver_stats: dict[str, Any] = field(default_factory=dict)
    policy: Mapping[str, Any] = field(default_factory=dict)  # as stored with the round
    input_checksums: Mapping[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
    solved_at: datetime | None = None
    offered_at: datetime | None = None
    closed_at: datetime | None = None

    def offer(self, at: datetime) -> None:
        """A solved round's matches are offered to the households (once)."""
        if self.status != "solved":
            raise ValueError(f"round {self.round_id} is {self.status}; only a solved round can be offered")
        self.status, self.offered_at = "offered", at

    def close_if_answered(self, pending: int, at: datetime) -> bool:
        """An offered round with no offer `pending` any more (all accepted, declined or expired) is closed."""
        if self.status != "offered" or pending:
            return False
        self.status, self.closed_at = "closed", at
        return True


@dataclass(frozen=True)
class RawFile:
    """A file as received: its name as sent, where its copy is kept (relative to the home) and what became of it."""

    id: int
    original_name: str
    archived_path: str  # empty: refused before it was archived
    kind: str | None
    status: str
    received_at: datetime
    format: str | None = None  # as read (csv, xlsx, odk-zip); None: never read


@dataclass(frozen=True)
class QuarantineRow:
    """A refused row (or a whole refused file) with the rule it broke, kept until a corrected file fixes it."""

    id: int
    raw_file_id: int | None  # None: a decision refused at the command line
    table_name: str
    rule: str
    record: Mapping[str, Any] | None  # the row as sent, to be corrected; None for a whole file or once purged
    created_at: datetime
    resolved_at: datetime | None = None
    field: str | None = None  # the column the rule is about; None for a whole row or file
    superseded_by: int | None = None  # the row of a newer file with the same problem of the same record


@dataclass(frozen=True)
class Document:
    """One rendered version of a packet (to a municipality) or a letter (to a household)."""

    kind: str  # "packet" or "letter"
    round_id: str
    recipient: str  # AGS of a packet, case_id of a letter (never logged; `label` is)
    label: str  # AGS, or the household's pseudonym
    version: int
    sha256: str
    html_path: Path
    pdf_path: Path
    address: str  # e-mail address, "" when the recipient gave none
