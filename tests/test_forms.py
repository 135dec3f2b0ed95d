"""The forms we hand out: the XLSForm converts with pyxform and uses the contract's names; the template checks input."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook

from rematch_pipeline.cli import main
from rematch_pipeline.contract import (
    CAPACITY_FIELDS,
    HOUSEHOLD_FIELDS,
    LANGUAGES,
    MEDICAL_NEEDS,
    MEMBER_FIELDS,
    OCCUPATIONS,
    RELATIONS,
)
from rematch_pipeline.forms import (
    LANGS,
    TEMPLATE_FILE,
    XLSFORM_FILE,
    capacity_template,
    export_forms,
    safe_text,
    xlsform_workbook,
)
from rematch_pipeline.ingest.readers import read_file
from tests import exports as x


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("forms")
    assert main(["forms", "export", str(out)]) == 0
    return out / XLSFORM_FILE, out / TEMPLATE_FILE


def _rows(path: Path, sheet: str) -> list[dict[str, object]]:
    ws = load_workbook(path)[sheet]
    rows = list(ws.iter_rows(values_only=True))
    return [dict(zip(rows[0], r, strict=False)) for r in rows[1:]]


def test_xlsform_converts_with_pyxform_without_warnings(exported: tuple[Path, Path]) -> None:
    from pyxform.xls2xform import convert

    result = convert(xlsform=str(exported[0]), validate=False)
    assert result.warnings == []
    xml = result.xform
    assert '<group ref="/rematch_household/members">' in xml and 'nodeset="/rematch_household/members"' in xml
    for lang in LANGS:
        assert f'<translation lang="{lang}"' in xml
    # Constraints of the contract become binds the collecting app enforces.
    assert "count-selected( . ) &gt;= 1" in xml or "count-selected(.) &gt;= 1" in xml
    assert "today()" in xml and "selected(" in xml and "position(..)" in xml


def test_xlsform_data_fields_are_exactly_the_contract_fields(exported: tuple[Path, Path]) -> None:
    survey = _rows(exported[0], "survey")
    data = [r["name"] for r in survey
            if r["type"] and not str(r["type"]).startswith(("begin", "end", "note", "start"))
            and r["type"] not in ("start", "end")]
    assert data == [*HOUSEHOLD_FIELDS, *MEMBER_FIELDS]
    repeat = [r["name"] for r in survey if r["type"] == "begin_repeat"]
    assert repeat == ["members"]
    for r in survey:
        if r["type"] and not str(r["type"]).startswith(("end", "start")) and r["type"] != "end":
            assert all(r[f"label::{lang}"] for lang in LANGS), r["name"]


def test_xlsform_choices_are_the_contract_lists(exported: tuple[Path, Path]) -> None:
    choices: dict[str, list[str]] = {}
    for r in _rows(exported[0], "choices"):
        choices.setdefault(str(r["list_name"]), []).append(str(r["name"]))
        assert all(r[f"label::{lang}"] for lang in LANGS)
    assert tuple(choices["languages"]) == LANGUAGES and tuple(choices["medical_needs"]) == MEDICAL_NEEDS
    assert tuple(choices["occupation"]) == OCCUPATIONS and tuple(choices["relation"]) == RELATIONS
    (settings,) = _rows(exported[0], "settings")
    assert settings["form_id"] == "rematch_household" and settings["default_language"] == "German (de)"


def test_capacity_template_has_dropdowns_checks_and_instructions(exported: tuple[Path, Path]) -> None:
    wb = load_workbook(exported[1])
    assert wb.sheetnames == ["capacity", "instructions"]
    ws = wb["capacity"]
    assert [c.value for c in ws[1]] == list(CAPACITY_FIELDS)
    by_col: dict[str, list[object]] = {}
    for dv in ws.data_validations.dataValidation:
        for rng in str(dv.sqref).split():
            col = CAPACITY_FIELDS[ord(rng[0]) - ord("A")] if rng[1].isdigit() else None
            if col:
                by_col.setdefault(col, []).append(dv)
    state = by_col["state"][0]
    assert state.type == "list" and "BY" in state.formula1 and "SH" in state.formula1
    assert by_col["settlement_type"][0].type == "list" and by_col["ukrainian_community"][0].type == "list"
    assert by_col["places_persons"][0].formula1 == "8" and by_col["units_1_room"][0].formula1 == "0"
    assert any("instructions" not in line for line in [c.value for c in wb["instructions"]["A"]])
    assert "offer_id" in " ".join(str(c.value) for c in wb["instructions"]["A"])


def test_filled_template_reads_back_through_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "filled.xlsx"
    capacity_template([x.offer("OF-1", ags="01002000", state="SH")], rows=10).save(path)
    batch = read_file(path)
    offer = batch.tables["capacity_offers"].iloc[0]
    assert (batch.kind, batch.format, offer["ags"], offer["valid_from"]) == ("capacity", "capacity_xlsx",
                                                                            "01002000", "2026-10-01")


def test_strings_that_look_like_formulas_are_written_as_text(tmp_path: Path) -> None:
    path = tmp_path / "t.xlsx"
    capacity_template([x.offer(contact_name="=HYPERLINK(\"http://evil\")", municipality_name="@SUM(A1)")],
                      rows=2).save(path)
    ws = load_workbook(path)["capacity"]
    cell = ws.cell(2, CAPACITY_FIELDS.index("contact_name") + 1)
    assert cell.data_type == "s" and cell.value == "=HYPERLINK(\"http://evil\")"
    for value in ("=1+1", "+1", "-2", "@A1", "\t=x"):
        assert safe_text(value) == "'" + value
    assert safe_text("RM-1") == "RM-1" and safe_text(3) == 3
    buf = io.StringIO()
    csv.writer(buf).writerow([safe_text("=cmd|' /C calc'!A0")])
    assert buf.getvalue().startswith("'=cmd")


def test_xlsform_writes_constraint_text_not_formulas() -> None:
    wb = xlsform_workbook()
    for row in wb["survey"].iter_rows():
        for cell in row:
            assert cell.data_type != "f"


def test_forms_export_writes_both_files(tmp_path: Path) -> None:
    form, template = export_forms(tmp_path / "out")
    assert form.is_file() and template.is_file()


def test_forms_export_gives_the_same_bytes_whenever_it_runs(exported: tuple[Path, Path], tmp_path: Path) -> None:
    # No stamp of the current time in the workbooks: the same software hands out the same files.
    import time_machine

    with time_machine.travel(datetime(2031, 5, 17, 13, 7, tzinfo=UTC), tick=False):
        assert main(["forms", "export", str(tmp_path)]) == 0
    for path in exported:
        assert (tmp_path / path.name).read_bytes() == path.read_bytes()
