"""Read the quarantine: every rejected row with its file, sheet, row, field, rule and plain-words message."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from rematch_pipeline.config import Settings
from rematch_pipeline.db import tables as t
from rematch_pipeline.db.engine import get_engine, migrate


def list_quarantine(settings: Settings, include_resolved: bool = False) -> list[dict[str, Any]]:
    migrate(settings.database_url)
    q = (select(t.quarantine.c.id, t.raw_files.c.original_name.label("file"), t.raw_files.c.sha256,
                t.quarantine.c.table_name, t.quarantine.c.sheet, t.quarantine.c.source_row, t.quarantine.c.field,
                t.quarantine.c.rule, t.quarantine.c.message, t.quarantine.c.created_at)
         .join(t.raw_files, t.raw_files.c.id == t.quarantine.c.raw_file_id)
         .order_by(t.quarantine.c.id))
    if not include_resolved:
        q = q.where(t.quarantine.c.resolved_at.is_(None))
    with get_engine(settings.database_url).connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q)]
