"""Versioned documents (packets, letters): the same content is written once, a changed one becomes version n+1."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, func, select, update


@dataclass(frozen=True)
class Ledger:
    """What the table holds for one document: the row with this content, and the latest version before it."""

    same: Any  # the row whose sha256 is this content, or None
    prior: Any  # the row of the latest version, or None

    @property
    def next_version(self) -> int:
        return (self.prior.version if self.prior is not None else 0) + 1


def _mine(table: Table, key: Mapping[str, str]) -> list[Any]:
    return [table.c[name] == value for name, value in key.items()]


def look_up(conn: Connection, table: Table, key: Mapping[str, str], digest: str) -> Ledger:
    mine = _mine(table, key)
    same = conn.execute(select(table).where(*mine, table.c.sha256 == digest)).first()
    latest = conn.execute(select(func.max(table.c.version)).where(*mine)).scalar()
    prior = None if not latest else conn.execute(select(table).where(*mine, table.c.version == latest)).first()
    return Ledger(same, prior)


def versioned(path: Path, version: int) -> Path:
    return path.with_name(f"{path.stem}_v{version}{path.suffix}")


def shelve(prior: Any) -> dict[str, str]:
    """Never overwrite silently: move the earlier version's files to a versioned name; returns their new paths.

    A target that already exists is from an interrupted earlier attempt, so the file at the plain name is not that
    version and stays where it is (the new version overwrites it).
    """
    kept: dict[str, str] = {}
    for column in ("html_path", "pdf_path"):
        old = Path(getattr(prior, column))
        target = versioned(old, prior.version)
        if old.exists() and not target.exists():
            old.rename(target)
        kept[column] = str(target)
    return kept


def keep_prior(conn: Connection, table: Table, key: Mapping[str, str], prior: Any, kept: Mapping[str, str]) -> None:
    """Point the earlier version's row at its shelved files (in the transaction that records the new version)."""
    conn.execute(update(table).where(*_mine(table, key), table.c.version == prior.version).values(**kept))
