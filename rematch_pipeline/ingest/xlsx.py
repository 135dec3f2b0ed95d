"""Fast values-only reading of XLSX worksheets straight from their XML (large exports); cells as openpyxl gives them."""

from __future__ import annotations

import html
import re
import zipfile
from datetime import datetime, timedelta
from functools import lru_cache
from posixpath import dirname, join, normpath

from rematch_pipeline.ingest.safety import RefusedFileError

# The package parts are plain SpreadsheetML. Regular expressions over the bytes read a 100,000-household export
# several times faster than an XML parser with Python callbacks; prefixed markup (`<x:c>`) is left to openpyxl.
_SHEET = re.compile(rb"<sheet\b([^>]*?)/?>")
_REL = re.compile(rb"<Relationship\b([^>]*?)/?>")
_ROW = re.compile(rb"<row\b([^>]*?)(?:/>|>(.*?)</row>)", re.S)
# `r` comes first in every writer seen (Excel, LibreOffice, openpyxl, KoboToolbox); other cells take _CELL_REF.
_FAST_CELL = re.compile(rb'<c r="([A-Z]+)\d*"([^>]*?)(?:/>|>(?:<v>([^<]*)</v>|(.*?))</c>)', re.S)
_CELL_REF = re.compile(rb"<c\b([^>]*?)(?:/>|>(.*?)</c>)", re.S)
_REF = re.compile(rb'(?:^|\s)r="([A-Z]+)')
_CELL_ATTR = re.compile(rb'(?:^|\s)(r|t|s)="([^"]*)"')
_ROW_NUMBER = re.compile(rb'(?:^|\s)r="(\d+)"')
_VALUE = re.compile(rb"<v>(.*?)</v>", re.S)
_TEXT = re.compile(rb"<t\b[^>]*?(?:/>|>(.*?)</t>)", re.S)
_SHARED = re.compile(rb"<si>(.*?)</si>|<si/>", re.S)
_PHONETIC = re.compile(rb"<rPh\b.*?</rPh>", re.S)
_NUMFMT = re.compile(rb'<numFmt\b[^>]*?numFmtId="(\d+)"[^>]*?formatCode="([^"]*)"')
_CELLXFS = re.compile(rb"<cellXfs\b[^>]*>(.*?)</cellXfs>", re.S)
_XF = re.compile(rb"<xf\b([^>]*)")
_XF_NUMFMT = re.compile(rb'numFmtId="(\d+)"')
_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_INT = re.compile(rb"-?\d+")
# Built-in number formats that show dates or times (ECMA-376 part 1, 18.8.30; 27-36 and 50-58 are East Asian).
_BUILTIN_DATE_FORMATS = frozenset({*range(14, 23), *range(27, 37), *range(45, 48), *range(50, 59)})
_EPOCH_1900 = datetime(1899, 12, 30)
_EPOCH_1904 = datetime(1904, 1, 1)


class PrefixedMarkup(Exception):
    """The workbook uses namespace-prefixed element names; the caller reads it with openpyxl instead."""


def _attrs(raw: bytes) -> dict[str, str]:
    out = {}
    for m in re.finditer(rb'([\w:]+)="([^"]*)"', raw):
        out[m.group(1).decode()] = html.unescape(m.group(2).decode("utf-8"))
    return out


def _text(raw: bytes) -> str:
    text = raw.decode("utf-8")
    if "&" in text:
        text = html.unescape(text)
    if "_x" in text:
        text = _OOXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    return text


# A worksheet's bounds (Excel's own): a row or column named beyond them is no spreadsheet program's doing, and padding
# up to it would take memory in proportion to the number (an 8 KB file could ask for gigabytes).
MAX_ROWS, MAX_COLUMNS = 1_048_576, 16_384


def _out_of_bounds(what: str, number: int) -> RefusedFileError:
    return RefusedFileError("xlsx_beyond_sheet_bounds",
                            f"a cell names {what} {number}, beyond what a worksheet holds; save the file again from "
                            "the spreadsheet program or export it again")


