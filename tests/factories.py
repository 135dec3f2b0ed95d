"""Small builders for domain objects used across tests."""

from __future__ import annotations

from datetime import date

from rematch_pipeline.clock import ManualClock
from rematch_pipeline.config import Settings
from rematch_pipeline.contract import WEIGHT_ASPECTS
from rematch_pipeline.domain import CapacityOffer, Household, Member

ROUND_DATE = date(2026, 11, 23)


def adult(relation: str = "head", occupation: str = "other", birth_year: int = 1990,
          mobility_impaired: bool = False) -> Member:
    return Member(relation, "female", birth_year, mobility_impaired, occupation, "vocational")


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


def clock_of(settings: Settings) -> ManualClock:
    """The hand-set clock of a test's settings (the `settings` fixture starts it at the morning of ROUND_DATE)."""
    assert isinstance(settings.clock, ManualClock), "tests run on a ManualClock, never on the system clock"
    return settings.clock
