"""Detect an input file's kind and format by its content and read it into canonical all-string tables."""

from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path, PurePosixPath

import pandas as pd
from openpyxl import load_workbook

from rematch_pipeline.canonical import canonical_header, canonical_text, canonical_value
from rematch_pipeline.contract import (
    CAPACITY_FIELDS,
    CAPACITY_SELECT_MULTIPLE,
    DECISION_FIELDS,
    HOUSEHOLD_FIELDS,
    HOUSEHOLD_OPTIONAL_FIELDS,
    HOUSEHOLD_SELECT_MULTIPLE,
    LAND_BY_AGS_PREFIX,
    MEMBER_FIELDS,
)
from rematch_pipeline.ingest import xlsx
from rematch_pipeline.ingest.safety import Limits, RefusedFileError, check_size, check_xlsx, check_zip
from rematch_pipeline.reports.charts import listed

HOUSEHOLD_SYSTEM_KEPT = ("_uuid", "_submission_time")
HOUSEHOLD_COLUMNS = (*HOUSEHOLD_FIELDS, *HOUSEHOLD_SYSTEM_KEPT, "source_sheet", "source_row")
MEMBER_COLUMNS = ("case_id", "member_no", *MEMBER_FIELDS, "source_sheet", "source_row")
CAPACITY_COLUMNS = (*CAPACITY_FIELDS, "source_sheet", "source_row")
DECISION_COLUMNS = (*DECISION_FIELDS, "source_sheet", "source_row")
# Kobo/ODK metadata columns that carry nothing for us; dropped without a note.
_KOBO_META = frozenset({"start", "end", "today", "deviceid", "username", "simserial", "subscriberid", "phonenumber",
                        "audit", "instanceid", "instancename", "__version__", "version"})
# ODK Central's own columns (submission metadata); KEY / PARENT_KEY link the repeat file to the main file.
_ODK_SYSTEM = frozenset({"KEY", "PARENT_KEY", "SubmissionDate", "SubmitterID", "SubmitterName", "AttachmentsPresent",
                         "AttachmentsExpected", "Status", "ReviewState", "DeviceID", "Edits", "FormVersion"})

_EXPECTED = ("a KoboToolbox household export (XLSX with a main sheet holding 'case_id' and the other household "
             "fields plus a 'members' sheet, or the main CSV), an ODK Central ZIP export (main CSV plus "
             "'<formId>-members.csv'), a municipal capacity template (XLSX or CSV with columns 'offer_id', 'ags', "
             "'municipality_name', ...) or a decisions CSV (columns 'case_id', 'round_id', 'decision', "
             "'decided_at', 'reason')")
KOBO_CSV_NOTE = ("a KoboToolbox CSV export carries no member rows, so it can only update households already known "
                 "(same case_id); new households must come as the XLSX export or the ODK Central ZIP")
TEMPLATE_INSTRUCTIONS_SHEET = "instructions"  # the capacity template's own help sheet: no data, never counted
_HEADER_SEARCH_ROWS = 10  # a municipality may put a title above the template's header row
_MAX_ROWS_IN_NOTE = 10


class UnrecognisedFileError(ValueError):
    """The file is neither a household export nor a capacity submission this reader understands."""


@dataclass(frozen=True)
class RowIssue:
    """A row the file's structure makes ambiguous (repeated column, shared submission key): quarantined with it."""

    table: str
    row: int  # position of the row in its table's frame (its index label)
    field: str
    rule: str
    message: str


@dataclass
class Batch:
    kind: str  # "households" | "capacity" | "decisions"
    tables: dict[str, pd.DataFrame]
    notes: list[str] = field(default_factory=list)
    # kobo_xlsx, kobo_csv, odk_central_zip, capacity_xlsx, capacity_csv, decisions_csv
    format: str = ""
    issues: list[RowIssue] = field(default_factory=list)
    unread: dict[str, int] = field(default_factory=dict)  # sheet -> its non-empty rows, when no table was found