@lru_cache(maxsize=4096)
def _column_index(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
        if n > MAX_COLUMNS:
            raise _out_of_bounds("column", n)
    return n - 1


def _is_date_format(code: str) -> bool:
    code = re.sub(r'"[^"]*"|\[[^\]]*\]|\\.', "", code).lower()
    return code != "general" and any(ch in code for ch in "dmyhs")


def _date_styles(zf: zipfile.ZipFile, names: set[str]) -> frozenset[int]:
    if "xl/styles.xml" not in names:
        return frozenset()
    styles = zf.read("xl/styles.xml")
    custom = {int(m.group(1)) for m in _NUMFMT.finditer(styles) if _is_date_format(_text(m.group(2)))}
    block = _CELLXFS.search(styles)
    if block is None:
        return frozenset()
    out = set()
    for i, xf in enumerate(_XF.finditer(block.group(1))):
        m = _XF_NUMFMT.search(xf.group(1))
        fmt = int(m.group(1)) if m else 0
        if fmt in _BUILTIN_DATE_FORMATS or fmt in custom:
            out.add(i)
    return frozenset(out)


def _shared_strings(zf: zipfile.ZipFile, path: str | None) -> list[str]:
    if path is None:
        return []
    data = zf.read(path)
    out = []
    for m in _SHARED.finditer(data):
        body = m.group(1) or b""
        if b"<rPh" in body:
            body = _PHONETIC.sub(b"", body)
        out.append("".join(_text(t.group(1) or b"") for t in _TEXT.finditer(body)))
    return out


def _part(base: str, target: str) -> str:
    return target.lstrip("/") if target.startswith("/") else normpath(join(dirname(base), target))


def read_sheets(zf: zipfile.ZipFile) -> list[tuple[str, list[tuple[object, ...]]]]:
    """Every worksheet as (title, rows); row n of the sheet is rows[n-1], missing rows are empty tuples."""
    names = set(zf.namelist())
    workbook = zf.read("xl/workbook.xml")
    if b"<workbook" not in workbook[:2000]:
        raise PrefixedMarkup
    date1904 = re.search(rb'date1904="(1|true)"', workbook) is not None
    rels = {}
    shared_path = None
    for m in _REL.finditer(zf.read("xl/_rels/workbook.xml.rels")):
        a = _attrs(m.group(1))
        target = _part("xl/workbook.xml", a.get("Target", ""))
        rels[a.get("Id")] = (a.get("Type", ""), target)
        if a.get("Type", "").endswith("/sharedStrings"):
            shared_path = target
    strings = _shared_strings(zf, shared_path if shared_path in names else None)
    dates = _date_styles(zf, names)
    epoch = _EPOCH_1904 if date1904 else _EPOCH_1900
    sheets = []
    for m in _SHEET.finditer(workbook):
        a = _attrs(m.group(1))
        rid = next((v for k, v in a.items() if k.endswith(":id")), None)
        kind, target = rels.get(rid, ("", ""))
        if not kind.endswith("/worksheet") or target not in names:
            continue
        sheets.append((a.get("name", ""), _rows(zf.read(target), strings, dates, epoch)))
    return sheets


@lru_cache(maxsize=1024)
def _cell_kind(attrs: bytes) -> tuple[bytes | None, int | None]:
    """(t, s) of a cell from its attributes after `r`, e.g. b' s="3" t="s"'."""
    typ = style = None
    for am in _CELL_ATTR.finditer(attrs):
        if am.group(1) == b"t":
            typ = am.group(2)
        elif am.group(1) == b"s":
            style = int(am.group(2))
    return typ, style


def _rows(data: bytes, strings: list[str], dates: frozenset[int], epoch: datetime) -> list[tuple[object, ...]]:
    if b"<sheetData" not in data:
        if b":sheetData" in data:
            raise PrefixedMarkup
        return []
    rows: list[tuple[object, ...]] = []
    for rm in _ROW.finditer(data):
        num = _ROW_NUMBER.search(rm.group(1))
        row_no = int(num.group(1)) if num else len(rows) + 1
        if row_no > MAX_ROWS:
            raise _out_of_bounds("row", row_no)
        while len(rows) < row_no - 1:
            rows.append(())
        body = rm.group(2)
        rows.append(tuple(_row_cells(body, strings, dates, epoch)) if body else ())
    return rows


_KINDS: dict[bytes, tuple[bytes | None, int | None]] = {}
_COLUMNS: dict[bytes, int] = {}


def _row_cells(body: bytes, strings: list[str], dates: frozenset[int], epoch: datetime) -> list[object]:
    cells: list[object] = []
    found = _FAST_CELL.findall(body)
    if len(found) != body.count(b"<c ") + body.count(b"<c>") + body.count(b"<c/>"):
        found = []
        for m in _CELL_REF.finditer(body):
            ref = _REF.search(m.group(1))
            found.append((ref.group(1) if ref else b"", m.group(1), b"", m.group(2) or b""))
    for letters, attrs, plain, other in found:
        if letters:
            col = _COLUMNS.get(letters)
            if col is None:
                col = _COLUMNS[letters] = _column_index(letters)
        else:
            col = len(cells)
        if attrs:
            kind = _KINDS.get(attrs)
            if kind is None:
                kind = _KINDS[attrs] = _cell_kind(attrs)
            typ, style = kind
        else:
            typ = style = None
        if plain and typ == b"s":
            value: object = strings[int(plain)]
        elif plain and typ is None and (style is None or style not in dates):
            try:
                value = int(plain)
            except ValueError:
                value = _number(plain)
        else:
            value = _value(b"<v>" + plain + b"</v>" if plain else other, typ, style, strings, dates, epoch)
        if col == len(cells):
            cells.append(value)
        else:
            if col > len(cells):
                cells.extend([None] * (col - len(cells)))
                cells.append(value)
            else:
                cells[col] = value
    return cells


def _value(body: bytes | None, typ: bytes | None, style: int | None, strings: list[str],
           dates: frozenset[int], epoch: datetime) -> object:
    if not body:
        return None
    if typ == b"inlineStr":
        return "".join(_text(t.group(1) or b"") for t in _TEXT.finditer(body))
    vm = _VALUE.search(body)
    if vm is None:
        return None
    raw = vm.group(1)
    if typ == b"s":
        return strings[int(raw)]
    if typ in (b"str", b"e"):
        return _text(raw)
    if typ == b"b":
        return raw.strip() in (b"1", b"true")
    if typ == b"d":
        try:
            return datetime.fromisoformat(_text(raw))
        except ValueError:
            return _text(raw)  # not a date after all: the rules judge the text
    if style is not None and style in dates:
        serial = _number(raw)
        if not isinstance(serial, float) or serial < 0:
            return serial
        if epoch == _EPOCH_1900 and 0 < serial < 60:
            serial += 1  # Excel counts a 29 February 1900 that never was
        try:
            return epoch + timedelta(milliseconds=round(serial * 86_400_000))
        except (OverflowError, ValueError):
            return serial  # beyond any calendar: the number as written, for the rules to judge
    return int(raw) if _INT.fullmatch(raw) else _number(raw)


def _number(raw: bytes) -> float | str:
    """A cell's number; a cell marked as a number that holds something else keeps its text, so its row is judged
    by the rules (and quarantined) instead of the whole workbook failing."""
    try:
        return float(raw)
    except ValueError:
        return _text(raw)
