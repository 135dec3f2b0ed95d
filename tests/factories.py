"""The builders of every test: domain objects, seeded databases and solved rounds (export rows: tests.exports)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from rematch_pipeline import store
from rematch_pipeline.clock import ManualClock
from rematch_pipeline.config import Settings, load_policy
from rematch_pipeline.contract import WEIGHT_ASPECTS
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine
from rematch_pipeline.domain import CapacityOffer, Household, Member
from rematch_pipeline.ingest.service import ingest_file
from rematch_pipeline.rounds import run_round
from rematch_pipeline.scenario import generate_scenario

ROUND_DATE = date(2026, 11, 23)


def member(relation: str, birth_year: int, occupation: str = "none", mobility_impaired: bool = False,
           sex: str = "female", qualification: str = "vocational") -> Member:
    return Member(relation, sex, birth_year, mobility_impaired, occupation, qualification)


def adult(relation: str = "head", occupation: str = "other", birth_year: int = 1990,
          mobility_impaired: bool = False, **kw: str) -> Member:
    return member(relation, birth_year, occupation, mobility_impaired, **kw)


def child(birth_year: int = 2018) -> Member:
    return Member("child", "male", birth_year, False, "none", "none")


def household(case_id: str, members: tuple[Member, ...] | None = None, **kw: object) -> Household:
    values: dict[str, object] = dict(
        case_id=case_id, interview_date=date(2026, 11, 1), consent_matching=True, consent_health_share=True,
        languages=("uk",), german_level="b1", wheelchair_access=False, medical_needs=("none",), pets="none",
        pref_settlement="any", weights=dict.fromkeys(WEIGHT_ASPECTS, 0), members=members or (adult(),),
    )
    values.update(kw)
    return Household(**values)  # type: ignore[arg-type]


def offer(ags: str, places: int = 10, units: tuple[int, int, int, int] = (5, 5, 5, 5), **kw: object) -> CapacityOffer:
    values: dict[str, object] = dict(
        offer_id=f"OF-{ags}", ags=ags, municipality_name=f"Gemeinde {ags}", state="NW", settlement_type="mid_city",
        valid_from=date(2026, 1, 1), valid_until=date(2026, 12, 31), places_persons=places,
        units_1_room=units[0], units_2_rooms=units[1], units_3_rooms=units[2], units_4plus_rooms=units[3],
        units_wheelchair=0, units_pets_allowed=0, kita_u3=10, kita_ue3=10, school_primary=10, school_secondary=10,
        language_course_seats=10, medical_services=frozenset(), job_sectors_shortage=frozenset(),
        ukrainian_community="none",
    )
    values.update(kw)
    return CapacityOffer(**values)  # type: ignore[arg-type]


def munich_offer(**kw: object) -> CapacityOffer:
    """München's offer of 40 places: two units of each size, one accessible and one for pets, a named contact."""
    values: dict[str, object] = dict(
        ags="09162000", places=40, units=(2, 2, 2, 2), offer_id="OF-0001", municipality_name="München", state="BY",
        settlement_type="big_city", units_wheelchair=1, units_pets_allowed=1, kita_u3=2, kita_ue3=2, school_primary=2,
        school_secondary=2, language_course_seats=10, ukrainian_community="large", contact_name="Frau Huber",
        contact_email="huber@muenchen.example",
    )
    values.update(kw)
    ags = str(values.pop("ags"))
    return offer(ags, **values)  # type: ignore[arg-type]


def store_records(settings: Settings, households: Sequence[Mapping[str, Any]],
                  members: Mapping[str, Sequence[Mapping[str, Any]]], offers: Sequence[Mapping[str, Any]]) -> None:
    """A seeded database: export rows (`tests.exports`) stored through the store, without ingest and validation
    (tested elsewhere, and seconds per file)."""
    at = settings.clock.now()
    with get_engine(settings.database_url).begin() as conn:
        raw = conn.execute(insert(t.raw_files).values(
            sha256="0" * 64, original_name="seed", archived_path="x", size_bytes=0, status="ingested",
            received_at=at).returning(t.raw_files.c.id)).scalar_one()
        for rec in households:
            case_id = str(rec["case_id"])
            rows = [store.member_row({**m, "case_id": case_id, "member_no": i})
                    for i, m in enumerate(members.get(case_id, ()), start=1)]
            store.upsert_household(conn, store.household_row(rec, raw, settings.pseudonym_salt), rows, at)
        for offer in offers:
            store.upsert_offer(conn, store.offer_row(offer, raw), at)


def solved_round(settings: Settings, tmp_path: Path, households: int = 16, municipalities: int = 4,
                 seed: int = 3) -> str:
    """A generated scenario ingested as the files arrive, and the round of ROUND_DATE solved: its round id."""
    files = generate_scenario(tmp_path / "scenario", households=households, municipalities=municipalities, seed=seed,
                              round_date=ROUND_DATE)
    for f in (files.capacity_xlsx, files.households_xlsx):
        assert ingest_file(f, settings).status == "ingested"
    return run_round(settings, load_policy(), ROUND_DATE).round_id


def clock_of(settings: Settings) -> ManualClock:
    """The hand-set clock of a test's settings (the `settings` fixture starts it at the morning of ROUND_DATE)."""
    assert isinstance(settings.clock, ManualClock), "tests run on a ManualClock, never on the system clock"
    return settings.clock