def read_file(path: Path, limits: Limits | None = None, name: str | None = None) -> Batch:
    """Read one input file; its kind comes from its content, never from its name.

    Raises RefusedFileError for hostile or unreadable content (too large, ZIP bomb or path traversal, macros,
    external links, an encoding that cannot be read reliably) and UnrecognisedFileError for anything else that is
    not one of the expected exports. `name` is how messages call the file (default: the path).
    """
    path = Path(path)
    label = name or str(path)
    limits = limits or Limits()
    check_size(path, label, limits)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as zf:
                check_zip(zf, label, limits, path.stat().st_size)
                if "xl/workbook.xml" in zf.namelist():
                    check_xlsx(zf, label)
                    return _read_xlsx(path, zf, label)
                return _read_odk_zip(zf, label)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
            # Damaged or cut short on the way (a checksum, a compressed stream; `check_zip` refuses unknown methods):
            # named by kind, never by the library's words, which may quote the content.
            raise RefusedFileError("zip_damaged", f"{label}: the archive is damaged or incomplete "
                                                  f"({type(exc).__name__}) and cannot be read; export it again "
                                                  f"and send the new file") from None
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise UnrecognisedFileError(f"{label}: an old Excel .xls workbook (or an encrypted one), please save it as "
                                    f".xlsx without a password; expected {_EXPECTED}")
    return _read_csv(path.read_bytes(), label)


# ---------------------------------------------------------------------------------------------------------------
# Cell values and headers


def _cell_text(value: object) -> str | None:
    """A cell as the text a person sees; empty cells become None. No type conversion beyond that."""
    if type(value) is str:
        return value if value.strip() else None
    if value is None:
        return None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(timespec="seconds")
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, float):
        # Excel stores every number as a float; 3.0 is what was typed as 3.
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value)
    return text if text.strip() else None


def _is_selected(value: object) -> bool:
    text = _cell_text(value)
    return text is not None and text.strip().lower() in {"1", "1.0", "true", "yes"}


@dataclass(frozen=True)
class _Column:
    index: int
    field: str
    option: str | None = None  # set for a select_multiple `field/option` column


@dataclass
class _Layout:
    fields: dict[str, int]  # contract field -> column index
    options: dict[str, list[tuple[str, int]]]  # select_multiple field -> [(option, column index)]
    system: dict[str, int]  # Kobo system column (_uuid, _index, ...) -> column index
    unknown: list[str]
    # A field or system column named more than once -> every column index carrying it (the first is in `fields`).
    repeats: dict[str, list[int]] = field(default_factory=dict)

    def note_repeat(self, name: str, first: int, idx: int) -> None:
        if first != idx:
            self.repeats.setdefault(name, [first]).append(idx)

    def columns(self, name: str | None) -> list[int]:
        """Every column carrying the field or system column `name` (none when the header lacks it)."""
        if name is None:
            return []
        first = self.fields.get(name, self.system.get(name))
        return self.repeats.get(name, [] if first is None else [first])


def _layout(header: Sequence[object], known: Sequence[str], multi: dict[str, tuple[str, ...]],
            sep: str = "/") -> _Layout:
    """Map header cells to contract fields; group paths (`grp_needs/medical_needs`, ODK `grp_needs-...`) stripped."""
    layout = _Layout({}, {}, {}, [])
    known_set = set(known)
    for idx, raw in enumerate(header):
        text = _cell_text(raw)
        if text is None or not (name := canonical_header(text)):
            continue
        if name in _ODK_SYSTEM or name.endswith(("-instanceID", "/instanceID")):
            layout.note_repeat(name, layout.system.setdefault(name, idx), idx)
            continue
        parts = [p.strip() for p in name.split(sep)]
        last = parts[-1]
        lowered = last.lower()
        if last.startswith("_"):
            layout.note_repeat(last, layout.system.setdefault(last, idx), idx)
        elif lowered in known_set:
            layout.note_repeat(lowered, layout.fields.setdefault(lowered, idx), idx)
        elif len(parts) >= 2 and parts[-2].lower() in multi and lowered in multi[parts[-2].lower()]:
            layout.options.setdefault(parts[-2].lower(), []).append((lowered, idx))
        elif lowered not in _KOBO_META and not name.lower().startswith(("meta/", "formhub/", "meta-", "formhub-")):
            layout.unknown.append(name)
    return layout


def _is_hxl_row(row: Sequence[object]) -> bool:
    cells = [_cell_text(v) for v in row]
    filled = [c for c in cells if c is not None]
    return bool(filled) and all(c.strip().startswith("#") for c in filled)


