"""Readers for Kobo CSV, ODK Central ZIP, decisions CSV, encodings, hostile files, and the fast XLSX path."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pandas.testing as pd_testing
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from rematch_pipeline.canonical import canonical_value
from rematch_pipeline.contract import HOUSEHOLD_FIELDS, MEMBER_FIELDS
from rematch_pipeline.ingest import xlsx
from rematch_pipeline.ingest.readers import UnrecognisedFileError, read_file, repaired_ags
from rematch_pipeline.ingest.safety import Limits, RefusedFileError
from tests import exports as x

A, B = x.household("RM-A"), x.household("RM-B", languages="de", medical_needs="dialysis oncology")
MEMBERS = {"uuid-RM-A": x.family("head", "child"), "uuid-RM-B": x.family("head")}


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_kobo_csv_semicolon_quoted_crlf_bom_with_group_paths(tmp_path: Path) -> None:
    data = x.kobo_csv([A, B])
    assert data.startswith(b"\xef\xbb\xbf") and b'"grp_needs/medical_needs";' in data and b"\r\n" in data
    batch = read_file(write(tmp_path, "export.bin", data))
    hh = batch.tables["households"]
    assert (batch.kind, batch.format) == ("households", "kobo_csv")
    assert list(hh["case_id"]) == ["RM-A", "RM-B"]
    assert list(hh["medical_needs"]) == ["none", "dialysis oncology"]
    assert list(hh["_uuid"]) == ["uuid-RM-A", "uuid-RM-B"] and list(hh["source_row"]) == [2, 3]
    assert not any("unknown column" in n for n in batch.notes)  # system and option columns are known


def test_kobo_csv_select_multiple_rebuilt_from_option_columns(tmp_path: Path) -> None:
    header = '"case_id";"languages/uk";"languages/de";"grp_needs/medical_needs/dialysis"\r\n'
    rows = '"RM-A";"1";"1";"0"\r\n"RM-B";"0";"";"1"\r\n'
    hh = read_file(write(tmp_path, "k.csv", (header + rows).encode())).tables["households"]
    assert list(hh["languages"]) == ["uk de", None] and list(hh["medical_needs"]) == [None, "dialysis"]


def test_odk_central_zip_links_members_by_parent_key(tmp_path: Path) -> None:
    batch = read_file(write(tmp_path, "odk.zip", x.odk_zip([A, B], MEMBERS)))
    hh, members = batch.tables["households"], batch.tables["members"]
    assert (batch.kind, batch.format) == ("households", "odk_central_zip")
    assert list(hh["case_id"]) == ["RM-A", "RM-B"] and list(hh["pets"]) == ["none", "none"]
    assert list(hh["_uuid"]) == ["uuid:uuid-RM-A", "uuid:uuid-RM-B"]
    assert list(members["case_id"]) == ["RM-A", "RM-A", "RM-B"] and list(members["member_no"]) == [1, 2, 1]
    assert list(members["relation"]) == ["head", "child", "head"]
    assert set(members["source_sheet"]) == {"rematch_household-members.csv"}
    assert not any("unknown column" in n for n in batch.notes)


def test_odk_zip_without_the_members_csv_says_which_file_is_missing(tmp_path: Path) -> None:
    full = zipfile.ZipFile(io.BytesIO(x.odk_zip([A], {"uuid-RM-A": x.family("head")})))
    only_main = x.zip_bytes({"rematch_household.csv": full.read("rematch_household.csv")})
    batch = read_file(write(tmp_path, "odk.zip", only_main))
    assert batch.tables["members"].empty
    assert any("'<form id>-members.csv'" in n for n in batch.notes)


def test_odk_zip_without_household_csv_is_unrecognised(tmp_path: Path) -> None:
    path = write(tmp_path, "odk.zip", x.zip_bytes({"form.csv": b"KEY\nuuid:1\n"}))
    with pytest.raises(UnrecognisedFileError, match="without a main CSV"):
        read_file(path)


def test_decisions_csv_is_read(tmp_path: Path) -> None:
    data = x.decisions_csv([x.decision("RM-A", reason="Familie in der Nähe")])
    batch = read_file(write(tmp_path, "d.csv", data))
    assert (batch.kind, batch.format) == ("decisions", "decisions_csv")
    row = batch.tables["decisions"].iloc[0]
    assert (row["case_id"], row["decision"], row["reason"], row["source_row"]) == (
        "RM-A", "accept", "Familie in der Nähe", 2)


@pytest.mark.parametrize(("ags", "state", "expected"), [
    ("1002000", "SH", "01002000"),  # Kiel lost its zero
    ("1002000", None, "01002000"),
    ("9162000", "by", "09162000"),
    ("1002000", "BY", "1002000"),  # the state names another Land: ambiguous, left for the validator
    ("162000", "BY", "162000"),  # two digits missing cannot be a lost leading zero
    ("01002000", "SH", "01002000"),
    ("0100200", "SH", "0100200"),
])
def test_ags_repair_only_where_unambiguous(ags: str, state: str | None, expected: str) -> None:
    assert repaired_ags(ags, state) == expected


def test_utf16_csv_is_detected(tmp_path: Path) -> None:
    batch = read_file(write(tmp_path, "u16.csv", x.capacity_csv([x.offer()]).decode().encode("utf-16")))
    assert batch.tables["capacity_offers"]["municipality_name"].iloc[0] == "München"
    assert any("UTF-16" in n for n in batch.notes)


def test_windows_1251_is_refused_not_mangled(tmp_path: Path) -> None:
    data = x.capacity_csv([x.offer(municipality_name="Kyiv", contact_name="Олена Київська")], encoding="cp1251")
    with pytest.raises(RefusedFileError) as err:
        read_file(write(tmp_path, "c.csv", data))
    assert err.value.rule == "encoding_not_supported" and "UTF-8" in str(err.value)


def test_zip_with_path_traversal_is_refused(tmp_path: Path) -> None:
    for name in ("../x.csv", "a/../../x.csv", "..\\..\\x.csv", "C:/x.csv"):
        path = write(tmp_path, "evil.zip", x.zip_bytes({name: b"case_id\n"}))
        with pytest.raises(RefusedFileError) as err:
            read_file(path)
        assert err.value.rule == "zip_path_traversal" and repr(name) in str(err.value)


def test_zip_symlink_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link.csv")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(RefusedFileError, match="symbolic link"):
        read_file(write(tmp_path, "link.zip", buf.getvalue()))


def test_zip_compression_ratio_above_the_bound_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "bomb.zip", x.zip_bytes({"a.csv": b"case_id\n" + b" " * (4 * 1024 * 1024)}))
    with pytest.raises(RefusedFileError) as err:
        read_file(path)
    assert err.value.rule == "zip_compression_ratio"
    # The bound is configurable: a generous one lets the same archive through to the content check.
    with pytest.raises(UnrecognisedFileError):
        read_file(path, Limits(max_zip_ratio=1e9))


def test_file_above_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "c.csv", x.capacity_csv([x.offer()]))
    with pytest.raises(RefusedFileError, match="larger than the limit") as err:
        read_file(path, Limits(max_file_bytes=100))
    assert err.value.rule == "file_too_large"
    assert read_file(path, Limits(max_file_bytes=10_000)).kind == "capacity"


def test_xlsm_content_type_counts_as_macros(tmp_path: Path) -> None:
    src = x.capacity_xlsx([x.offer()])
    buf = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(src)) as zin, zipfile.ZipFile(buf, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename == "[Content_Types].xml":
                data = data.replace(b"sheet.main+xml", b"sheet.macroEnabled.main+xml")
            zout.writestr(info, data)
    with pytest.raises(RefusedFileError, match="macros"):
        read_file(write(tmp_path, "m.xlsx", buf.getvalue()))


def test_unrecognised_error_names_the_file_and_what_was_expected(tmp_path: Path) -> None:
    with pytest.raises(UnrecognisedFileError) as err:
        read_file(write(tmp_path, "x.csv", b"a;b\n1;2\n"), name="upload-17.csv")
    assert "upload-17.csv" in str(err.value) and "ODK Central ZIP" in str(err.value)
    assert "decisions CSV" in str(err.value)


# --- property-based: generated exports read back as written ------------------------------------------------------

_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=30).filter(
    lambda s: s.strip() == s and not s.startswith("#"))
_ID = st.from_regex(r"RM-[0-9]{4}-[0-9]{5}", fullmatch=True)
_HOUSEHOLD = st.fixed_dictionaries({
    "case_id": _ID, "interview_date": st.dates(date(2022, 1, 1), date(2026, 11, 1)).map(date.isoformat),
    "languages": st.lists(st.sampled_from(x.OPTIONS["languages"]), min_size=1, unique=True).map(" ".join),
    "medical_needs": st.lists(st.sampled_from(x.OPTIONS["medical_needs"][:-1]), min_size=1, unique=True).map(
        " ".join),
    "weight_work": st.integers(0, 5).map(str), "notes": _TEXT, "interview_location": _TEXT,
    "_submission_time": st.datetimes(datetime(2022, 1, 1), datetime(2026, 11, 1)).map(
        lambda d: d.isoformat(timespec="seconds")),
})


def _households(draw: Any) -> list[dict[str, Any]]:
    rows = draw(st.lists(_HOUSEHOLD, min_size=1, max_size=6, unique_by=lambda h: h["case_id"]))
    return [x.household(**{**r, "_uuid": f"u-{r['case_id']}"}) for r in rows]


@st.composite
def _export(draw: Any) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    households = _households(draw)
    members = {h["_uuid"]: [x.member(draw(st.sampled_from(["head", "spouse", "child"])),
                                     str(draw(st.integers(1900, 2026))), occupation=draw(st.sampled_from(
                                         ["it", "none", "health_care"])))
                            for _ in range(draw(st.integers(0, 4)))] for h in households}
    return households, members


def _check_households(read: Any, households: list[dict[str, Any]]) -> None:
    for name in ("case_id", "interview_date", "languages", "medical_needs", "weight_work", "notes",
                 "interview_location", "_submission_time"):
        # What was exported, in the one canonical form (a submission time gets its UTC offset written out).
        assert list(read[name]) == [canonical_value(h[name], name) for h in households], name


def _check_members(read: Any, households: list[dict[str, Any]], members: dict[str, list[dict[str, Any]]]) -> None:
    expected = [(h["case_id"], i, m["relation"], m["birth_year"], m["occupation"])
                for h in households for i, m in enumerate(members[h["_uuid"]], start=1)]
    got = list(zip(read["case_id"], read["member_no"], read["relation"], read["birth_year"], read["occupation"],
                   strict=True))
    assert sorted(got) == sorted(expected)


_PROPERTY = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@_PROPERTY
@given(_export())
def test_kobo_xlsx_reads_back_what_was_exported(tmp_path: Path, export: Any) -> None:
    households, members = export
    batch = read_file(write(tmp_path, "k.xlsx", x.kobo_xlsx(households, members)))
    _check_households(batch.tables["households"], households)
    _check_members(batch.tables["members"], households, members)


@_PROPERTY
@given(_export())
def test_odk_zip_reads_back_what_was_exported(tmp_path: Path, export: Any) -> None:
    households, members = export
    batch = read_file(write(tmp_path, "o.zip", x.odk_zip(households, members)))
    _check_households(batch.tables["households"], households)
    _check_members(batch.tables["members"], households, members)


@_PROPERTY
@given(_export(), st.booleans(), st.booleans())
def test_kobo_csv_reads_back_what_was_exported(tmp_path: Path, export: Any, options: bool, bom: bool) -> None:
    households, _ = export
    batch = read_file(write(tmp_path, "k.csv", x.kobo_csv(households, option_columns=options, bom=bom)))
    _check_households(batch.tables["households"], households)


_CELL = st.one_of(st.none(), st.integers(-10**12, 10**12), st.floats(allow_nan=False, allow_infinity=False,
                                                                      width=32),
                  st.booleans(), _TEXT, st.dates(date(1901, 1, 1), date(2100, 1, 1)),
                  st.datetimes(datetime(1901, 1, 1), datetime(2100, 1, 1)).map(lambda d: d.replace(microsecond=0)))


@_PROPERTY
@given(st.lists(st.lists(_CELL, min_size=1, max_size=6), min_size=1, max_size=8))
def test_fast_xlsx_reader_gives_what_openpyxl_gives(tmp_path: Path, rows: list[list[Any]]) -> None:
    wb = Workbook()
    ws = wb.active
    ws.title = "data"
    for r, row in enumerate(rows, start=2):  # row 1 left empty: numbering must hold
        for c, value in enumerate(row, start=1):
            if value is not None:
                ws.cell(r, c, value)
                if isinstance(value, str):
                    ws.cell(r, c).data_type = "s"
    path = tmp_path / "w.xlsx"
    wb.save(path)
    with zipfile.ZipFile(path) as zf:
        ((title, fast),) = xlsx.read_sheets(zf)
    ref = load_workbook(path, read_only=True, data_only=True)["data"]
    ref.reset_dimensions()
    expected = [tuple(r) for r in ref.iter_rows(values_only=True)]

    def trim(r: tuple[Any, ...]) -> tuple[Any, ...]:
        out = list(r)
        while out and out[-1] is None:
            out.pop()
        return tuple(out)

    assert title == "data"
    assert [trim(r) for r in fast] == [trim(r) for r in expected]


def test_households_columns_are_the_contract_fields() -> None:
    assert "case_id" in HOUSEHOLD_FIELDS and "relation" in MEMBER_FIELDS


@pytest.mark.parametrize(("fmt", "export"), [
    ("kobo_xlsx", lambda hh: x.kobo_xlsx(hh, MEMBERS)), ("kobo_csv", lambda hh: x.kobo_csv(hh)),
    ("odk_central_zip", lambda hh: x.odk_zip(hh, MEMBERS))])
def test_an_export_without_the_optional_contact_name_reads_as_one_with_the_column_left_empty(
        tmp_path: Path, fmt: str, export: Any) -> None:
    # Rule: contract.HOUSEHOLD_OPTIONAL_FIELDS: the shared contract's senders do not know contact_name; its absence
    # means "no name", with no note and no finding.
    def read(kind: str, households: list[dict[str, Any]]) -> Any:
        (tmp_path / kind).mkdir()
        return read_file(write(tmp_path / kind, "export.bin", export(households)))  # one name: the same sheet names

    without = read("without", [A, B])
    empty = read("empty", [{**A, "contact_name": None}, {**B, "contact_name": None}])
    named = read("named", [{**A, "contact_name": "Olena Kovalenko"}, B])
    assert b"contact_name" not in export([A, B]) and without.format == fmt
    assert without.notes == empty.notes and not any("contact_name" in n for n in without.notes)
    for table in without.tables:
        pd_testing.assert_frame_equal(without.tables[table], empty.tables[table])
    assert list(without.tables["households"]["contact_name"]) == [None, None]
    assert list(named.tables["households"]["contact_name"]) == ["Olena Kovalenko", None]
