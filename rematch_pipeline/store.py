"""Row mapping for the repositories: canonical records to table rows, rows to domain objects, bulk writes of a batch."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from rematch_pipeline.canonical import parse_instant, skeleton
from rematch_pipeline.contract import CAPACITY_COUNT_FIELDS, WEIGHT_ASPECTS
from rematch_pipeline.db import tables as t
from rematch_pipeline.domain import Assignment, CapacityOffer, Household, Member, Unmatched, UnmatchedReason, pseudonym


def _yes(value: Any) -> bool:
    return str(value).strip().lower() == "yes"


def text_or_none(value: Any) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    return s or None


def _tokens(value: Any) -> str:
    # Space-separated select_multiple, normalised to sorted unique tokens so checksums are stable.
    return " ".join(sorted(set(str(value or "").split())))


def submitted_later(stored: str | None, given: str | None) -> bool:
    """Whether the stored interview was submitted after the given one: compared as points in time (a submission
    time in another offset or written another way orders as the time it names); one without a time is the older."""
    stored_at = parse_instant(stored) if stored else None
    given_at = parse_instant(given) if given else None
    return stored_at is not None and (given_at is None or stored_at > given_at)


def audit(conn: Connection, actor: str, event: str, subject: str | None = None,
          details: Mapping[str, Any] | None = None, *, at: datetime) -> None:
    """Append one event, which happened `at`, to the audit trail (never updated, never deleted)."""
    conn.execute(insert(t.audit_events).values(at=at, actor=actor, event=event, subject=subject,
                                               details=dict(details or {})))


# --- households -------------------------------------------------------------------------------------------------

def household_row(rec: Mapping[str, Any], raw_file_id: int, salt: str) -> dict[str, Any]:
    """Typed database row from one validated canonical household record (all strings); storing stamps it."""
    row: dict[str, Any] = {
        "case_id": str(rec["case_id"]).strip(),
        "raw_file_id": raw_file_id,
        "submission_time": text_or_none(rec.get("_submission_time")),
        "interview_date": date.fromisoformat(str(rec["interview_date"])[:10]),
        "interview_location": text_or_none(rec.get("interview_location")),
        "consent_matching": _yes(rec.get("consent_matching")),
        "consent_health_share": _yes(rec.get("consent_health_share")),
        "contact_name": text_or_none(rec.get("contact_name")),
        "contact_phone": text_or_none(rec.get("contact_phone")),
        "contact_email": text_or_none(rec.get("contact_email")),
        "languages": _tokens(rec.get("languages")),
        "german_level": str(rec["german_level"]),
        "wheelchair_access": _yes(rec.get("wheelchair_access")),
        "medical_needs": _tokens(rec.get("medical_needs")) or "none",
        "pets": str(rec.get("pets") or "none"),
        "pref_settlement": str(rec.get("pref_settlement") or "any"),
        "ties_ags": text_or_none(rec.get("ties_ags")),
        "notes": text_or_none(rec.get("notes")),
    }
    for aspect in WEIGHT_ASPECTS:
        row[f"weight_{aspect}"] = int(float(rec[f"weight_{aspect}"]))
    row["pseudonym"] = pseudonym(row["case_id"], salt)
    return row


def member_row(rec: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "case_id": str(rec["case_id"]).strip(),
        "member_no": int(rec["member_no"]),
        "relation": str(rec["relation"]),
        "sex": str(rec["sex"]),
        "birth_year": int(float(rec["birth_year"])),
        "mobility_impaired": _yes(rec.get("mobility_impaired")),
        "occupation": str(rec.get("occupation") or "none"),
        "qualification": str(rec.get("qualification") or "none"),
    }


def upsert_household(conn: Connection, row: dict[str, Any], members: list[dict[str, Any]], at: datetime) -> str:
    """Insert or replace a household at `at`; an older submission never replaces a newer one. Returns what happened."""
    row = {**row, "updated_at": at}
    existing = conn.execute(
        select(t.households.c.submission_time).where(t.households.c.case_id == row["case_id"])
    ).first()
    if existing is not None:
        if submitted_later(existing.submission_time, row["submission_time"]):
            return "kept_newer"
        conn.execute(delete(t.members).where(t.members.c.case_id == row["case_id"]))
        # Status (pool/accepted) belongs to the programme, not to the interview: keep it on replacement.
        conn.execute(update(t.households).where(t.households.c.case_id == row["case_id"]).values(**row))
        outcome = "replaced"
    else:
        conn.execute(insert(t.households).values(**row))
        outcome = "inserted"
    if members:
        conn.execute(insert(t.members), members)
    return outcome


# Columns that say what a household is; a re-export with all of them equal is "unchanged", not a replacement.
_BOOKKEEPING = frozenset({"raw_file_id", "updated_at", "status", "closed_at", "purged_at"})
_CHUNK = 500  # ids per IN (...) query: far below SQLite's and PostgreSQL's parameter limits


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _member_key(m: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(m[c] for c in ("member_no", "relation", "sex", "birth_year", "mobility_impaired", "occupation",
                                "qualification"))


def bulk_insert(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows in the open transaction; PostgreSQL takes them by COPY (several times faster than INSERT)."""
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        conn.execute(insert(table), rows)
        return
    columns = list(rows[0])
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f'COPY "{table.name}" ({", ".join(chr(34) + c + chr(34) for c in columns)}) FROM STDIN') as copy:
        for row in rows:
            copy.write_row([row[c] for c in columns])


