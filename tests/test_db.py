"""The schema comes from versioned migrations, matches the code, and the reporting SQL runs on every backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from rematch_pipeline.db.engine import get_engine, migrate
from rematch_pipeline.db.schema_sql import schema_sql
from rematch_pipeline.db.tables import metadata

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
