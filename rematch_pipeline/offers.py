"""Offers to households and their answers: made, accepted, declined, expired; what that leaves for the next round."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from rematch_pipeline.canonical import parse_instant
from rematch_pipeline.config import policy_from_dict
from rematch_pipeline.domain import (
    ACCEPTED,
    CAPACITY_DIMENSIONS,
    DECLINED,
    EXPIRED,
    HOLDS_CAPACITY,
    PENDING,
    WITHDRAWN,
    Capacity,
    Consumption,
    MatchOffer,
    demand_of,
)
from rematch_pipeline.repository import UnitOfWork, require_round

# Outcome of a decision -> (field, rule, message a person can act on). "inserted" means applied.
DECISION_REJECTS: dict[str, tuple[str, str, str]] = {
    "already_recorded": ("decision", "decision_already_recorded",
                         "A decision for this case_id and round_id is already stored; only the first decision "
                         "counts and it is not changed. A household that declined and changed its mind is in the "
                         "pool of the next round, but is not offered the municipality it declined again; to give it "
                         "that place, or to undo an acceptance, arrange it with the municipality."),
    "not_offered": ("case_id", "decision_without_offer",
                    "No match was offered to this case_id in this round_id; check both ids."),
    "before_offer": ("decided_at", "decision_before_offer",
                     "The answer is dated before the household was offered this place; check decided_at (its date, "
                     "time and time zone) and send the decision again."),
    "withdrawn": ("case_id", "decision_for_withdrawn_offer",
                  "This household's offer was withdrawn because its data were erased on request; the answer cannot "
                  "be applied. Ask the coordination team."),
    "after_deadline": ("decided_at", "decision_after_deadline",
                       "The answer came after the offer's response deadline (or the offer had already expired); "
                       "the household is back in the pool and can be matched again in the next round."),
}


class DecisionError(ValueError):
    """A decision that cannot be applied; `rule` names why (see DECISION_REJECTS)."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self.field, self.rule, message = DECISION_REJECTS[outcome]
        super().__init__(message)


def make_offers(uow: UnitOfWork, round_id: str, actor: str, at: datetime) -> int:
    """One pending offer per assignment of a solved round, made `at`, due `offer_response_days` after the round date."""
    rnd = require_round(uow, round_id)
    rnd.offer(at)  # refused unless solved, before anything is written
    policy = policy_from_dict(dict(rnd.policy))
    respond_by = rnd.round_date + timedelta(days=policy.offer_response_days)
    assignments = uow.rounds.assignments(round_id)
    households = {h.case_id: h for h in uow.households.get_many(a.case_id for a in assignments)}
    made = []
    for a in assignments:
        d = demand_of(households[a.case_id], rnd.round_date, policy)
        made.append(MatchOffer(round_id, a.case_id, a.ags, a.offer_id, a.persons, respond_by, at,
                               demand={**{k: d.of(k) for k in CAPACITY_DIMENSIONS}, "rooms_needed": d.rooms_needed}))
    uow.offers.add(made)
    uow.rounds.save(rnd)
    for o in made:
        uow.audit(actor, "offer_made", round_id, {"case_id": o.case_id, "ags": o.ags,
                                                  "respond_by": respond_by.isoformat()}, at)
    close_if_answered(uow, round_id, actor, at)
    return len(made)


def expire_offers(uow: UnitOfWork, today: date, actor: str, at: datetime) -> int:
    """Pending offers whose deadline passed before `today` expire (recorded `at`): the household is back in the
    pool."""
    due = [o for o in uow.offers.due(today) if o.expire(today, at)]
    for o in due:
        uow.offers.save(o)
        uow.audit(actor, "offer_expired", o.round_id, {"case_id": o.case_id}, at)
    for round_id in sorted({o.round_id for o in due}):
        close_if_answered(uow, round_id, actor, at)
    return len(due)


def withdraw_offer(uow: UnitOfWork, offer: MatchOffer, actor: str, at: datetime) -> None:
    """A household erased on request: its pending offer ends as withdrawn, and its round closes if nothing is left."""
    if not offer.withdraw(at):
        return
    uow.offers.save(offer)
    uow.audit(actor, "offer_withdrawn", offer.round_id, {"case_id": offer.case_id}, at)
    close_if_answered(uow, offer.round_id, actor, at)


def close_if_answered(uow: UnitOfWork, round_id: str, actor: str, at: datetime) -> bool:
    """An offered round whose every offer is accepted, declined or expired is closed."""
    rnd = uow.rounds.get(round_id)
    if rnd is None or not rnd.close_if_answered(uow.offers.pending_count(round_id), at):
        return False
    uow.rounds.save(rnd)
    uow.audit(actor, "round_closed", round_id, {}, at)
    return True


