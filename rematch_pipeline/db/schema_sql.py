"""Render the migrated schema as plain SQL (PostgreSQL dialect) for people to read in sql/schema.sql."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

from rematch_pipeline.db.tables import metadata

HEADER = ("-- Re:Match project database schema (PostgreSQL dialect), generated from rematch_pipeline/db/tables.py.\n"
          "-- The schema is created by the Alembic migrations (`rematch db upgrade`); this file is for reading.\n")


def schema_sql() -> str:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    parts = []
    for table in metadata.sorted_tables:
        ddl = str(CreateTable(table).compile(dialect=dialect)).strip()
        parts.append("\n".join(line.rstrip() for line in ddl.splitlines()) + ";")
    return HEADER + "\n" + "\n\n".join(parts) + "\n"
