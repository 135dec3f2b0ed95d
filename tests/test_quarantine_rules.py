"""When a corrected file resolves a quarantine row, on in-memory repositories (no database)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rematch_pipeline.clock import ManualClock
from rematch_pipeline.config import Settings
from rematch_pipeline.domain import QuarantineRow, RawFile
from rematch_pipeline.quarantine import FAILED_RULE, _Fix, _resolved_by

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


@dataclass
class FakeQuarantine:
    rows: dict[int, QuarantineRow] = field(default_factory=dict)

    def get(self, row_id: int) -> QuarantineRow | None:
        return self.rows.get(row_id)

    def open_rows(self) -> list[QuarantineRow]:
        return [r for _, r in sorted(self.rows.items()) if r.resolved_at is None]

    def of_file(self, raw_file_id: int) -> list[QuarantineRow]:
        return [r for _, r in sorted(self.rows.items()) if r.raw_file_id == raw_file_id]

    def resolve(self, row_ids: Sequence[int], at: datetime, by_raw_file_id: int | None) -> None:
        for i in row_ids:
            self.rows[i] = replace(self.rows[i], resolved_at=at)

    def listing(self, include_resolved: bool) -> list[dict[str, Any]]:
        raise NotImplementedError  # not used by the rules under test


@dataclass
class FakeRawFiles:
    rows: dict[int, RawFile] = field(default_factory=dict)

    def get(self, raw_file_id: int) -> RawFile | None:
        return self.rows.get(raw_file_id)


@dataclass
class FakeRecords:
    source: dict[tuple[str, tuple[str, ...]], int] = field(default_factory=dict)  # (table, key) -> raw_file_id

    def source_file(self, table: str, fields: Sequence[str], key: Sequence[str]) -> int | None:
        return self.source.get((table, tuple(key)))


@dataclass
class FakeUnitOfWork:
    quarantine: FakeQuarantine = field(default_factory=FakeQuarantine)
    raw_files: FakeRawFiles = field(default_factory=FakeRawFiles)
    records: FakeRecords = field(default_factory=FakeRecords)


def raw(raw_id: int, archived: str = "") -> RawFile:
    return RawFile(raw_id, f"export-{raw_id}.xlsx", archived, "households", "ingested", T0 + timedelta(hours=raw_id))


def row(row_id: int, raw_file_id: int | None, table: str = "households", case_id: str | None = "HH-1",
        rule: str = "in_set") -> QuarantineRow:
    record = None if case_id is None else {"case_id": case_id}
    return QuarantineRow(row_id, raw_file_id, table, rule, record, T0 + timedelta(hours=raw_file_id or 0))


def world(*rows: QuarantineRow) -> FakeUnitOfWork:
    uow = FakeUnitOfWork()
    for r in rows:
        uow.quarantine.rows[r.id] = r
    for i in range(1, 6):
        uow.raw_files.rows[i] = raw(i)
    return uow


def fix_by(uow: FakeUnitOfWork, raw_id: int, clean: bool = True) -> _Fix:
    file = uow.raw_files.get(raw_id)
    assert file is not None
    # No database and no home: a rule that reached for either would fail here.
    return _Fix(file, clean, Settings(Path("no-home"), "sqlite:///no-home/none.db", ManualClock(T0)))


def test_a_row_is_fixed_when_the_corrected_files_version_of_its_household_is_the_one_stored() -> None:
    uow = world(bad := row(1, raw_file_id=1))
    uow.records.source["households", ("HH-1",)] = 2
    assert fix_by(uow, 2).fixed(uow, bad)
    uow.records.source["households", ("HH-1",)] = 3  # a third file stored it since: file 2's version is not kept
    assert not fix_by(uow, 2).fixed(uow, bad)
    del uow.records.source["households", ("HH-1",)]  # the corrected file did not store it at all
    assert not fix_by(uow, 2).fixed(uow, bad)


def test_an_older_file_never_fixes_a_row_of_a_newer_file() -> None:
    uow = world(bad := row(1, raw_file_id=3))
    uow.records.source["households", ("HH-1",)] = 2
    assert not fix_by(uow, 2).fixed(uow, bad)


def test_a_file_whose_processing_failed_is_fixed_when_it_goes_through_itself() -> None:
    uow = world(failed := row(1, raw_file_id=2, case_id=None, rule=FAILED_RULE))
    assert fix_by(uow, 2).fixed(uow, failed)


def test_a_whole_file_row_is_fixed_only_by_a_later_file_that_went_in_clean() -> None:
    uow = world(refused := row(1, raw_file_id=1, case_id=None, rule="refused_file"))  # file 1 was never archived
    assert fix_by(uow, 2, clean=True).fixed(uow, refused)
    assert not fix_by(uow, 2, clean=False).fixed(uow, refused)


def test_resolving_a_household_resolves_its_members_rows_but_not_a_newer_bad_version() -> None:
    household_row, member_row = row(1, raw_file_id=1), row(2, raw_file_id=1, table="members")
    newer_bad = row(3, raw_file_id=4)  # a version sent after the correction, still wrong
    other = row(4, raw_file_id=1, case_id="HH-2")  # another household of the same file, not corrected
    uow = world(household_row, member_row, newer_bad, other)
    uow.records.source["households", ("HH-1",)] = 2
    assert _resolved_by(uow, household_row, fix_by(uow, 2)) == [1, 2]
