"""Detect an input file's kind by its content and read it into canonical all-string tables (no validation here)."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path

import pandas as pd
from openpyxl import load_workbook

from rematch_pipeline.domain import LANGUAGES, MEDICAL_NEEDS, MEDICAL_SERVICES, OCCUPATIONS, WEIGHT_ASPECTS

# Field names of the data contract (../shared/spec/data-contract.md), in contract order; they cross the boundary.
HOUSEHOLD_FIELDS = (
    "case_id", "interview_date", "interview_location", "consent_matching", "consent_health_share",
    "contact_phone", "contact_email", "languages", "german_level", "wheelchair_access", "medical_needs", "pets",
    "pref_settlement", *(f"weight_{aspect}" for aspect in WEIGHT_ASPECTS), "ties_ags", "notes",
)
MEMBER_FIELDS = ("relation", "sex", "birth_year", "mobility_impaired", "occupation", "qualification")
CAPACITY_FIELDS = (
    "offer_id", "ags", "municipality_name", "state", "settlement_type", "valid_from", "valid_until",
    "places_persons", "units_1_room", "units_2_rooms", "units_3_rooms", "units_4plus_rooms", "units_wheelchair",
    "units_pets_allowed", "kita_u3", "kita_ue3", "school_primary", "school_secondary", "language_course_seats",
    "medical_services", "job_sectors_shortage", "ukrainian_community", "contact_name", "contact_email",
)
# select_multiple fields and their options, as the form defines them (Kobo adds one `field/option` column each).
HOUSEHOLD_SELECT_MULTIPLE: dict[str, tuple[str, ...]] = {"languages": LANGUAGES, "medical_needs": MEDICAL_NEEDS}
CAPACITY_SELECT_MULTIPLE: dict[str, tuple[str, ...]] = {
    "medical_services": MEDICAL_SERVICES + ("none",), "job_sectors_shortage": OCCUPATIONS,
}
CAPACITY_DATE_FIELDS = ("valid_from", "valid_until")

HOUSEHOLD_SYSTEM_KEPT = ("_uuid", "_submission_time")
HOUSEHOLD_COLUMNS = (*HOUSEHOLD_FIELDS, *HOUSEHOLD_SYSTEM_KEPT, "source_sheet", "source_row")
MEMBER_COLUMNS = ("case_id", "member_no", *MEMBER_FIELDS, "source_sheet", "source_row")
CAPACITY_COLUMNS = (*CAPACITY_FIELDS, "source_sheet", "source_row")
# Kobo/ODK metadata columns that carry nothing for us; dropped without a note.
_KOBO_META = frozenset({"start", "end", "today", "deviceid", "username", "simserial", "subscriberid", "phonenumber",
                        "audit", "instanceid", "instancename", "__version__", "version"})

_EXPECTED = ("a KoboToolbox XLSX household export (a main sheet with 'case_id' and the other household fields, "
             "plus a 'members' sheet) or a municipal capacity template (XLSX or CSV with columns 'offer_id', "
             "'ags', 'municipality_name', ...)")
_HEADER_SEARCH_ROWS = 10  # a municipality may put a title above the template's header row
_MAX_ROWS_IN_NOTE = 10


class UnrecognisedFileError(ValueError):
    """The file is neither a household export nor a capacity submission this reader understands."""


@dataclass
class Batch:
    kind: str  # "households" | "capacity"
    tables: dict[str, pd.DataFrame]
    notes: list[str] = field(default_factory=list)


def read_file(path: Path) -> Batch:
    """Read one input file; its kind comes from its content, never from its name."""
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
    if head.startswith(b"PK\x03\x04"):
        if not _is_xlsx(path):
            raise UnrecognisedFileError(f"{path}: a ZIP archive that is not an XLSX workbook (ODK Central ZIP "
                                        f"exports are not supported yet); expected {_EXPECTED}")
        return _read_xlsx(path)
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise UnrecognisedFileError(f"{path}: an old Excel .xls workbook, please save it as .xlsx; "
                                    f"expected {_EXPECTED}")
    return _read_csv(path)


# ---------------------------------------------------------------------------------------------------------------
# Cell values and headers


def _cell_text(value: object) -> str | None:
    """A cell as the text a person sees; empty cells become None. No type conversion beyond that."""
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


_GERMAN_DATE = re.compile(r"^\s*(\d{1,2})\.(\d{1,2})\.(\d{4})\s*$")
_ISO_DATE = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\s*$")


def _iso_date(value: object) -> str | None:
    """Dates as ISO strings when they can be read as dates; anything else stays as written for the validator."""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = _cell_text(value)
    if text is None:
        return None
    for pattern, order in ((_ISO_DATE, (1, 2, 3)), (_GERMAN_DATE, (3, 2, 1))):
        m = pattern.match(text)
        if m:
            try:
                return date(int(m.group(order[0])), int(m.group(order[1])), int(m.group(order[2]))).isoformat()
            except ValueError:
                return text
    return text


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


def _layout(header: Sequence[object], known: Sequence[str], multi: dict[str, tuple[str, ...]]) -> _Layout:
    """Map header cells to contract fields; group paths (`grp_needs/medical_needs`) are stripped."""
    layout = _Layout({}, {}, {}, [])
    known_set = set(known)
    for idx, raw in enumerate(header):
        name = _cell_text(raw)
        if name is None:
            continue
        name = name.strip()
        parts = [p.strip() for p in name.split("/")]
        last = parts[-1]
        lowered = last.lower()
        if last.startswith("_"):
            layout.system.setdefault(last, idx)
        elif lowered in known_set:
            layout.fields.setdefault(lowered, idx)
        elif len(parts) >= 2 and parts[-2].lower() in multi and lowered in multi[parts[-2].lower()]:
            layout.options.setdefault(parts[-2].lower(), []).append((lowered, idx))
        elif lowered not in _KOBO_META and not name.lower().startswith(("meta/", "formhub/")):
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


def _find_table(sheet: _Sheet, required: Iterable[str], known: Sequence[str],
                multi: dict[str, tuple[str, ...]]) -> _Table | None:
    """The sheet's data below the first header row that names all `required` fields; HXL tag rows skipped."""
    required = set(required)
    for i, row in enumerate(sheet.rows[:_HEADER_SEARCH_ROWS]):
        if _is_empty(row):
            continue
        lay = _layout(row, known, multi)
        if not required <= set(lay.fields) | set(lay.options):
            continue
        start = i + 1
        if start < len(sheet.rows) and _is_hxl_row(sheet.rows[start]):
            start += 1
        records = [(n + 1, r) for n, r in enumerate(sheet.rows[start:], start=start) if not _is_empty(r)]
        return _Table(sheet.name, row, records)
    return None


