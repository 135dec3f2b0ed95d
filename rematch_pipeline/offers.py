"""Offers to households and their answers: made, accepted, declined, expired; what that leaves for the next round."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from rematch_pipeline import store
from rematch_pipeline.canonical import parse_instant
from rematch_pipeline.config import policy_from_dict
from rematch_pipeline.db import tables as t
from rematch_pipeline.domain import CAPACITY_DIMENSIONS, Capacity, Consumption, demand_of

PENDING, ACCEPTED, DECLINED, EXPIRED = "pending", "accepted", "declined", "expired"
HOLDS_CAPACITY = (PENDING, ACCEPTED)  # a pending offer keeps its places until it is answered or expires

# Outcome of a decision -> (field, rule, message a person can act on). "inserted" means applied.
DECISION_REJECTS: dict[str, tuple[str, str, str]] = {
    "already_recorded": ("decision", "decision_already_recorded",
                         "A decision for this case_id and round_id is already stored; only the first decision "
                         "counts. Ask the coordination team if the household changed its mind."),
    "not_offered": ("case_id", "decision_without_offer",
                    "No match was offered to this case_id in this round_id; check both ids."),
    "before_offer": ("decided_at", "decision_before_offer",
                     "The answer is dated before the household was offered this place; check decided_at (its date, "
                     "time and time zone) and send the decision again."),
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


def make_offers(conn: Connection, round_id: str, actor: str, at: datetime) -> int:
    """One pending offer per assignment of a solved round, made `at`, due `offer_response_days` after the round date."""
    r = conn.execute(select(t.rounds).where(t.rounds.c.round_id == round_id)).one()
    policy = policy_from_dict(dict(r.policy))
    respond_by = r.round_date + timedelta(days=policy.offer_response_days)
    assignments = store.load_assignments(conn, round_id)
    households = {h.case_id: h for h in store.load_households(conn, [a.case_id for a in assignments])}
    rows = []
    for a in assignments:
        d = demand_of(households[a.case_id], r.round_date, policy)
        rows.append({"round_id": round_id, "case_id": a.case_id, "ags": a.ags, "offer_id": a.offer_id,
                     "persons": a.persons, "respond_by": respond_by, "status": PENDING, "offered_at": at,
                     "demand": {**{k: d.of(k) for k in CAPACITY_DIMENSIONS}, "rooms_needed": d.rooms_needed}})
    if rows:
        conn.execute(insert(t.match_offers), rows)
    conn.execute(update(t.rounds).where(t.rounds.c.round_id == round_id).values(status="offered", offered_at=at))
    for row in rows:
        store.audit(conn, actor, "offer_made", round_id, {"case_id": row["case_id"], "ags": row["ags"],
                                                          "respond_by": respond_by.isoformat()}, at=at)
    close_if_answered(conn, round_id, actor, at)
    return len(rows)


def expire_offers(conn: Connection, today: date, actor: str, at: datetime) -> int:
    """Pending offers whose deadline passed before `today` expire (recorded `at`): the household is back in the
    pool."""
    due = conn.execute(select(t.match_offers.c.round_id, t.match_offers.c.case_id)
                       .where(t.match_offers.c.status == PENDING, t.match_offers.c.respond_by < today)
                       .order_by(t.match_offers.c.round_id, t.match_offers.c.case_id)).all()
    for round_id, case_id in due:
        conn.execute(update(t.match_offers).where(t.match_offers.c.round_id == round_id,
                                                  t.match_offers.c.case_id == case_id)
                     .values(status=EXPIRED, resolved_at=at))
        store.audit(conn, actor, "offer_expired", round_id, {"case_id": case_id}, at=at)
    for round_id in sorted({r for r, _ in due}):
        close_if_answered(conn, round_id, actor, at)
    return len(due)


def close_if_answered(conn: Connection, round_id: str, actor: str, at: datetime) -> bool:
    """An offered round whose every offer is accepted, declined or expired is closed."""
    status = conn.execute(select(t.rounds.c.status).where(t.rounds.c.round_id == round_id)).scalar()
    pending = conn.execute(select(func.count()).select_from(t.match_offers).where(
        t.match_offers.c.round_id == round_id, t.match_offers.c.status == PENDING)).scalar()
    if status != "offered" or pending:
        return False
    conn.execute(update(t.rounds).where(t.rounds.c.round_id == round_id).values(status="closed", closed_at=at))
    store.audit(conn, actor, "round_closed", round_id, {}, at=at)
    return True


def parse_decided_at(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = parse_instant(str(value).strip())
    if parsed is None:
        raise ValueError("decided_at is not a date and time that can be read")
    return parsed


def record_decision(conn: Connection, case_id: str, round_id: str, decision: str, decided_at: str | datetime,
                    reason: str | None, actor: str, at: datetime, source: str = "file",
                    raw_file_id: int | None = None) -> str:
    """Apply one answer, given `decided_at` and recorded `at`, to an offer; returns "inserted" or the reason it was
    not applied (DECISION_REJECTS).

    Accept: the household leaves the pool and the offer keeps its capacity. Decline: the household goes back to
    the pool and that municipality is never offered to it again.
    """
    if decision not in ("accept", "decline"):
        raise ValueError(f"decision must be accept or decline, not {decision!r}")
    recorded = conn.execute(select(t.decisions.c.id).where(t.decisions.c.case_id == case_id,
                                                           t.decisions.c.round_id == round_id)).first()
    if recorded is not None:
        return "already_recorded"
    offer = conn.execute(select(t.match_offers).where(t.match_offers.c.case_id == case_id,
                                                      t.match_offers.c.round_id == round_id)).first()
    if offer is None:
        return "not_offered"
    when = parse_decided_at(decided_at)
    offered_at = offer.offered_at if offer.offered_at.tzinfo else offer.offered_at.replace(tzinfo=UTC)
    if when < offered_at:
        return "before_offer"
    # The deadline is a day in UTC, as every time here: 23:30 at UTC-12 on the last day is already the next day.
    if offer.status == EXPIRED or when.astimezone(UTC).date() > offer.respond_by:
        return "after_deadline"
    if offer.status != PENDING:
        return "already_recorded"
    conn.execute(insert(t.decisions).values(
        raw_file_id=raw_file_id, source=source, case_id=case_id, round_id=round_id, decision=decision,
        decided_at=when.isoformat(), reason=reason or None, created_at=at))
    status = ACCEPTED if decision == "accept" else DECLINED
    conn.execute(update(t.match_offers).where(t.match_offers.c.case_id == case_id,
                                              t.match_offers.c.round_id == round_id)
                 .values(status=status, resolved_at=at))
    if status == ACCEPTED:
        conn.execute(update(t.households).where(t.households.c.case_id == case_id)
                     .values(status="accepted", closed_at=at))
    # The reason is free text: it stays in the decisions table (purged with the case), never in the audit trail.
    store.audit(conn, actor, "decision_recorded", round_id, {"case_id": case_id, "decision": decision,
                                                              "ags": offer.ags, "source": source}, at=at)
    close_if_answered(conn, round_id, actor, at)
    return "inserted"


def declined_pairs(conn: Connection) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    q = select(t.match_offers.c.case_id, t.match_offers.c.ags).where(t.match_offers.c.status == DECLINED)
    for case_id, ags in conn.execute(q):
        out.setdefault(case_id, set()).add(ags)
    return out


def consumed_capacity(conn: Connection) -> dict[str, Consumption]:
    """Per capacity offer, what accepted and still pending offers take in every dimension and room class."""
    dims: dict[str, dict[str, int]] = {}
    rooms: dict[str, list[int]] = {}
    q = select(t.match_offers.c.offer_id, t.match_offers.c.demand).where(t.match_offers.c.status.in_(HOLDS_CAPACITY))
    for offer_id, demand in conn.execute(q):
        acc = dims.setdefault(offer_id, dict.fromkeys(CAPACITY_DIMENSIONS, 0))
        for k in CAPACITY_DIMENSIONS:
            acc[k] += int(demand.get(k, 0))
        rooms.setdefault(offer_id, []).append(int(demand["rooms_needed"]))
    return {oid: Consumption(dimensions=dims[oid], rooms_needed=tuple(sorted(rooms[oid]))) for oid in dims}


def overcommitted(conn: Connection, offer_ids: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """Capacity offers that now offer less than their accepted and pending offers hold (a resubmission cut them), in
    words (offer_id, warning): nobody more is placed there, what is held stays held; the team and the municipality
    should talk."""
    from rematch_pipeline.matching.reasons import DIMENSION_WORDS, HEALTH_UNITS

    # Which households hold the wheelchair units is not said, and with one household the count would say it.
    words = {**DIMENSION_WORDS, "units_wheelchair": DIMENSION_WORDS[HEALTH_UNITS]}

    held = consumed_capacity(conn)
    wanted = set(held) if offer_ids is None else set(offer_ids) & set(held)
    found = []
    for offer in store.load_offers(conn):
        if offer.offer_id not in wanted:
            continue
        short = [f"{words[d]} {n} more than offered" for d, n in Capacity.of(offer, held[offer.offer_id]).shortfalls()]
        if short:
            found.append((offer.offer_id, (
                f"offer {offer.offer_id} of {offer.municipality_name} ({offer.ags}) now offers less than its accepted "
                f"and pending offers hold ({'; '.join(short)}): nobody more is placed there, the households already "
                "offered a place keep it; agree the numbers with the municipality")))
    return found


def households_with_open_offers(conn: Connection) -> set[str]:
    q = select(t.match_offers.c.case_id).where(t.match_offers.c.status == PENDING)
    return set(conn.execute(q).scalars())


def offer_counts(conn: Connection, round_id: str) -> dict[str, Any]:
    rows = conn.execute(select(t.match_offers.c.status, func.count(), func.sum(t.match_offers.c.persons))
                        .where(t.match_offers.c.round_id == round_id).group_by(t.match_offers.c.status)).all()
    by: Mapping[str, tuple[int, int]] = {s: (int(n), int(p or 0)) for s, n, p in rows}
    counts: dict[str, Any] = {"offered": sum(n for n, _ in by.values())}
    for status in (ACCEPTED, DECLINED, EXPIRED, PENDING):
        counts[status] = by.get(status, (0, 0))[0]
    counts["persons_accepted"] = by.get(ACCEPTED, (0, 0))[1]
    return counts
