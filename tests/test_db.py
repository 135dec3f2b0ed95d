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
    assert "no Re:Match tables yet" in err and "rematch db upgrade" in err
    assert db_url.split("?")[0].rsplit("/", 1)[-1] not in err  # the database's address is never printed
    assert _tables(db_url) == set()  # nothing was created as a side effect
    assert main(["db", "upgrade"], settings=settings) == 0
    assert main(["quarantine", "list"], settings=settings) == 0


def test_a_database_of_an_older_version_is_refused_until_upgraded(db_url: str) -> None:
    migrate(db_url, "0005")
    with pytest.raises(SchemaNotReady, match=r"at revision 0005, this version of Re:Match needs 0006: run `rematch db "
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
