"""The schema comes from versioned migrations, matches the code, and the reporting SQL runs on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from rematch_pipeline.clock import ManualClock
from rematch_pipeline.config import Settings
from rematch_pipeline.db.engine import SchemaNotReady, get_engine, migrate, require_schema
from rematch_pipeline.db.schema_sql import schema_sql
from rematch_pipeline.db.tables import metadata
from tests.conftest import TEST_NOW

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"


def test_migrations_create_every_table_and_are_idempotent(db_url: str) -> None:
    migrate(db_url)
    migrate(db_url)  # a second run is a no-op
    names = set(inspect(get_engine(db_url)).get_table_names())
    assert set(metadata.tables) <= names
    assert "alembic_version" in names


def test_migrated_schema_matches_the_table_definitions(db_url: str) -> None:
    migrate(db_url)
    with get_engine(db_url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == [], f"tables.py and the migrations differ: add a migration ({diff})"


def test_schema_sql_file_is_up_to_date() -> None:
    assert (SQL_DIR / "schema.sql").read_text() == schema_sql(), "regenerate sql/schema.sql from tables.py"


@pytest.mark.parametrize("query", sorted((SQL_DIR / "queries").glob("*.sql")), ids=lambda p: p.name)
def test_reporting_queries_run(db_url: str, query: Path) -> None:
    migrate(db_url)
    with get_engine(db_url).connect() as conn:
        conn.execute(text(query.read_text())).all()


def _tables(db_url: str) -> set[str]:
    return set(inspect(get_engine(db_url)).get_table_names())


def test_commands_never_migrate_and_say_to_run_db_upgrade_on_an_empty_database(
        db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from rematch_pipeline.cli import main

    settings = Settings(home=tmp_path / "home", database_url=db_url, clock=ManualClock(TEST_NOW))
    assert main(["quarantine", "list"], settings=settings) == 2
    err = capsys.readouterr().err
    assert "rematch db upgrade" in err
    if db_url.startswith("sqlite"):  # the embedded file, under REMATCH_HOME, is named: a mistyped home shows
        assert "There is no database at" in err and not Path(db_url.split("///", 1)[1]).exists()
    else:  # a server's address may hold a password: never printed
        assert "no Re:Match tables yet" in err and "postgres" not in err and "127.0.0.1" not in err
        assert _tables(db_url) == set()  # nothing was created as a side effect
    assert main(["db", "upgrade"], settings=settings) == 0
    assert main(["quarantine", "list"], settings=settings) == 0


def test_a_database_of_an_older_version_is_refused_until_upgraded(db_url: str) -> None:
    migrate(db_url, "0007")
    with pytest.raises(SchemaNotReady, match=r"at revision 0007, this version of Re:Match needs 0008: run `rematch db "
                                             r"upgrade`"):
        require_schema(db_url)
    migrate(db_url)
    require_schema(db_url)


def test_a_database_written_by_a_newer_version_is_refused(db_url: str) -> None:
    migrate(db_url)
    with get_engine(db_url).begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    with pytest.raises(SchemaNotReady, match="revision 0099, which this version of Re:Match does not know"):
        require_schema(db_url)


def test_a_database_with_tables_but_no_single_schema_version_is_refused_with_what_to_do(db_url: str) -> None:
    migrate(db_url)
    with get_engine(db_url).begin() as conn:
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES ('0007')"))
    with pytest.raises(SchemaNotReady, match=r"records 2 schema versions \(0007, 0008\) instead of one"):
        require_schema(db_url)
    with get_engine(db_url).begin() as conn:
        conn.execute(text("DELETE FROM alembic_version"))
    with pytest.raises(SchemaNotReady, match="records 0 schema versions"):
        require_schema(db_url)
    with get_engine(db_url).begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    with pytest.raises(SchemaNotReady, match="holds Re:Match tables but no record of their schema version"):
        require_schema(db_url)


def test_checking_a_home_without_a_database_creates_nothing(tmp_path: Path) -> None:
    home = tmp_path / "mistyped-home"
    with pytest.raises(SchemaNotReady, match=f"There is no database at {home / 'rematch.sqlite'} yet"):
        require_schema(f"sqlite:///{home / 'rematch.sqlite'}")
    assert not home.exists()


def test_an_airflow_task_on_a_database_without_the_schema_fails_at_once_without_retries(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from rematch_pipeline import orchestration

    monkeypatch.setenv("REMATCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REMATCH_DATABASE_URL", raising=False)
    with pytest.raises(AirflowFailException, match="There is no database at .*rematch db upgrade"):
        orchestration.open_round_ids()


def test_two_upgrades_started_at_once_take_turns_and_both_succeed(db_url: str, tmp_path: Path) -> None:
    """An operator's `rematch db upgrade` and the airflow-init service's may start together on an empty server."""
    import os
    import subprocess
    import sys

    if db_url.startswith("sqlite"):
        pytest.skip("the embedded SQLite file is one team's, upgraded by `make install` alone")
    env = {**os.environ, "REMATCH_DATABASE_URL": db_url, "REMATCH_HOME": str(tmp_path / "home")}
    runs = [subprocess.Popen([sys.executable, "-m", "rematch_pipeline.cli", "db", "upgrade"], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [(run.wait(timeout=120), *run.communicate()) for run in runs]
    assert [rc for rc, _, _ in outcomes] == [0, 0], outcomes
    assert not any("Traceback" in err for _, _, err in outcomes), outcomes
    require_schema(db_url)


def test_a_rematch_home_that_is_a_file_is_named_as_such(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.write_text("not a folder")
    url = f"sqlite:///{home / 'rematch.sqlite'}"
    with pytest.raises(SchemaNotReady, match="is a file, not a folder. Point REMATCH_HOME at a folder"):
        require_schema(url)
    with pytest.raises(NotADirectoryError, match="REMATCH_HOME needs a folder"):
        get_engine(url)
    with pytest.raises(NotADirectoryError, match="REMATCH_HOME needs a folder"):
        Settings(home=home, database_url=url, clock=ManualClock(TEST_NOW)).ensure_dirs()
    assert home.read_text() == "not a folder"


def test_instants_come_back_in_utc_whatever_the_clients_time_zone(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime, timedelta, timezone

    from rematch_pipeline.repository import _utc

    berlin = datetime(2026, 12, 5, 20, 0, tzinfo=timezone(timedelta(hours=1)))
    assert _utc(berlin) == berlin and _utc(berlin).isoformat() == "2026-12-05T19:00:00+00:00"  # type: ignore[union-attr]
    assert _utc(datetime(2026, 12, 5, 19, 0)) == datetime(2026, 12, 5, 19, 0, tzinfo=UTC)
    if not db_url.startswith("postgresql"):
        return  # SQLite keeps no zone: `_utc` above is all there is
    monkeypatch.setenv("PGTZ", "Europe/Berlin")
    with get_engine.__wrapped__(db_url).connect() as conn:  # a new engine, so a new connection under PGTZ
        assert conn.execute(text("SHOW timezone")).scalar() == "UTC"
        at = conn.execute(text("SELECT TIMESTAMPTZ '2026-12-05 19:00:00+00'")).scalar()
    assert at.utcoffset() == timedelta(0)