def _is_empty(row: Sequence[object]) -> bool:
    return all(v is None or (isinstance(v, str) and not v.strip()) for v in row)


@dataclass
class _Sheet:
    name: str
    rows: list[tuple[object, ...]]  # every row of the sheet, row 1 first (empty rows kept so numbering holds)


@dataclass
class _Table:
    sheet: str
    header: tuple[object, ...]
    records: list[tuple[int, tuple[object, ...]]]  # (1-based spreadsheet row, cells)
    sep: str = "/"


def _find_table(sheet: _Sheet, required: Iterable[str], known: Sequence[str],
                multi: dict[str, tuple[str, ...]], sep: str = "/") -> _Table | None:
    """The sheet's data below the first header row that names all `required` fields; HXL tag rows skipped."""
    required = set(required)
    for i, row in enumerate(sheet.rows[:_HEADER_SEARCH_ROWS]):
        if _is_empty(row):
            continue
        lay = _layout(row, known, multi, sep)
        if not required <= set(lay.fields) | set(lay.options):
            continue
        start = i + 1
        if start < len(sheet.rows) and _is_hxl_row(sheet.rows[start]):
            start += 1
        records = [(n + 1, r) for n, r in enumerate(sheet.rows[start:], start=start) if not _is_empty(r)]
        return _Table(sheet.name, row, records, sep)
    return None


def _cell(row: Sequence[object], idx: int | None) -> object:
    return row[idx] if idx is not None and idx < len(row) else None


def _column(table: _Table, idxs: Sequence[int]) -> list[str | None]:
    """One column of the table's records as text; of a repeated column the value it has where the copies agree (a
    row where they disagree is quarantined: `_repeat_issues`); a missing column is all empty."""
    if len(idxs) <= 1:
        idx = idxs[0] if idxs else None
        return [None if idx is None or idx >= len(row) else _cell_text(row[idx]) for _, row in table.records]
    return [next((v for i in idxs if (v := _cell_text(_cell(row, i))) is not None), None) for _, row in table.records]