def parse_decided_at(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = parse_instant(str(value).strip())
    if parsed is None:
        raise ValueError("decided_at is not a date and time that can be read")
    return parsed


def record_decision(uow: UnitOfWork, case_id: str, round_id: str, decision: str, decided_at: str | datetime,
                    reason: str | None, actor: str, at: datetime, source: str = "file",
                    raw_file_id: int | None = None) -> str:
    """Apply one answer, given `decided_at` and recorded `at`, to an offer; returns "inserted" or the reason it was
    not applied (DECISION_REJECTS).

    Accept: the household leaves the pool and the offer keeps its capacity. Decline: the household goes back to
    the pool and that municipality is never offered to it again.
    """
    if decision not in ("accept", "decline"):
        raise ValueError(f"decision must be accept or decline, not {decision!r}")
    if uow.decisions.exists(case_id, round_id):
        return "already_recorded"
    offer = uow.offers.get(round_id, case_id)
    if offer is None:
        return "not_offered"
    when = parse_decided_at(decided_at)
    outcome = offer.decide(decision, when, at)
    if outcome != "inserted":
        return outcome
    uow.decisions.add(dict(raw_file_id=raw_file_id, source=source, case_id=case_id, round_id=round_id,
                           decision=decision, decided_at=when.isoformat(), reason=reason or None, created_at=at))
    uow.offers.save(offer)
    if offer.status == ACCEPTED:
        uow.households.close_accepted(case_id, at)
    # The reason is free text: it stays in the decisions table (purged with the case), never in the audit trail.
    uow.audit(actor, "decision_recorded", round_id, {"case_id": case_id, "decision": decision, "ags": offer.ags,
                                                     "source": source}, at)
    close_if_answered(uow, round_id, actor, at)
    return "inserted"


def declined_pairs(uow: UnitOfWork) -> dict[str, set[str]]:
    """Per household, the municipalities it declined: never offered to it again."""
    out: dict[str, set[str]] = {}
    for o in uow.offers.with_status((DECLINED,)):
        out.setdefault(o.case_id, set()).add(o.ags)
    return out


def consumed_capacity(uow: UnitOfWork) -> dict[str, Consumption]:
    """Per capacity offer, what accepted and still pending offers take in every dimension and room class."""
    dims: dict[str, dict[str, int]] = {}
    rooms: dict[str, list[int]] = {}
    for o in uow.offers.with_status(HOLDS_CAPACITY):
        offer_id, demand = o.offer_id, o.demand
        acc = dims.setdefault(offer_id, dict.fromkeys(CAPACITY_DIMENSIONS, 0))
        for k in CAPACITY_DIMENSIONS:
            acc[k] += int(demand.get(k, 0))
        rooms.setdefault(offer_id, []).append(int(demand["rooms_needed"]))
    return {oid: Consumption(dimensions=dims[oid], rooms_needed=tuple(sorted(rooms[oid]))) for oid in dims}


def overcommitted(uow: UnitOfWork, offer_ids: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """Capacity offers that now offer less than their accepted and pending offers hold (a resubmission cut them), in
    words (offer_id, warning): nobody more is placed there, what is held stays held; the team and the municipality
    should talk."""
    from rematch_pipeline.matching.reasons import DIMENSION_WORDS, HEALTH_UNITS

    # Which households hold the wheelchair units is not said, and with one household the count would say it.
    words = {**DIMENSION_WORDS, "units_wheelchair": DIMENSION_WORDS[HEALTH_UNITS]}

    held = consumed_capacity(uow)
    wanted = set(held) if offer_ids is None else set(offer_ids) & set(held)
    found = []
    for offer in uow.capacity_offers.all():
        if offer.offer_id not in wanted:
            continue
        short = [f"{words[d]} {n} more than offered" for d, n in Capacity.of(offer, held[offer.offer_id]).shortfalls()]
        if short:
            found.append((offer.offer_id, (
                f"offer {offer.offer_id} of {offer.municipality_name} ({offer.ags}) now offers less than its accepted "
                f"and pending offers hold ({'; '.join(short)}): nobody more is placed there, the households already "
                "offered a place keep it; agree the numbers with the municipality")))
    return found


def households_with_open_offers(uow: UnitOfWork) -> set[str]:
    return {o.case_id for o in uow.offers.with_status((PENDING,))}


def offer_counts(round_offers: Iterable[MatchOffer]) -> dict[str, Any]:
    """How many of a round's offers are in each state, and the persons of those accepted."""
    listed = list(round_offers)
    counts: dict[str, Any] = {"offered": len(listed)}
    for status in (ACCEPTED, DECLINED, EXPIRED, WITHDRAWN, PENDING):
        counts[status] = sum(o.status == status for o in listed)
    counts["persons_accepted"] = sum(o.persons for o in listed if o.status == ACCEPTED)
    return counts