def _cell(row: Sequence[object], idx: int | None) -> object:
    return row[idx] if idx is not None and idx < len(row) else None


def _frame(records: list[dict[str, object]], columns: Sequence[str], int_columns: Sequence[str]) -> pd.DataFrame:
    # object dtype keeps None and str exactly; pandas' own string dtype would turn None into NaN.
    data = {}
    for col in columns:
        values = [rec.get(col) for rec in records]
        data[col] = pd.Series(values, dtype="int64" if col in int_columns else object)
    return pd.DataFrame(data, columns=list(columns))


def _rows_note(what: str, rows: list[int]) -> str:
    shown = ", ".join(str(r) for r in rows[:_MAX_ROWS_IN_NOTE])
    more = f" and {len(rows) - _MAX_ROWS_IN_NOTE} more" if len(rows) > _MAX_ROWS_IN_NOTE else ""
    return f"{what} (row{'s' if len(rows) > 1 else ''} {shown}{more})"


def _column_notes(where: str, lay: _Layout, expected: Sequence[str]) -> list[str]:
    notes = []
    missing = [f for f in expected if f not in lay.fields and f not in lay.options]
    if missing:
        notes.append(f"{where}: missing column(s) {', '.join(missing)}; left empty")
    if lay.unknown:
        notes.append(f"{where}: ignored unknown column(s) {', '.join(lay.unknown)}")
    return notes


def _select_multiple(row: Sequence[object], lay: _Layout, name: str) -> str | None:
    """The space-separated column as written; rebuilt from the `field/option` 1/0 columns when it is missing."""
    text = _cell_text(_cell(row, lay.fields.get(name)))
    if text is not None:
        return text
    chosen = [opt for opt, idx in lay.options.get(name, []) if _is_selected(_cell(row, idx))]
    return " ".join(chosen) if chosen else None