def _look_alikes(conn: Connection, column: Any, new_ids: Iterable[str]) -> set[str]:
    """The ids of `new_ids` (none of them stored yet) drawn like another id, stored or new (`skeleton`): each would
    be read as the other, so neither new one is stored."""
    new = set(new_ids)
    if not new:
        return set()
    drawn: dict[str, set[str]] = {}
    for value in [*conn.execute(select(column)).scalars(), *new]:
        drawn.setdefault(skeleton(value), set()).add(value)
    return {v for v in new if len(drawn[skeleton(v)]) > 1}


def apply_households(conn: Connection, rows: list[dict[str, Any]], members: dict[str, list[dict[str, Any]]] | None,
                     at: datetime, actor: str = "ingest") -> dict[str, str]:
    """Store validated households in bulk; returns case_id -> inserted, replaced, unchanged, kept_newer, unknown or
    case_id_looks_like_another.

    A household with the same case_id replaces the stored one unless the stored submission is newer (kept_newer);
    the replacement is recorded in the audit trail with both files. `members=None` (an export without member rows)
    only updates households already known: new case_ids come back as `unknown` and are not stored.
    """
    cols = [c for c in t.households.c if c.name not in _BOOKKEEPING]
    existing: dict[str, Any] = {}
    case_ids = [r["case_id"] for r in rows]
    for chunk in _chunks(case_ids):
        for r in conn.execute(select(*cols, t.households.c.raw_file_id).where(t.households.c.case_id.in_(chunk))):
            existing[r.case_id] = r
    stored_members: dict[str, list[tuple[Any, ...]]] = {}
    if members is not None and existing:
        for chunk in _chunks(sorted(existing)):
            q = select(t.members).where(t.members.c.case_id.in_(chunk)).order_by(t.members.c.case_id,
                                                                                 t.members.c.member_no)
            for m in conn.execute(q):
                stored_members.setdefault(m.case_id, []).append(_member_key(dict(m._mapping)))
    outcomes: dict[str, str] = {}
    inserts, replaces = [], []
    alike = _look_alikes(conn, t.households.c.case_id, (c for c in case_ids if c not in existing))
    for row in rows:
        old = existing.get(row["case_id"])
        new_members = (members or {}).get(row["case_id"], [])
        if row["case_id"] in alike:
            outcomes[row["case_id"]] = "case_id_looks_like_another"
        elif old is None:
            if members is None:
                outcomes[row["case_id"]] = "unknown"
                continue
            inserts.append({**row, "updated_at": at})
            outcomes[row["case_id"]] = "inserted"
        elif submitted_later(old.submission_time, row["submission_time"]):
            outcomes[row["case_id"]] = "kept_newer"
        elif all(getattr(old, c.name) == row[c.name] for c in cols) and (
                members is None or stored_members.get(row["case_id"], []) == [_member_key(m) for m in new_members]):
            outcomes[row["case_id"]] = "unchanged"
        else:
            replaces.append({**row, "updated_at": at})
            outcomes[row["case_id"]] = "replaced"
            audit(conn, actor, "household_replaced", row["pseudonym"], {
                "raw_file_id": row["raw_file_id"], "previous_raw_file_id": old.raw_file_id,
                "submission_time": row["submission_time"], "previous_submission_time": old.submission_time,
                "members_replaced": members is not None}, at=at)
    bulk_insert(conn, t.households, inserts)
    if replaces:
        # Status (pool/accepted) belongs to the programme, not to the interview: kept on replacement.
        fields = [k for k in replaces[0] if k != "case_id"]
        stmt = (update(t.households).where(t.households.c.case_id == bindparam("b_case_id"))
                .values({k: bindparam(k) for k in fields}))
        conn.execute(stmt, [{**{k: r[k] for k in fields}, "b_case_id": r["case_id"]} for r in replaces])
        if members is not None:
            for chunk in _chunks([r["case_id"] for r in replaces]):
                conn.execute(delete(t.members).where(t.members.c.case_id.in_(chunk)))
    if members is not None:
        bulk_insert(conn, t.members, [m for r in (*inserts, *replaces) for m in members.get(r["case_id"], [])])
    return outcomes


