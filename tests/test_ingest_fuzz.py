"""Whatever a file holds, ingest ends in a recorded outcome with every row accounted for and nothing escaping."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from openpyxl.utils.exceptions import IllegalCharacterError
from sqlalchemy import select

from rematch_pipeline.clock import ManualClock
from rematch_pipeline.config import Settings
from rematch_pipeline.contract import CAPACITY_FIELDS, HOUSEHOLD_FIELDS, MEMBER_FIELDS
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine, migrate
from rematch_pipeline.ingest.service import ingest_file
from tests import exports as x
from tests.factories import ROUND_DATE

pytestmark = pytest.mark.full  # minutes of generated files: make test-all
EXAMPLES = 40  # per strategy; seeded (derandomize), so every run tries the same files
OUTCOMES = {"ingested", "held", "refused", "unrecognised", "failed", "duplicate"}
FUZZ = hyp_settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# What careless senders, spreadsheet programs and attackers put into a cell.
hostile_text = st.one_of(
    st.text(max_size=40),  # any Unicode, control and format characters included
    st.text(st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"]), min_size=1, max_size=8),
    st.sampled_from(["", " ", "\n", "\x00", "=1+1", "<script>x</script>", "NaN", "null", "-0", "1e309", "１２",
                     "٣", "9" * 30, "-" + "9" * 30, "0x1F", "2026-02-30", "31.12.9999", "\ufeffRM-1", "RM\u200b-1"]),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.text(min_size=1000, max_size=5000),
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("fuzz")
    settings = Settings(home=root / "home", database_url=f"sqlite:///{root / 'fuzz.sqlite'}",
                        clock=ManualClock(ROUND_DATE))
    migrate(settings.database_url)
    return settings


_names = itertools.count()


def _ingest(settings: Settings, data: bytes, suffix: str, data_rows: int | None = None) -> None:
    path = settings.home.parent / f"f{next(_names)}{suffix}"
    path.write_bytes(data)
    report = ingest_file(path, settings)  # nothing may escape: an exception fails the example
    assert report.status in OUTCOMES, report.status
    assert report.rows_read == report.accepted + report.quarantined + report.held + report.not_read
    if data_rows is not None and report.status in ("ingested", "held", "failed") and report.counts:
        assert report.rows_read == data_rows  # every data row of the file is counted
    with get_engine(settings.database_url).connect() as conn:
        recorded = conn.execute(select(t.raw_files.c.status).where(
            t.raw_files.c.sha256 == hashlib.sha256(data).hexdigest())).scalar()
    assert recorded is not None  # the file and its outcome are on record, never lost


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".csv", ".xlsx", ".zip", ".txt"]))
def test_arbitrary_bytes_end_in_a_recorded_outcome(home: Settings, data: bytes, suffix: str) -> None:
    _ingest(home, data, suffix)


def _mutated(row: dict[str, Any], fields: tuple[str, ...], cells: dict[str, str]) -> dict[str, Any]:
    return {**row, **{f: v for f, v in cells.items() if f in fields}}


def _written(write: Any, *args: Any) -> bytes:
    try:
        return bytes(write(*args))
    except IllegalCharacterError:
        assume(False)  # XML cannot hold that control character: no spreadsheet program writes such a workbook
        raise


@FUZZ
@given(first=st.dictionaries(st.sampled_from(CAPACITY_FIELDS), hostile_text, max_size=4),
       second=st.dictionaries(st.sampled_from(CAPACITY_FIELDS), hostile_text, max_size=4),
       as_xlsx=st.booleans())
def test_mutated_capacity_files_end_in_a_recorded_outcome(home: Settings, first: dict[str, str],
                                                          second: dict[str, str], as_xlsx: bool) -> None:
    offers = [_mutated(x.offer("OF-F1"), CAPACITY_FIELDS, first), _mutated(x.offer("OF-F2"), CAPACITY_FIELDS, second)]
    data = _written(x.capacity_xlsx, offers) if as_xlsx else x.capacity_csv(offers)
    _ingest(home, data, ".xlsx" if as_xlsx else ".csv", data_rows=2)


@FUZZ
@given(household=st.dictionaries(st.sampled_from(HOUSEHOLD_FIELDS), hostile_text, max_size=4),
       person=st.dictionaries(st.sampled_from(MEMBER_FIELDS), hostile_text, max_size=3),
       form=st.sampled_from(["kobo_xlsx", "odk_zip"]))
def test_mutated_household_exports_end_in_a_recorded_outcome(home: Settings, household: dict[str, str],
                                                             person: dict[str, str], form: str) -> None:
    case = f"RM-FZ-{next(_names):05d}"
    hh = _mutated(x.household(case), HOUSEHOLD_FIELDS, household)
    members = {f"uuid-{case}": [_mutated(x.member("head"), MEMBER_FIELDS, person), x.member("child", "2015")]}
    hh["_uuid"] = f"uuid-{case}"
    data = _written(x.kobo_xlsx, [hh], members) if form == "kobo_xlsx" else x.odk_zip([hh], members)
    _ingest(home, data, ".xlsx" if form == "kobo_xlsx" else ".zip", data_rows=3)