def _column_letter(idx: int) -> str:
    letters = ""
    idx += 1
    while idx:
        idx, rem = divmod(idx - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _repeat_issues(table: _Table, lay: _Layout, frame_table: str) -> list[RowIssue]:
    """Rows where a column named twice in the header holds different values: which one is meant cannot be told."""
    issues = []
    repeated = dict(lay.repeats)
    for fld, options in lay.options.items():
        by_option: dict[str, list[int]] = {}
        for option, idx in options:
            by_option.setdefault(option, []).append(idx)
        repeated.update({f"{fld}/{opt}": idxs for opt, idxs in by_option.items() if len(idxs) > 1})
    for name, idxs in repeated.items():
        where = ", ".join(_column_letter(i) for i in idxs)
        is_option = "/" in name
        for pos, (_, row) in enumerate(table.records):
            cells = [_cell(row, i) for i in idxs]
            if is_option:
                values: set[object] = {_is_selected(c) for c in cells}
            else:
                values = {canonical_value(text, name) for c in cells if (text := _cell_text(c)) is not None}
            if len(values) > 1:
                issues.append(RowIssue(frame_table, pos, name.split("/")[0], "repeated_column_disagrees",
                                       f"The column {name} appears {len(idxs)} times in the header (columns {where}) "
                                       f"with different values in this row; keep one of them and send the file "
                                       f"again."))
    return issues


def _frame(columns: dict[str, list[object]], names: Sequence[str], int_columns: Sequence[str]) -> pd.DataFrame:
    """The table as validation and the store see it: every text in its canonical form."""
    # object dtype keeps None and str exactly; pandas' own string dtype would turn None into NaN.
    n = len(next(iter(columns.values()))) if columns else 0
    data = {}
    for col in names:
        values = columns.get(col, [None] * n)
        if col in int_columns:
            data[col] = pd.Series(values, dtype="int64")
        else:
            data[col] = pd.Series([canonical_value(v, col) if isinstance(v, str) and col != "source_sheet" else v
                                   for v in values], dtype=object)
    return pd.DataFrame(data, columns=list(names))


def _rows_note(what: str, rows: list[int]) -> str:
    return f"{what} (row{'s' if len(rows) > 1 else ''} {listed(rows, _MAX_ROWS_IN_NOTE)})"


def _column_notes(where: str, lay: _Layout, expected: Sequence[str], optional: Sequence[str] = ()) -> list[str]:
    notes = []
    missing = [f for f in expected if f not in lay.fields and f not in lay.options and f not in optional]
    if missing:
        notes.append(f"{where}: missing column(s) {', '.join(missing)}; left empty")
    if lay.unknown:
        notes.append(f"{where}: ignored unknown column(s) {', '.join(lay.unknown)}")
    return notes


def _select_multiple(table: _Table, lay: _Layout, name: str) -> list[str | None]:
    """The space-separated column as written; rebuilt from the `field/option` 1/0 columns where it is empty."""
    values = _column(table, lay.columns(name))
    options = lay.options.get(name, [])
    if not options:
        return values
    out = []
    for value, (_, row) in zip(values, table.records, strict=True):
        if value is None:
            chosen = list(dict.fromkeys(opt for opt, idx in options if _is_selected(_cell(row, idx))))
            value = " ".join(chosen) if chosen else None
        out.append(value)
    return out


def _fields(table: _Table, lay: _Layout, names: Sequence[str], multi: dict[str, tuple[str, ...]]
            ) -> dict[str, list[object]]:
    cols: dict[str, list[object]] = {}
    for name in names:
        if name in multi:
            cols[name] = list(_select_multiple(table, lay, name))
        else:
            cols[name] = list(_column(table, lay.columns(name)))
    cols["source_sheet"] = [table.sheet] * len(table.records)
    cols["source_row"] = [n for n, _ in table.records]
    return cols


# ---------------------------------------------------------------------------------------------------------------
# XLSX


def _load_sheets(path: Path, zf: zipfile.ZipFile, label: str) -> list[_Sheet]:
    try:
        return [_Sheet(title, rows) for title, rows in xlsx.read_sheets(zf)]
    except xlsx.PrefixedMarkup:
        pass
    except RefusedFileError as exc:  # a workbook built to exhaust the reader: refused, with the reason
        raise RefusedFileError(exc.rule, f"{label}: {exc}") from None
    except (KeyError, ValueError, IndexError, OverflowError) as exc:
        # Named by kind only: the library's words may quote a cell's content.
        raise UnrecognisedFileError(f"{label}: the workbook cannot be opened ({type(exc).__name__}: its parts do "
                                    f"not fit together); expected {_EXPECTED}") from None
    # A file object, not the path: openpyxl refuses names not ending in .xlsx, and the kind comes from content.
    with open(path, "rb") as fh:
        try:
            wb = load_workbook(fh, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for damaged workbooks; all mean the same to a sender
            raise UnrecognisedFileError(f"{label}: the workbook cannot be opened ({type(exc).__name__}); "
                                        f"expected {_EXPECTED}") from None
        try:
            sheets = []
            for ws in wb.worksheets:
                ws.reset_dimensions()  # exports from other tools often carry a wrong <dimension>; read every row
                sheets.append(_Sheet(ws.title, [tuple(r) for r in ws.iter_rows(values_only=True)]))
            return sheets
        finally:
            wb.close()


def _one_table(tables: list[_Table], what: str, label: str) -> _Table | None:
    if len(tables) > 1:
        sheets = ", ".join(f"{t.sheet!r} ({len(t.records)} rows)" for t in tables)
        raise UnrecognisedFileError(f"{label}: more than one sheet looks like the {what} ({sheets}); which one is "
                                    f"meant cannot be told. Keep one and send the file again")
    return tables[0] if tables else None


def _read_xlsx(path: Path, zf: zipfile.ZipFile, label: str) -> Batch:
    sheets = _load_sheets(path, zf, label)
    mains: list[_Table] = []
    member_tables: list[_Table] = []
    capacity: list[_Table] = []
    unread: dict[str, int] = {}
    for sheet in sheets:
        if t := _find_table(sheet, ("case_id",), HOUSEHOLD_FIELDS, HOUSEHOLD_SELECT_MULTIPLE):
            mains.append(t)
        elif t := _find_table(sheet, ("relation", "birth_year"), MEMBER_FIELDS, {}):
            member_tables.append(t)
        elif t := _find_table(sheet, ("offer_id", "ags"), CAPACITY_FIELDS, CAPACITY_SELECT_MULTIPLE):
            capacity.append(t)
        elif n := sum(not _is_empty(r) for r in sheet.rows):
            unread[sheet.name] = n
    if capacity and not mains:
        unread.pop(TEMPLATE_INSTRUCTIONS_SHEET, None)  # the capacity template's own help: no data
    if mains and capacity:
        raise UnrecognisedFileError(f"{label}: holds both household interviews (sheet {mains[0].sheet!r}) and "
                                    f"capacity offers (sheet {capacity[0].sheet!r}); send them as separate files. "
                                    f"Expected {_EXPECTED}")
    if mains:
        main = _one_table(mains, "household table (a 'case_id' column)", label)
        members = _one_table(member_tables, "members table ('relation' and 'birth_year' columns)", label)
        assert main is not None
        batch = _households_batch(main, members, "kobo_xlsx", _kobo_link)
    elif capacity:
        notes: list[str] = []
        issues: list[RowIssue] = []
        frames, offset = [], 0
        for t in capacity:
            frames.append(_capacity_frame(t, notes, issues, offset))
            offset += len(t.records)
        batch = Batch("capacity", {"capacity_offers": pd.concat(frames, ignore_index=True)}, notes, "capacity_xlsx",
                      issues)
    else:
        names = ", ".join(repr(s.name) for s in sheets)
        raise UnrecognisedFileError(f"{label}: no sheet ({names}) has the expected header row; expected {_EXPECTED}")
    for name, n in unread.items():
        batch.notes.append(f"sheet {name!r}: {n} rows not read; its header names no table of the data contract")
    batch.unread = unread
    return batch


# How a member row finds its household: (member link column, household key column, key normaliser) by format.
_Link = Callable[[_Layout, _Layout, list[str]], tuple[str | None, str | None, Callable[[str], str]]]


def _kobo_link(main: _Layout, members: _Layout, notes: list[str]) -> tuple[str | None, str | None,
                                                                          Callable[[str], str]]:
    # `_index` is not stable across exports, so the submission uuid is the link; `_parent_index` only as fallback.
    if "_submission__uuid" in members.system:
        return "_submission__uuid", "_uuid", str.strip
    if "_parent_index" in members.system:
        notes.append("members sheet: no _submission__uuid column; members linked by _parent_index")
        return "_parent_index", "_index", str.strip
    notes.append("members sheet: no _submission__uuid column; members cannot be linked to households")
    return None, None, str.strip


def _odk_root(key: str) -> str:
    # KEY `uuid:abc`, repeat KEY `uuid:abc/members[2]`, PARENT_KEY `uuid:abc` (or a nested repeat's key).
    return key.strip().split("/", 1)[0]


def _odk_link(main: _Layout, members: _Layout, notes: list[str]) -> tuple[str | None, str | None,
                                                                         Callable[[str], str]]:
    if "PARENT_KEY" not in members.system:
        notes.append("members file: no PARENT_KEY column; members cannot be linked to households")
    return "PARENT_KEY", "KEY", _odk_root


def _households_batch(main: _Table, members: _Table | None, fmt: str, link: _Link) -> Batch:
    notes: list[str] = []
    lay = _layout(main.header, HOUSEHOLD_FIELDS, HOUSEHOLD_SELECT_MULTIPLE, main.sep)
    notes += _column_notes(f"sheet {main.sheet!r}", lay, HOUSEHOLD_FIELDS, HOUSEHOLD_OPTIONAL_FIELDS)
    issues = _repeat_issues(main, lay, "households")
    cols = _fields(main, lay, HOUSEHOLD_FIELDS, HOUSEHOLD_SELECT_MULTIPLE)
    if fmt == "odk_central_zip":
        cols["_uuid"] = list(_column(main, lay.columns("KEY")))
        cols["_submission_time"] = list(_column(main, lay.columns("SubmissionDate")))
    else:
        for name in HOUSEHOLD_SYSTEM_KEPT:
            cols[name] = list(_column(main, lay.columns(name)))
    frames = {"households": _frame(cols, HOUSEHOLD_COLUMNS, ("source_row",))}
    if members is None:
        if fmt == "kobo_csv":
            notes.append(KOBO_CSV_NOTE)
        else:
            where = ("no members file read from the ZIP (ODK Central exports the repeat group as "
                     "'<form id>-members.csv' beside the main CSV; export with repeat groups)"
                     if fmt == "odk_central_zip"
                     else "no members sheet found (a sheet with 'relation' and 'birth_year')")
            notes.append(f"{where}; households have no members")
            frames["members"] = _frame({}, MEMBER_COLUMNS, ("member_no", "source_row"))
        return Batch("households", frames, notes, fmt, issues)
    m_lay = _layout(members.header, MEMBER_FIELDS, {}, members.sep)
    notes += _column_notes(f"sheet {members.sheet!r}", m_lay, MEMBER_FIELDS)
    issues += _repeat_issues(members, m_lay, "members")
    link_name, key_name, normalise = link(lay, m_lay, notes)
    link_cols, key_cols = m_lay.columns(link_name), lay.columns(key_name)
    # Each submission key -> the household rows carrying it; a key on two rows cannot tell whose members are whose.
    holders: dict[str, list[int]] = {}
    for pos, key in enumerate(_column(main, key_cols)):
        if key is not None:
            holders.setdefault(normalise(key), []).append(pos)
    for positions in holders.values():
        if len(positions) > 1:
            rows = [main.records[p][0] for p in positions]
            for pos in positions:
                others = [r for r in rows if r != main.records[pos][0]]
                issues.append(RowIssue("households", pos, key_name or "_uuid", "submission_key_not_unique",
                                       _rows_note(f"This household's submission key ({key_name}) is also on another "
                                                  f"household row of sheet {main.sheet!r}, so its members cannot be "
                                                  f"told apart; export the submissions again", others)))
    case_ids: list[object] = []
    numbers: list[object] = []
    counters: dict[str | None, int] = {}
    orphans: list[int] = []
    for pos, ((row_no, _), key) in enumerate(zip(members.records, _column(members, link_cols), strict=True)):
        k = normalise(key) if key is not None else None
        found = holders.get(k, []) if k is not None else []
        case_id = cols["case_id"][found[0]] if found else None
        if len(found) > 1:
            issues.append(RowIssue("members", pos, link_name or "_submission__uuid", "household_link_ambiguous",
                                   _rows_note(f"This person's row links by {link_name} to more than one household "
                                              f"of sheet {main.sheet!r}, so whose member it is cannot be told",
                                              [main.records[p][0] for p in found])))
        elif found and not case_id:  # linked, but to a household row that has no case_id: the person waits with it
            issues.append(RowIssue("members", pos, "case_id", "household_without_case_id",
                                   _rows_note(f"This person's household row of sheet {main.sheet!r} has no case_id "
                                              f"(see its own entry); once it has one, the person is stored with it",
                                              [main.records[found[0]][0]])))
        elif case_id is None:
            orphans.append(row_no)
        counters[k] = counters.get(k, 0) + 1
        case_ids.append(case_id if isinstance(case_id, str) else None)
        numbers.append(counters[k])
    m_cols = _fields(members, m_lay, MEMBER_FIELDS, {})
    m_cols["case_id"] = case_ids
    m_cols["member_no"] = numbers
    if orphans and link_cols:
        notes.append(_rows_note(f"sheet {members.sheet!r}: members without a household in the main sheet "
                                f"(case_id left empty)", orphans))
    frames["members"] = _frame(m_cols, MEMBER_COLUMNS, ("member_no", "source_row"))
    return Batch("households", frames, notes, fmt, issues)


def _capacity_frame(table: _Table, notes: list[str], issues: list[RowIssue], offset: int = 0) -> pd.DataFrame:
    """The offers of one sheet; its rows are `offset` onwards in the file's frame (a workbook may have several)."""
    lay = _layout(table.header, CAPACITY_FIELDS, CAPACITY_SELECT_MULTIPLE)
    notes += _column_notes(f"sheet {table.sheet!r}", lay, CAPACITY_FIELDS)
    issues += [RowIssue(i.table, i.row + offset, i.field, i.rule, i.message)
               for i in _repeat_issues(table, lay, "capacity_offers")]
    cols = _fields(table, lay, CAPACITY_FIELDS, CAPACITY_SELECT_MULTIPLE)
    ags_idx = lay.fields.get("ags")
    numeric_ags = [n for n, row in table.records if isinstance(_cell(row, ags_idx), (int, float))]
    if numeric_ags:
        notes.append(_rows_note(f"sheet {table.sheet!r}: ags stored as a number, leading zeros may be lost",
                                numeric_ags))
    repaired = []
    for i, (ags, state) in enumerate(zip(cols["ags"], cols["state"], strict=True)):
        fixed = repaired_ags(ags, state)  # type: ignore[arg-type]
        if fixed != ags:
            cols["ags"][i] = fixed
            repaired.append(int(cols["source_row"][i]))  # type: ignore[call-overload]
    if repaired:
        notes.append(_rows_note(f"{table.sheet}: 7-digit ags given 8 digits again by restoring the leading "
                                f"zero Excel dropped", repaired))
    return _frame(cols, CAPACITY_COLUMNS, ("source_row",))


def repaired_ags(ags: str | None, state: str | None) -> str | None:
    """A 7-digit AGS that lost its leading zero, padded to 8 digits when that is unambiguous; otherwise as given.

    Excel drops only one zero (Länder 01-09); the padded AGS must name the Land given in `state` when there is one.
    """
    text = canonical_text(ags, "ags") if ags is not None else None
    if text is None or not re.fullmatch(r"[1-9][0-9]{6}", text):
        return ags
    padded = "0" + text
    land = LAND_BY_AGS_PREFIX.get(padded[:2])
    given = state.strip().upper() if state else None
    return padded if given is None or given == land else ags


# ---------------------------------------------------------------------------------------------------------------
# CSV and ODK Central ZIP

_NON_WESTERN_RUN = re.compile(r"[^\x00-\x7f]{3,}")


def _decode(raw: bytes, label: str, notes: list[str]) -> str:
    """Text of a CSV: UTF-8 (with or without BOM), UTF-16 with BOM, or Windows-1252 when that is unambiguous."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        notes.append(f"{label}: UTF-16 text; read as UTF-16")
        return raw.decode("utf-16")
    if b"\x00" in raw[:4096]:
        raise UnrecognisedFileError(f"{label}: binary content, not a spreadsheet or CSV file; expected {_EXPECTED}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    refusal = (f"{label}: the text is not UTF-8 and cannot be read reliably in another encoding (it looks like "
               f"Cyrillic or another non-Western code page); save it as 'CSV UTF-8' and send it again")
    try:
        text = raw.decode("cp1252")
    except UnicodeDecodeError as exc:
        raise RefusedFileError("encoding_not_supported", refusal) from exc
    # Western text has a non-ASCII letter here and there (Müller, Straße); Windows-1251 Cyrillic read as
    # Windows-1252 turns whole words into runs of accented letters (Київ -> Êè¿â).
    if _NON_WESTERN_RUN.search(text):
        raise RefusedFileError("encoding_not_supported", refusal)
    # Excel on German Windows saves "CSV (Trennzeichen-getrennt)" as Windows-1252.
    notes.append(f"{label}: not UTF-8; read as Windows-1252 (Western European)")
    return text


def _csv_rows(text: str, label: str, sep: str | None = None) -> list[tuple[object, ...]]:
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = sep or (";" if first_line.count(";") > first_line.count(",") else ",")
    try:
        return [tuple(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]
    except csv.Error as exc:
        raise UnrecognisedFileError(f"{label}: not a well-formed CSV file ({exc}); expected {_EXPECTED}") from exc


def _read_csv(raw: bytes, label: str) -> Batch:
    notes: list[str] = []
    sheet = _Sheet(PurePosixPath(label).name, _csv_rows(_decode(raw, label, notes), label))
    table = _find_table(sheet, ("offer_id", "ags"), CAPACITY_FIELDS, CAPACITY_SELECT_MULTIPLE)
    if table is not None:
        issues: list[RowIssue] = []
        frame = _capacity_frame(table, notes, issues)
        return Batch("capacity", {"capacity_offers": frame}, notes, "capacity_csv", issues)
    table = _find_table(sheet, ("case_id", "round_id", "decision"), DECISION_FIELDS, {})
    if table is not None:
        lay = _layout(table.header, DECISION_FIELDS, {})
        notes += _column_notes(sheet.name, lay, DECISION_FIELDS)
        cols = _fields(table, lay, DECISION_FIELDS, {})
        return Batch("decisions", {"decisions": _frame(cols, DECISION_COLUMNS, ("source_row",))}, notes,
                     "decisions_csv", _repeat_issues(table, lay, "decisions"))
    table = _find_table(sheet, ("case_id",), HOUSEHOLD_FIELDS, HOUSEHOLD_SELECT_MULTIPLE)
    if table is not None:
        if _find_table(sheet, ("relation", "birth_year"), MEMBER_FIELDS, {}) is not None:
            raise UnrecognisedFileError(f"{label}: a CSV with household and member columns in one table; send "
                                        f"the KoboToolbox XLSX export (members on their own sheet) or the ODK "
                                        f"Central ZIP instead")
        batch = _households_batch(table, None, "kobo_csv", _kobo_link)
        batch.notes[:0] = notes
        return batch
    raise UnrecognisedFileError(f"{label}: no header row with the expected columns found; expected {_EXPECTED}")


def _read_odk_zip(zf: zipfile.ZipFile, label: str) -> Batch:
    notes: list[str] = []
    # ODK Central puts a submission's attachments under media/: files of the form, never tables of it.
    csvs = [i.filename for i in zf.infolist() if not i.is_dir() and i.filename.lower().endswith(".csv")
            and not i.filename.lower().startswith("media/")]
    mains = []
    for entry in csvs:
        if entry.lower().endswith("-members.csv"):
            continue
        text = _decode(zf.read(entry), f"{label}:{entry}", notes)
        sheet = _Sheet(PurePosixPath(entry).name, _csv_rows(text, label, ","))
        table = _find_table(sheet, ("case_id",), HOUSEHOLD_FIELDS, HOUSEHOLD_SELECT_MULTIPLE, sep="-")
        if table is not None:
            mains.append((entry, table))
    if not mains:
        held = listed(csvs, 10) or "no CSV files"
        raise UnrecognisedFileError(f"{label}: a ZIP archive ({held}) without a main CSV holding 'case_id'; "
                                    f"expected {_EXPECTED}")
    if len(mains) > 1:
        raise UnrecognisedFileError(f"{label}: the archive holds more than one household CSV "
                                    f"({', '.join(e for e, _ in mains)}); send one form export per file")
    entry, main = mains[0]
    stem = entry[:-len(".csv")]
    member_entries = [e for e in csvs if e.lower().endswith("-members.csv")]
    member_entry = next((e for e in member_entries if e == f"{stem}-members.csv"), None)
    if member_entry is None and len(member_entries) > 1:
        raise UnrecognisedFileError(f"{label}: the archive holds more than one members CSV "
                                    f"({', '.join(member_entries[:10])}) and none belongs to {entry} by name; "
                                    f"send one form export per file")
    member_entry = member_entry or next(iter(member_entries), None)
    members = None
    unread: dict[str, int] = {}
    if member_entry is not None:
        sheet = _Sheet(PurePosixPath(member_entry).name,
                       _csv_rows(_decode(zf.read(member_entry), f"{label}:{member_entry}", notes), label, ","))
        members = _find_table(sheet, ("relation", "birth_year"), MEMBER_FIELDS, {}, sep="-")
        if members is None:
            notes.append(f"{member_entry}: no header row with 'relation' and 'birth_year'")
            unread[sheet.name] = sum(not _is_empty(r) for r in sheet.rows)
    # Every other table in the archive (another repeat group, a second members file) is counted, never skipped.
    for other in csvs:
        if other not in (entry, member_entry):
            text = _decode(zf.read(other), f"{label}:{other}", notes)
            unread[PurePosixPath(other).name] = sum(not _is_empty(r) for r in _csv_rows(text, label, ","))
    batch = _households_batch(main, members, "odk_central_zip", _odk_link)
    batch.notes[:0] = notes
    for name, n in unread.items():
        batch.notes.append(f"{name}: {n} rows not read; its header names no table of the data contract")
    batch.unread = {k: v for k, v in unread.items() if v}
    return batch