def apply_offers(conn: Connection, rows: list[dict[str, Any]], at: datetime, actor: str = "ingest") -> dict[str, str]:
    """Store validated offers in bulk; returns offer_id -> inserted, replaced, unchanged, other_municipality or
    offer_id_looks_like_another.

    The same offer_id replaces the earlier offer (contract §2), recorded, but only from the municipality that
    submitted it first: an offer_id belongs to its AGS, so another municipality's row cannot overwrite it.
    """
    cols = [c for c in t.capacity_offers.c if c.name not in _BOOKKEEPING]
    existing: dict[str, Any] = {}
    for chunk in _chunks([r["offer_id"] for r in rows]):
        q = select(*cols, t.capacity_offers.c.raw_file_id).where(t.capacity_offers.c.offer_id.in_(chunk))
        existing.update({r.offer_id: r for r in conn.execute(q)})
    outcomes: dict[str, str] = {}
    inserts, replaces = [], []
    alike = _look_alikes(conn, t.capacity_offers.c.offer_id,
                         (r["offer_id"] for r in rows if r["offer_id"] not in existing))
    for row in rows:
        old = existing.get(row["offer_id"])
        if row["offer_id"] in alike:
            outcomes[row["offer_id"]] = "offer_id_looks_like_another"
        elif old is None:
            inserts.append({**row, "updated_at": at})
            outcomes[row["offer_id"]] = "inserted"
        elif old.ags != row["ags"]:
            outcomes[row["offer_id"]] = "other_municipality"
            audit(conn, actor, "offer_refused", row["offer_id"], {"raw_file_id": row["raw_file_id"],
                                                                  "owner_raw_file_id": old.raw_file_id}, at=at)
        elif all(getattr(old, c.name) == row[c.name] for c in cols):
            outcomes[row["offer_id"]] = "unchanged"
        else:
            replaces.append({**row, "updated_at": at})
            outcomes[row["offer_id"]] = "replaced"
            audit(conn, actor, "offer_replaced", row["offer_id"], {"raw_file_id": row["raw_file_id"],
                                                                   "previous_raw_file_id": old.raw_file_id}, at=at)
    bulk_insert(conn, t.capacity_offers, inserts)
    if replaces:
        fields = [k for k in replaces[0] if k != "offer_id"]
        stmt = (update(t.capacity_offers).where(t.capacity_offers.c.offer_id == bindparam("b_offer_id"))
                .values({k: bindparam(k) for k in fields}))
        conn.execute(stmt, [{**{k: r[k] for k in fields}, "b_offer_id": r["offer_id"]} for r in replaces])
    return outcomes


def household_from_row(row: Any, members: list[Member]) -> Household:
    return Household(
        case_id=row.case_id,
        interview_date=row.interview_date,
        consent_matching=row.consent_matching,
        consent_health_share=row.consent_health_share,
        languages=tuple(row.languages.split()),
        german_level=row.german_level,
        wheelchair_access=row.wheelchair_access,
        medical_needs=tuple(row.medical_needs.split()),
        pets=row.pets,
        pref_settlement=row.pref_settlement,
        weights={a: getattr(row, f"weight_{a}") for a in WEIGHT_ASPECTS},
        members=tuple(members),
        ties_ags=row.ties_ags,
        interview_location=row.interview_location or "",
        contact_name=row.contact_name or "",
        contact_phone=row.contact_phone or "",
        contact_email=row.contact_email or "",
        notes=row.notes or "",
    )


def load_households(conn: Connection, case_ids: Iterable[str] | None = None,
                    pool_only: bool = False) -> list[Household]:
    q = select(t.households).order_by(t.households.c.case_id)
    if pool_only:
        # Only consenting households still waiting enter a round.
        q = q.where(t.households.c.consent_matching.is_(True), t.households.c.status == "pool")
    if case_ids is not None:
        q = q.where(t.households.c.case_id.in_(list(case_ids)))
    rows = conn.execute(q).all()
    members: dict[str, list[Member]] = {}
    mq = select(t.members).order_by(t.members.c.case_id, t.members.c.member_no)
    for m in conn.execute(mq):
        members.setdefault(m.case_id, []).append(
            Member(m.relation, m.sex, m.birth_year, m.mobility_impaired, m.occupation, m.qualification))
    # A household whose members were all rejected cannot be matched: it is not a household we know yet.
    return [household_from_row(r, members[r.case_id]) for r in rows if members.get(r.case_id)]


