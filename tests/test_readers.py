"""Readers: file kind by content, canonical all-string tables, Kobo quirks, capacity XLSX and CSV."""

from __future__ import annotations

import shutil
import zipfile
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from rematch_pipeline.contract import CAPACITY_FIELDS, HOUSEHOLD_FIELDS, MEMBER_FIELDS
from rematch_pipeline.ingest.readers import Batch, UnrecognisedFileError, read_file
from rematch_pipeline.scenario import ScenarioFiles, generate_scenario

MAIN_HEADER = ["case_id", "interview_date", "languages", "languages/uk", "languages/ru", "grp_needs/medical_needs",
               "grp_needs/medical_needs/none", "grp_needs/medical_needs/dialysis", "grp_prefs/weight_work",
               "_id", "_uuid", "_submission_time", "_validation_status", "_index"]
MEMBER_HEADER = ["relation", "sex", "birth_year", "_index", "_parent_table_name", "_parent_index",
                 "_submission__uuid"]


def write_xlsx(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    wb = Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


def kobo_file(path: Path, members: list[list[Any]], hxl: bool = False) -> Path:
    main: list[list[Any]] = [
        MAIN_HEADER,
        ["RM-1", "2026-11-01", "uk ru", 1, 1, "none", 1, 0, 3, 101, "uuid-a", "2026-11-02T10:15:00", None, 1],
        ["RM-2", "2026-11-03", "uk", 1, 0, "dialysis", 0, 1, 5, 102, "uuid-b", "2026-11-04T09:00:00", None, 2],
    ]
    if hxl:
        main.insert(1, ["#beneficiary+id", "#date", None, None, None, None, None, None, None, None, None, None,
                        None, None])
    return write_xlsx(path, {"Interview Re-Match": main, "members": [MEMBER_HEADER, *members]})


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> ScenarioFiles:
    return generate_scenario(tmp_path_factory.mktemp("scenario"), 120, 12, seed=9, hxl_row=True)


@pytest.fixture(scope="module")
def households(scenario: ScenarioFiles) -> Batch:
    return read_file(scenario.households_xlsx)


@pytest.fixture(scope="module")
def capacity(scenario: ScenarioFiles) -> Batch:
    return read_file(scenario.capacity_xlsx)


def test_reader_detects_kind_by_content_not_name(scenario: ScenarioFiles, tmp_path: Path) -> None:
    misnamed_households = shutil.copy(scenario.households_xlsx, tmp_path / "capacity_offers.csv")
    misnamed_capacity = shutil.copy(scenario.capacity_xlsx, tmp_path / "households_kobo.dat")
    assert read_file(Path(misnamed_households)).kind == "households"
    assert read_file(Path(misnamed_capacity)).kind == "capacity"


def test_household_batch_has_exactly_the_contract_columns(households: Batch) -> None:
    assert households.kind == "households"
    assert set(households.tables) == {"households", "members"}
    assert list(households.tables["households"].columns) == [*HOUSEHOLD_FIELDS, "_uuid", "_submission_time",
                                                             "source_sheet", "source_row"]
    assert list(households.tables["members"].columns) == ["case_id", "member_no", *MEMBER_FIELDS, "source_sheet",
                                                          "source_row"]
    assert households.notes == []


def test_all_values_are_strings_or_none(households: Batch, capacity: Batch) -> None:
    bookkeeping = {"source_row", "member_no"}
    for df in (*households.tables.values(), *capacity.tables.values()):
        for col in df.columns:
            if col in bookkeeping:
                assert df[col].dtype == "int64"
            else:
                assert all(v is None or isinstance(v, str) for v in df[col]), col


def test_group_paths_are_stripped_and_values_kept_as_written(households: Batch) -> None:
    first = households.tables["households"].iloc[0]
    assert first["case_id"] == "RM-2026-00001"
    assert first["medical_needs"] in {"none"} or set(first["medical_needs"].split()) <= {
        "dialysis", "oncology", "psychotherapy", "paediatric_specialist", "diabetes_care"}
    assert first["weight_work"] in {str(i) for i in range(6)}
    assert first["consent_matching"] in ("yes", "no")


def test_hxl_row_is_skipped(households: Batch) -> None:
    hh, members = households.tables["households"], households.tables["members"]
    assert not hh["case_id"].str.startswith("#").any()
    assert not members["relation"].str.startswith("#").any()
    assert len(hh) == 120
    # Header is row 1 and the HXL tags row 2, so the first household is row 3 of the sheet.
    assert hh["source_row"].iloc[0] == 3 and members["source_row"].iloc[0] == 3
    assert (hh["source_sheet"] == "rematch_household").all() and (members["source_sheet"] == "members").all()


def test_every_member_of_the_scenario_is_linked(households: Batch) -> None:
    members = households.tables["members"]
    assert members["case_id"].notna().all()
    assert set(members["case_id"]) == set(households.tables["households"]["case_id"])
    heads = members[members["relation"] == "head"]
    assert heads["member_no"].eq(1).all() and heads["case_id"].is_unique


def test_members_are_linked_by_submission_uuid(tmp_path: Path) -> None:
    # _index/_parent_index deliberately contradict the uuids: they are not stable across exports.
    path = kobo_file(tmp_path / "export.xlsx", [
        ["head", "female", 1988, 1, "rematch_household", 1, "uuid-b"],
        ["head", "female", 1990, 2, "rematch_household", 2, "uuid-a"],
        ["child", "male", 2016, 3, "rematch_household", 2, "uuid-b"],
    ])
    members = read_file(path).tables["members"]
    assert list(members["case_id"]) == ["RM-2", "RM-1", "RM-2"]
    assert list(members["member_no"]) == [1, 1, 2]
    assert list(members["birth_year"]) == ["1988", "1990", "2016"]
    assert list(members["source_row"]) == [2, 3, 4]


def test_member_without_parent_gets_no_case_id_and_a_note(tmp_path: Path) -> None:
    path = kobo_file(tmp_path / "export.xlsx", [
        ["head", "female", 1990, 1, "rematch_household", 1, "uuid-a"],
        ["head", "male", 1970, 2, "rematch_household", 9, "uuid-gone"],
    ])
    batch = read_file(path)
    assert list(batch.tables["members"]["case_id"]) == ["RM-1", None]
    assert any("without a household" in n and "row 3" in n for n in batch.notes)


def test_select_multiple_is_rebuilt_from_option_columns_when_the_main_column_is_missing(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "export.xlsx", {
        "main": [["case_id", "languages/uk", "languages/ru", "languages/en", "grp_needs/medical_needs/none", "_uuid"],
                 ["RM-1", 1, 0, 1, 1, "u1"], ["RM-2", "0", "1", "0", 1, "u2"]],
        "members": [MEMBER_HEADER, ["head", "female", 1990, 1, "rematch_household", 1, "u1"]],
    })
    hh = read_file(path).tables["households"]
    assert list(hh["languages"]) == ["uk en", "ru"]
    assert list(hh["medical_needs"]) == ["none", "none"]


def test_kobo_group_paths_and_system_columns_map_to_contract_names(tmp_path: Path) -> None:
    batch = read_file(kobo_file(tmp_path / "export.xlsx", [["head", "female", 1990, 1, "rematch_household", 1,
                                                            "uuid-a"]]))
    hh = batch.tables["households"]
    assert list(hh["medical_needs"]) == ["none", "dialysis"]
    assert list(hh["weight_work"]) == ["3", "5"]
    assert list(hh["_uuid"]) == ["uuid-a", "uuid-b"]
    assert list(hh["_submission_time"]) == ["2026-11-02T10:15:00+00:00", "2026-11-04T09:00:00+00:00"]  # UTC, as Kobo
    assert list(hh["source_sheet"]) == ["Interview Re-Match"] * 2 and list(hh["source_row"]) == [2, 3]
    assert hh["pets"].isna().all()  # missing in this export: left empty, and said so
    assert any("missing column(s)" in n and "pets" in n for n in batch.notes)


def test_hxl_row_is_skipped_in_a_hand_made_export(tmp_path: Path) -> None:
    batch = read_file(kobo_file(tmp_path / "export.xlsx", [["head", "female", 1990, 1, "rematch_household", 1,
                                                            "uuid-a"]], hxl=True))
    hh = batch.tables["households"]
    assert list(hh["case_id"]) == ["RM-1", "RM-2"] and list(hh["source_row"]) == [3, 4]


def test_capacity_xlsx_keeps_ags_text_and_gives_iso_dates(capacity: Batch) -> None:
    offers = capacity.tables["capacity_offers"]
    assert capacity.kind == "capacity" and capacity.notes == []
    assert list(offers.columns) == [*CAPACITY_FIELDS, "source_sheet", "source_row"]
    kiel = offers[offers["municipality_name"] == "Kiel"].iloc[0]
    assert kiel["ags"] == "01002000" and kiel["offer_id"] == "OF-01002000-1"
    assert date.fromisoformat(kiel["valid_from"]) <= date(2026, 11, 23)
    assert kiel["places_persons"].isdigit() and kiel["source_sheet"] == "capacity"
    assert list(offers["source_row"]) == list(range(2, len(offers) + 2))


def test_capacity_csv_with_semicolons_and_german_dates(tmp_path: Path) -> None:
    header = ";".join(CAPACITY_FIELDS)
    row = ("OF-01002000-1;01002000;Kiel;SH;big_city;01.10.2026;31.3.2027;40;2;4;3;1;1;2;3;4;5;6;7;"
           "psychotherapy diabetes_care;it health_care;large;Anna Schmidt;integration.kiel@example.org")
    bad = row.replace("01.10.2026", "31.02.2026").replace("OF-01002000-1", "OF-2")
    path = tmp_path / "kiel.txt"
    path.write_bytes(("\ufeff" + header + "\r\n" + row + "\r\n\r\n" + bad + "\r\n").encode("utf-8"))
    batch = read_file(path)
    offers = batch.tables["capacity_offers"]
    assert batch.kind == "capacity"
    assert list(offers["ags"]) == ["01002000", "01002000"]
    assert list(offers["valid_from"]) == ["2026-10-01", "31.02.2026"]  # an impossible date stays as written
    assert list(offers["valid_until"]) == ["2027-03-31", "2027-03-31"]
    assert list(offers["source_row"]) == [2, 4]
    assert offers["medical_services"].iloc[0] == "psychotherapy diabetes_care"


def test_capacity_csv_with_commas_and_iso_dates_in_windows_1252(tmp_path: Path) -> None:
    row = ["OF-09162000-1", "09162000", "München", "BY", "big_city", "2026-10-01", "2027-03-31", "40", "2", "4",
           "3", "1", "1", "2", "3", "4", "5", "6", "7", "oncology", "it", "large", "Jörg Weber", "m@example.org"]
    path = tmp_path / "muenchen.csv"
    path.write_bytes((",".join(CAPACITY_FIELDS) + "\n" + ",".join(row) + "\n").encode("cp1252"))
    batch = read_file(path)
    offer = batch.tables["capacity_offers"].iloc[0]
    assert offer["municipality_name"] == "München" and offer["contact_name"] == "Jörg Weber"
    assert offer["valid_from"] == "2026-10-01" and offer["ags"] == "09162000"
    assert any("Windows-1252" in n for n in batch.notes)


def test_capacity_header_below_a_title_row_is_found_and_numeric_ags_is_repaired(tmp_path: Path) -> None:
    row = ["OF-1", 1002000, "Kiel", "SH", "big_city", datetime(2026, 10, 1), "2026-12-31T00:00:00", 40.0]
    path = write_xlsx(tmp_path / "template.xlsx", {"Tabelle1": [["Kapazitätsmeldung Kiel"], [], list(CAPACITY_FIELDS),
                                                                row]})
    batch = read_file(path)
    offer = batch.tables["capacity_offers"].iloc[0]
    assert offer["ags"] == "01002000"  # Excel dropped the zero of a number; Kiel is in SH, so it comes back
    assert offer["valid_from"] == "2026-10-01" and offer["valid_until"] == "2026-12-31"
    assert offer["places_persons"] == "40" and offer["source_row"] == 4
    assert any("ags stored as a number" in n for n in batch.notes)
    assert any("given 8 digits again" in n for n in batch.notes)


def test_unrecognised_file_names_file_and_expectation(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("name,city\nOlena,Kiel\n", encoding="utf-8")
    sheet = write_xlsx(tmp_path / "other.xlsx", {"Sheet": [["name", "city"], ["Olena", "Kiel"]]})
    archive = tmp_path / "odk.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("form.csv", "KEY\n")
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00")
    for path in (text, sheet, archive, binary):
        with pytest.raises(UnrecognisedFileError) as err:
            read_file(path)
        message = str(err.value)
        assert str(path) in message
        assert "case_id" in message and "offer_id" in message
    assert issubclass(UnrecognisedFileError, ValueError)


def test_kobo_csv_is_read_as_households_without_members_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "kobo.csv"
    path.write_text('"case_id";"interview_date"\r\n"RM-1";"2026-11-01"\r\n', encoding="utf-8")
    batch = read_file(path)
    assert (batch.kind, batch.format, set(batch.tables)) == ("households", "kobo_csv", {"households"})
    assert list(batch.tables["households"]["case_id"]) == ["RM-1"]
    assert any("can only update households already known" in n for n in batch.notes)


def test_workbook_with_households_and_capacity_is_refused(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "both.xlsx", {"main": [["case_id"], ["RM-1"]],
                                               "capacity": [list(CAPACITY_FIELDS)]})
    with pytest.raises(UnrecognisedFileError, match="separate files"):
        read_file(path)