# ---------------------------------------------------------------------------------------------------------------
# XLSX


def _is_xlsx(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as zf:
            return "xl/workbook.xml" in zf.namelist()
    except zipfile.BadZipFile:
        return False


def _load_sheets(path: Path) -> list[_Sheet]:
    # A file object, not the path: openpyxl refuses names not ending in .xlsx, and the kind comes from content.
    with open(path, "rb") as fh:
        try:
            wb = load_workbook(fh, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many types for damaged workbooks; all mean the same to a sender
            raise UnrecognisedFileError(f"{path}: the workbook cannot be opened ({exc}); expected {_EXPECTED}") from exc
        try:
            sheets = []
            for ws in wb.worksheets:
                ws.reset_dimensions()  # exports from other tools often carry a wrong <dimension>; read every row
                sheets.append(_Sheet(ws.title, [tuple(r) for r in ws.iter_rows(values_only=True)]))
            return sheets
        finally:
            wb.close()


def _read_xlsx(path: Path) -> Batch:
    sheets = _load_sheets(path)
    main = members = None
    capacity: list[_Table] = []
    for sheet in sheets:
        if main is None and (t := _find_table(sheet, ("case_id",), HOUSEHOLD_FIELDS, HOUSEHOLD_SELECT_MULTIPLE)):
            main = t
        elif members is None and (t := _find_table(sheet, ("relation", "birth_year"), MEMBER_FIELDS, {})):
            members = t
        elif t := _find_table(sheet, ("offer_id", "ags"), CAPACITY_FIELDS, CAPACITY_SELECT_MULTIPLE):
            capacity.append(t)
    if main is not None and capacity:
        raise UnrecognisedFileError(f"{path}: holds both household interviews (sheet {main.sheet!r}) and capacity "
                                    f"offers (sheet {capacity[0].sheet!r}); send them as separate files. "
                                    f"Expected {_EXPECTED}")
    if main is not None:
        return _households_batch(main, members)
    if capacity:
        notes: list[str] = []
        frames = [_capacity_frame(t, notes) for t in capacity]
        return Batch("capacity", {"capacity_offers": pd.concat(frames, ignore_index=True)}, notes)
    names = ", ".join(repr(s.name) for s in sheets)
    raise UnrecognisedFileError(f"{path}: no sheet ({names}) has the expected header row; expected {_EXPECTED}")


def _households_batch(main: _Table, members: _Table | None) -> Batch:
    notes: list[str] = []
    lay = _layout(main.header, HOUSEHOLD_FIELDS, HOUSEHOLD_SELECT_MULTIPLE)
    notes += _column_notes(f"sheet {main.sheet!r}", lay, HOUSEHOLD_FIELDS)
    households: list[dict[str, object]] = []
    by_uuid: dict[str, str | None] = {}
    by_index: dict[str, str | None] = {}
    for row_no, row in main.records:
        rec: dict[str, object] = {}
        for name in HOUSEHOLD_FIELDS:
            if name in HOUSEHOLD_SELECT_MULTIPLE:
                rec[name] = _select_multiple(row, lay, name)
            else:
                rec[name] = _cell_text(_cell(row, lay.fields.get(name)))
        for name in HOUSEHOLD_SYSTEM_KEPT:
            rec[name] = _cell_text(_cell(row, lay.system.get(name)))
        rec["source_sheet"] = main.sheet
        rec["source_row"] = row_no
        households.append(rec)
        case_id = rec["case_id"] if isinstance(rec["case_id"], str) else None
        if isinstance(rec["_uuid"], str):
            by_uuid.setdefault(rec["_uuid"].strip(), case_id)
        index = _cell_text(_cell(row, lay.system.get("_index")))
        if index is not None:
            by_index.setdefault(index.strip(), case_id)
    member_records = _member_records(members, by_uuid, by_index, notes) if members is not None else []
    if members is None:
        notes.append("no members sheet found (a sheet with 'relation' and 'birth_year'); households have no members")
    return Batch("households", {
        "households": _frame(households, HOUSEHOLD_COLUMNS, ("source_row",)),
        "members": _frame(member_records, MEMBER_COLUMNS, ("member_no", "source_row")),
    }, notes)


def _member_records(members: _Table, by_uuid: dict[str, str | None], by_index: dict[str, str | None],
                    notes: list[str]) -> list[dict[str, object]]:
    lay = _layout(members.header, MEMBER_FIELDS, {})
    notes += _column_notes(f"sheet {members.sheet!r}", lay, MEMBER_FIELDS)
    # `_index` is not stable across exports, so the submission uuid is the link; `_parent_index` only as fallback.
    if "_submission__uuid" in lay.system:
        link_col, lookup = lay.system["_submission__uuid"], by_uuid
    elif "_parent_index" in lay.system:
        link_col, lookup = lay.system["_parent_index"], by_index
        notes.append(f"sheet {members.sheet!r}: no _submission__uuid column; members linked by _parent_index")
    else:
        link_col, lookup = None, {}
        notes.append(f"sheet {members.sheet!r}: no _submission__uuid column; members cannot be linked to households")
    counters: dict[str | None, int] = {}
    orphans: list[int] = []
    records = []
    for row_no, row in members.records:
        key = _cell_text(_cell(row, link_col))
        key = key.strip() if key is not None else None
        case_id = lookup.get(key) if key is not None else None
        if case_id is None:
            orphans.append(row_no)
        counters[key] = counters.get(key, 0) + 1
        rec: dict[str, object] = {"case_id": case_id, "member_no": counters[key]}
        for name in MEMBER_FIELDS:
            rec[name] = _cell_text(_cell(row, lay.fields.get(name)))
        rec["source_sheet"] = members.sheet
        rec["source_row"] = row_no
        records.append(rec)
    if orphans and link_col is not None:
        notes.append(_rows_note(f"sheet {members.sheet!r}: members without a household in the main sheet "
                                f"(case_id left empty)", orphans))
    return records


def _capacity_frame(table: _Table, notes: list[str]) -> pd.DataFrame:
    lay = _layout(table.header, CAPACITY_FIELDS, CAPACITY_SELECT_MULTIPLE)
    notes += _column_notes(f"sheet {table.sheet!r}", lay, CAPACITY_FIELDS)
    numeric_ags: list[int] = []
    records = []
    for row_no, row in table.records:
        rec: dict[str, object] = {}
        for name in CAPACITY_FIELDS:
            value = _cell(row, lay.fields.get(name))
            if name in CAPACITY_SELECT_MULTIPLE:
                rec[name] = _select_multiple(row, lay, name)
            else:
                rec[name] = _iso_date(value) if name in CAPACITY_DATE_FIELDS else _cell_text(value)
        if isinstance(_cell(row, lay.fields.get("ags")), (int, float)):
            numeric_ags.append(row_no)
        rec["source_sheet"] = table.sheet
        rec["source_row"] = row_no
        records.append(rec)
    if numeric_ags:
        notes.append(_rows_note(f"sheet {table.sheet!r}: ags stored as a number, leading zeros may be lost",
                                numeric_ags))
    return _frame(records, CAPACITY_COLUMNS, ("source_row",))


# ---------------------------------------------------------------------------------------------------------------
# CSV


def _decode(path: Path, notes: list[str]) -> str:
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise UnrecognisedFileError(f"{path}: binary content, not a spreadsheet or CSV file; expected {_EXPECTED}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel on German Windows saves "CSV (Trennzeichen-getrennt)" as Windows-1252.
        notes.append(f"{path.name}: not UTF-8; read as Windows-1252")
        return raw.decode("cp1252", errors="replace")


def _read_csv(path: Path) -> Batch:
    notes: list[str] = []
    text = _decode(path, notes)
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    rows: list[tuple[object, ...]] = [tuple(r) for r in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)]
    sheet = _Sheet(path.name, rows)
    table = _find_table(sheet, ("offer_id", "ags"), CAPACITY_FIELDS, CAPACITY_SELECT_MULTIPLE)
    if table is not None:
        return Batch("capacity", {"capacity_offers": _capacity_frame(table, notes)}, notes)
    if _find_table(sheet, ("case_id",), HOUSEHOLD_FIELDS, HOUSEHOLD_SELECT_MULTIPLE) is not None:
        raise UnrecognisedFileError(f"{path}: looks like a household CSV export; households are read only from "
                                    f"the KoboToolbox XLSX export (which carries the members sheet). "
                                    f"Expected {_EXPECTED}")
    raise UnrecognisedFileError(f"{path}: no header row with the expected columns found; expected {_EXPECTED}")