# --- capacity offers --------------------------------------------------------------------------------------------

def offer_row(rec: Mapping[str, Any], raw_file_id: int) -> dict[str, Any]:
    row: dict[str, Any] = {
        "offer_id": str(rec["offer_id"]).strip(),
        "raw_file_id": raw_file_id,
        "ags": str(rec["ags"]).strip(),
        "municipality_name": str(rec["municipality_name"]).strip(),
        "state": str(rec["state"]).strip(),
        "settlement_type": str(rec["settlement_type"]),
        "valid_from": date.fromisoformat(str(rec["valid_from"])[:10]),
        "valid_until": date.fromisoformat(str(rec["valid_until"])[:10]),
        "medical_services": _tokens(rec.get("medical_services")),
        "job_sectors_shortage": _tokens(rec.get("job_sectors_shortage")),
        "ukrainian_community": str(rec.get("ukrainian_community") or "none"),
        "contact_name": text_or_none(rec.get("contact_name")),
        "contact_email": text_or_none(rec.get("contact_email")),
    }
    for f in CAPACITY_COUNT_FIELDS:
        row[f] = int(float(rec[f]))
    return row


def upsert_offer(conn: Connection, row: dict[str, Any], at: datetime) -> str:
    """A resubmission with the same offer_id replaces the earlier one (contract §2), at `at`."""
    row = {**row, "updated_at": at}
    exists = conn.execute(select(t.capacity_offers.c.offer_id).where(
        t.capacity_offers.c.offer_id == row["offer_id"])).first()
    if exists:
        conn.execute(update(t.capacity_offers).where(t.capacity_offers.c.offer_id == row["offer_id"]).values(**row))
        return "replaced"
    conn.execute(insert(t.capacity_offers).values(**row))
    return "inserted"


def load_offers(conn: Connection, valid_on: date | None = None) -> list[CapacityOffer]:
    q = select(t.capacity_offers).order_by(t.capacity_offers.c.ags, t.capacity_offers.c.offer_id)
    if valid_on is not None:
        q = q.where(t.capacity_offers.c.valid_from <= valid_on, t.capacity_offers.c.valid_until >= valid_on)
    return [offer_from_row(r) for r in conn.execute(q)]


def offer_from_row(r: Any) -> CapacityOffer:
    return CapacityOffer(
        offer_id=r.offer_id, ags=r.ags, municipality_name=r.municipality_name, state=r.state,
        settlement_type=r.settlement_type, valid_from=r.valid_from, valid_until=r.valid_until,
        **{f: getattr(r, f) for f in CAPACITY_COUNT_FIELDS},
        medical_services=frozenset(r.medical_services.split()),
        job_sectors_shortage=frozenset(r.job_sectors_shortage.split()),
        ukrainian_community=r.ukrainian_community, contact_name=r.contact_name or "",
        contact_email=r.contact_email or "",
    )


# --- rounds -----------------------------------------------------------------------------------------------------

def save_assignments(conn: Connection, assignments: Iterable[Assignment], unmatched: Iterable[Unmatched]) -> None:
    a_rows = [{"round_id": a.round_id, "case_id": a.case_id, "ags": a.ags, "offer_id": a.offer_id,
               "persons": a.persons, "score": a.score, "score_terms": dict(a.score_terms),
               "preference_rank": a.preference_rank} for a in assignments]
    u_rows = [{"round_id": u.round_id, "case_id": u.case_id, "persons": u.persons, "reason": u.reason,
               "reason_detail": u.why.as_dict() if u.why else None}
              for u in unmatched]
    if a_rows:
        conn.execute(insert(t.assignments), a_rows)
    if u_rows:
        conn.execute(insert(t.unmatched), u_rows)


def load_assignments(conn: Connection, round_id: str) -> list[Assignment]:
    q = select(t.assignments).where(t.assignments.c.round_id == round_id).order_by(t.assignments.c.case_id)
    return [Assignment(round_id=r.round_id, case_id=r.case_id, ags=r.ags, persons=r.persons, score=r.score,
                       score_terms=dict(r.score_terms), preference_rank=r.preference_rank, offer_id=r.offer_id)
            for r in conn.execute(q)]


def load_unmatched(conn: Connection, round_id: str) -> list[Unmatched]:
    q = select(t.unmatched).where(t.unmatched.c.round_id == round_id).order_by(t.unmatched.c.case_id)
    return [Unmatched(r.round_id, r.case_id, r.persons, r.reason,
                      UnmatchedReason.from_dict(r.reason_detail) if r.reason_detail else None) for r in conn.execute(q)]


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
