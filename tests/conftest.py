"""Shared fixtures: every database test runs on SQLite, and on PostgreSQL when REMATCH_TEST_DATABASE_URL is set."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from rematch_pipeline.clock import ManualClock
from rematch_pipeline.config import Settings
from rematch_pipeline.db.engine import migrate
from tests.factories import ROUND_DATE

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
PG_URL = os.environ.get("REMATCH_TEST_DATABASE_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
# The application's "now" in tests: the morning of the day the tests' rounds are dated. Tests move it by hand.
TEST_CONTACT = "Re:Match Koordinationsteam (Test), koordination@rematch.example"
TEST_NOW = datetime.combine(ROUND_DATE, datetime.min.time(), tzinfo=UTC).replace(hour=9)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--clock-shift-days", type=int, default=0,
                     help="run with the system clock moved this many days ahead (what the clock guard does)")


# A test that uses the application's settings, its clock or a database can meet a date rule: the clock guard
# (tests/test_clock.py) reruns every such test with the system clock a year ahead.
_DATED_FIXTURES = frozenset({"settings", "clock", "db_url"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if _DATED_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.dated)


def pytest_configure(config: pytest.Config) -> None:
    days = config.getoption("--clock-shift-days")
    if days:
        import time_machine

        # Moves what every library in this process reads (datetime, date, time), not only the application's clock.
        traveller = time_machine.travel(datetime.now(UTC) + timedelta(days=days), tick=True)
        traveller.start()
        config.add_cleanup(traveller.stop)


def _pg_schema_url(schema: str) -> str:
    assert PG_URL
    sep = "&" if "?" in PG_URL else "?"
    # Each test gets its own schema, so tests never see each other's rows.
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'rematch.sqlite'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))  # type: ignore[union-attr]
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield _pg_schema_url(schema)
    finally:
        from rematch_pipeline.db.engine import get_engine

        get_engine.cache_clear()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def clock() -> ManualClock:
    """The clock of the `settings` fixture: at TEST_NOW until a test sets or advances it."""
    return ManualClock(TEST_NOW)


@pytest.fixture
def settings(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch, clock: ManualClock) -> Settings:
    home = tmp_path / "home"
    monkeypatch.setenv("REMATCH_HOME", str(home))
    monkeypatch.setenv("REMATCH_DATABASE_URL", db_url)
    # As a deployment sets it up: letters without a way to reach the team are refused at delivery.
    monkeypatch.setenv("REMATCH_COORDINATION_CONTACT", TEST_CONTACT)
    s = Settings(home=home, database_url=db_url, clock=clock, coordination_contact=TEST_CONTACT)
    s.ensure_dirs()
    migrate(db_url)  # what `rematch db upgrade` does at init
    return s
