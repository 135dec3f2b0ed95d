"""Tests of the row-level data-contract rules (GX suites in expectations/) and of their Data Docs output."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from html import escape as html_escape
from pathlib import Path

import pandas as pd
import pytest

from rematch_pipeline import contract
from rematch_pipeline.clock import ManualClock
from rematch_pipeline.config import Settings, load_settings
from rematch_pipeline.validation import (
    TABLES,
    RowError,
    TableValidation,
    load_suite_dict,
    validate_batch,
    validate_table,
)
from tests import exports as x

TODAY = date(2026, 6, 1)


# Canonical rows (as the reader hands them on), built from the export rows of tests.exports with dates before TODAY.
def household(case_id: str = "RM-2026-00001", **overrides: str | None) -> dict[str, str | None]:
    row = x.canonical(x.household(case_id, interview_date="2026-03-15", notes="<b>not markup</b>"))
    row.update(overrides)
    return row


def member(case_id: str = "RM-2026-00001", member_no: str = "1", **overrides: str | None) -> dict[str, str | None]:
    row = x.canonical({**x.member(), "case_id": case_id, "member_no": member_no})
    row.update(overrides)
    return row


def offer(offer_id: str = "OF-1", **overrides: str | None) -> dict[str, str | None]:
    row = x.canonical(x.offer(offer_id, valid_from="2026-01-01", valid_until="2026-12-31"))
    row.update(overrides)
    return row


def family(case_id: str, *relations: str) -> list[dict[str, str | None]]:
    return [member(case_id, str(i + 1), relation=r, birth_year=str(1980 + 5 * i)) for i, r in enumerate(relations)]


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # One GX project for the module keeps the suite; each test still validates fresh frames, judged on TODAY.
    return Settings(home=tmp_path_factory.mktemp("rematch"), database_url="sqlite://", clock=ManualClock(TODAY))


def check(table: str, rows: list[dict], settings: Settings, **kwargs) -> TableValidation:
    return validate_table(table, pd.DataFrame(rows), batch_id="test", settings=settings, **kwargs)


def rules_by_row(tv: TableValidation) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {}
    for e in tv.row_errors:
        out.setdefault(e.row_index, set()).add(e.rule)
    return out


def errors_of(tv: TableValidation, row: int) -> list[RowError]:
    return [e for e in tv.row_errors if e.row_index == row]


def test_ags_must_be_eight_digits(settings: Settings) -> None:
    tv = check("capacity_offers", [offer("OF-1"), offer("OF-2", ags="9162000"), offer("OF-3", ags="0916200A")],
               settings)
    assert tv.invalid_rows == {1, 2}
    (err,) = [e for e in errors_of(tv, 1) if e.rule == "ags_eight_digits"]
    assert err.field == "ags"
    assert "leading zero" in err.message


def test_ags_must_start_with_a_land_number(settings: Settings) -> None:
    tv = check("capacity_offers", [offer("OF-1", ags="17162000", state="BY")], settings)
    assert "ags_valid_land" in rules_by_row(tv)[0]


def test_state_must_match_ags_prefix(settings: Settings) -> None:
    rows = [offer("OF-1", ags="01001000", state="SH"), offer("OF-2", ags="01001000", state="BY")]
    tv = check("capacity_offers", rows, settings)
    assert tv.invalid_rows == {1}
    assert [(e.field, e.rule) for e in tv.row_errors] == [("state", "state_matches_ags")]


def test_state_must_be_a_land_code(settings: Settings) -> None:
    tv = check("capacity_offers", [offer("OF-1", state="Bayern")], settings)
    # An unknown code is reported as such, not a second time as a mismatch with the AGS.
    assert rules_by_row(tv) == {0: {"state_allowed_value"}}


def test_household_needs_exactly_one_head(settings: Settings) -> None:
    tables = {
        "households": pd.DataFrame([household("A"), household("B"), household("C")]),
        "members": pd.DataFrame(family("A", "head", "head") + family("B", "spouse", "child") + family("C", "head")),
    }
    result = validate_batch(tables, batch_id="heads", settings=settings)
    households, members = result["households"], result["members"]
    assert households.invalid_rows == {0, 1}
    assert "household_one_head" in rules_by_row(households)[0]
    assert "household_one_head" in rules_by_row(households)[1]
    assert members.invalid_rows == {0, 1, 2, 3}
    assert all(e.field == "relation" for e in members.row_errors if e.rule == "household_one_head")
    assert households.statistics["valid_rows"] == 1 and members.statistics["valid_rows"] == 1


def test_household_needs_at_least_one_member(settings: Settings) -> None:
    tables = {"households": pd.DataFrame([household("A"), household("B")]),
              "members": pd.DataFrame(family("A", "head"))}
    result = validate_batch(tables, batch_id="empty", settings=settings)
    # Reported once as "no members", not again as "no head".
    assert rules_by_row(result["households"]) == {1: {"household_has_members"}}
    assert result["members"].success


def test_member_must_belong_to_a_household(settings: Settings) -> None:
    tables = {"households": pd.DataFrame([household("A")]),
              "members": pd.DataFrame(family("A", "head") + family("ZZ", "head"))}
    members = validate_batch(tables, batch_id="orphans", settings=settings)["members"]
    assert rules_by_row(members) == {1: {"member_has_household"}}
    assert members.row_errors[0].field == "case_id"


def test_cross_table_rules_are_skipped_without_the_related_table(settings: Settings) -> None:
    assert check("households", [household("A")], settings).success
    assert check("members", family("A", "head"), settings).success


def test_invalid_member_makes_its_household_and_housemates_invalid(settings: Settings) -> None:
    members = family("A", "head", "child") + family("B", "head", "child")
    members[1]["birth_year"] = "1850"
    tables = {"households": pd.DataFrame([household("A"), household("B")]), "members": pd.DataFrame(members)}
    result = validate_batch(tables, batch_id="propagate", settings=settings)
    assert result["households"].invalid_rows == {0}
    assert rules_by_row(result["households"])[0] == {"household_has_invalid_members"}
    assert result["households"].row_errors[0].message.startswith("household has invalid members")
    assert result["members"].invalid_rows == {0, 1}
    assert rules_by_row(result["members"]) == {0: {"member_of_invalid_household"},
                                               1: {"birth_year_1900_to_current_year"}}
    assert not result["households"].success and not result["members"].success


def test_members_of_an_invalid_household_are_invalid(settings: Settings) -> None:
    tables = {"households": pd.DataFrame([household("A", pets="hamster"), household("B")]),
              "members": pd.DataFrame(family("A", "head", "child") + family("B", "head"))}
    result = validate_batch(tables, batch_id="propagate2", settings=settings)
    assert result["households"].invalid_rows == {0}
    assert result["members"].invalid_rows == {0, 1}
    assert {e.rule for e in result["members"].row_errors} == {"member_of_invalid_household"}
    # The reason names the household, so whoever fixes the file finds the row that holds them back.
    assert all("household A is invalid" in e.message for e in result["members"].row_errors)


def test_wheelchair_units_cannot_exceed_units(settings: Settings) -> None:
    tv = check("capacity_offers", [offer("OF-1", units_wheelchair="4"), offer("OF-2", units_wheelchair="5")], settings)
    assert tv.invalid_rows == {1}
    assert [(e.field, e.rule) for e in tv.row_errors] == [("units_wheelchair", "wheelchair_units_within_units")]


def test_pet_units_cannot_exceed_units(settings: Settings) -> None:
    tv = check("capacity_offers", [offer("OF-1", units_pets_allowed="9")], settings)
    assert [(e.field, e.rule) for e in tv.row_errors] == [("units_pets_allowed", "pet_units_within_units")]


def test_places_persons_at_least_eight(settings: Settings) -> None:
    rows = [offer("OF-1", places_persons="8"), offer("OF-2", places_persons="7"), offer("OF-3", places_persons="8.0")]
    tv = check("capacity_offers", rows, settings)
    assert rules_by_row(tv) == {1: {"places_persons_at_least_8"}, 2: {"places_persons_whole_number"}}


def test_capacity_counts_cannot_be_negative(settings: Settings) -> None:
    tv = check("capacity_offers", [offer("OF-1", kita_u3="-1"), offer("OF-2", school_primary="0")], settings)
    assert rules_by_row(tv) == {0: {"kita_u3_not_negative"}}


def test_numbers_parsed_by_a_reader_are_checked_as_text(settings: Settings) -> None:
    df = pd.DataFrame([offer("OF-1"), offer("OF-2")])
    df["places_persons"] = [12, 5]
    df["kita_u3"] = [1.0, 2.5]  # an integer column with an empty cell arrives as floats
    df["school_primary"] = [None, 3.0]
    tv = validate_table("capacity_offers", df, batch_id="numbers", settings=settings)
    assert rules_by_row(tv) == {0: {"school_primary_required"},
                                1: {"places_persons_at_least_8", "kita_u3_whole_number"}}


def test_valid_from_not_after_valid_until(settings: Settings) -> None:
    rows = [offer("OF-1", valid_from="2026-07-01", valid_until="2026-06-30"),
            offer("OF-2", valid_from="2026-07-01", valid_until="2026-07-01")]
    tv = check("capacity_offers", rows, settings)
    assert rules_by_row(tv) == {0: {"valid_from_not_after_valid_until"}}


def test_dates_must_be_iso_and_real(settings: Settings) -> None:
    rows = [offer("OF-1", valid_from="01.03.2026"), offer("OF-2", valid_until="2026-02-30")]
    tv = check("capacity_offers", rows, settings)
    assert rules_by_row(tv) == {0: {"valid_from_format"}, 1: {"valid_until_real_date"}}


def test_interview_date_not_in_future(settings: Settings) -> None:
    rows = [household("A", interview_date="2026-06-01"), household("B", interview_date="2026-06-02")]
    tv = check("households", rows, settings)
    assert rules_by_row(tv) == {1: {"interview_date_not_in_future"}}
    assert tv.row_errors[0].field == "interview_date"


def test_weights_between_zero_and_five(settings: Settings) -> None:
    rows = [household("A", weight_work="0"), household("B", weight_work="6"), household("C", weight_culture="high")]
    tv = check("households", rows, settings)
    assert rules_by_row(tv) == {1: {"weight_work_0_to_5"}, 2: {"weight_culture_whole_number"}}


def test_birth_year_between_1900_and_current_year(settings: Settings) -> None:
    rows = [member("A", "1", birth_year="2026"), member("B", "1", birth_year="2027"),
            member("C", "1", birth_year="1899"), member("D", "1", birth_year="1900")]
    tv = check("members", rows, settings)
    assert rules_by_row(tv) == {1: {"birth_year_1900_to_current_year"}, 2: {"birth_year_1900_to_current_year"}}


def test_select_multiple_uses_space_separated_allowed_tokens(settings: Settings) -> None:
    rows = [household("A", languages="uk de other"), household("B", languages="uk,de"),
            household("C", languages="uk klingon"), household("D", medical_needs="dialysis psychotherapy"),
            household("E", medical_needs="none dialysis"), household("F", medical_needs="cardiology")]
    tv = check("households", rows, settings)
    assert rules_by_row(tv) == {
        1: {"languages_allowed_values"}, 2: {"languages_allowed_values"},
        4: {"medical_needs_none_excludes_others"}, 5: {"medical_needs_allowed_values"},
    }


def test_offer_select_multiple_columns_are_optional(settings: Settings) -> None:
    rows = [offer("OF-1", medical_services=None, job_sectors_shortage=""), offer("OF-2", job_sectors_shortage="it x")]
    assert rules_by_row(check("capacity_offers", rows, settings)) == {1: {"job_sectors_shortage_allowed_values"}}


def test_select_one_allowed_values(settings: Settings) -> None:
    tv = check("members", [member("A", sex="f"), member("B", occupation="pilot")], settings)
    assert rules_by_row(tv) == {0: {"sex_allowed_value"}, 1: {"occupation_allowed_value"}}


def test_required_fields_must_not_be_blank(settings: Settings) -> None:
    rows = [household(None), household("B", german_level="  "), household("C", consent_matching="")]
    tv = check("households", rows, settings)
    assert rules_by_row(tv) == {0: {"case_id_required"}, 1: {"german_level_required"},
                                2: {"consent_matching_required"}}


def test_case_id_must_be_unique_plain_and_of_one_script(settings: Settings) -> None:
    rows = [household("A"), household("A"), household("B\u200b"), household("C\u0421"), household("D\tE")]
    tv = check("households", rows, settings)
    assert rules_by_row(tv) == {0: {"case_id_unique"}, 1: {"case_id_unique"}, 2: {"case_id_plain_characters"},
                                3: {"case_id_one_script"}, 4: {"case_id_plain_characters"}}


def test_offer_id_must_be_unique(settings: Settings) -> None:
    tv = check("capacity_offers", [offer("OF-1"), offer("OF-1"), offer("OF-2")], settings)
    assert rules_by_row(tv) == {0: {"offer_id_unique"}, 1: {"offer_id_unique"}}


def test_member_no_unique_within_household(settings: Settings) -> None:
    rows = [member("A", "1"), member("A", "1", relation="child"), member("B", "1")]
    tv = check("members", rows, settings)
    assert rules_by_row(tv)[1] >= {"member_no_unique_in_household"}
    assert 2 not in tv.invalid_rows


def test_ties_ags_is_optional_but_eight_digits(settings: Settings) -> None:
    rows = [household("A", ties_ags=None), household("B", ties_ags="09162000"), household("C", ties_ags="9162000")]
    assert rules_by_row(check("households", rows, settings)) == {2: {"ties_ags_eight_digits"}}


def test_missing_contract_column_fails_every_row(settings: Settings) -> None:
    df = pd.DataFrame([household("A"), household("B")]).drop(columns=["pets"])
    tv = validate_table("households", df, batch_id="missing", settings=settings)
    assert tv.statistics["missing_columns"] == ["pets"]
    assert rules_by_row(tv) == {0: {"pets_required"}, 1: {"pets_required"}}


def test_valid_rows_pass_and_invalid_rows_are_named(settings: Settings) -> None:
    # Non-default index labels: errors must name the caller's labels, not positions.
    households = pd.DataFrame([household("A"), household("B", german_level="c2"), household("C")], index=[10, 20, 30])
    members = pd.DataFrame(family("A", "head", "child") + family("B", "head") + family("C", "head", "spouse"),
                           index=[100, 101, 200, 300, 301])
    offers = pd.DataFrame([offer("OF-1"), offer("OF-2", ags="1001000", state="SH")], index=[7, 8])
    result = validate_batch({"households": households, "members": members, "capacity_offers": offers},
                            batch_id="mixed 2026/06", settings=settings)
    assert set(result) == set(TABLES) - {"decisions"}  # only the tables given
    assert result["households"].invalid_rows == {20}
    assert result["members"].invalid_rows == {200}
    assert result["capacity_offers"].invalid_rows == {8}
    (err,) = errors_of(result["households"], 20)
    assert (err.field, err.rule) == ("german_level", "german_level_allowed_value")
    assert err.message == "german_level must be one of: none a1 a2 b1 b2_plus."
    assert result["households"].evaluated_rows == 3 and result["members"].evaluated_rows == 5
    for tv in result.values():
        assert not tv.success
        assert tv.statistics["evaluated_expectations"] > 0
        assert tv.statistics["valid_rows"] == tv.evaluated_rows - len(tv.invalid_rows)
    ok = validate_batch({"households": households.loc[[10, 30]], "members": members.drop(index=200),
                         "capacity_offers": offers.loc[[7]]}, batch_id="clean", settings=settings)
    assert all(tv.success and not tv.invalid_rows and not tv.row_errors for tv in ok.values())


def test_contact_name_is_held_to_its_length_and_to_characters_that_show_and_its_value_never_reaches_data_docs(
        tmp_path: Path) -> None:
    # Rule: contact_name_shows_as_written, contact_name_at_most_100_characters; judged on derived columns, so GX
    # (and the Data Docs page) sees whether a name passed or its length, never the name (personal data).
    settings = Settings(home=tmp_path, database_url="sqlite://", clock=ManualClock(TODAY))
    names = {"A": None, "B": "Olena Kovalenko", "C": "Olena \u202eoknelavoK", "D": "Kovalenko" * 1_112,
             "E": "Olena\nKovalenko", "F": '<b onmouseover="x()">Olena</b>', "G": "Олена\u200bКоваленко",
             "H": "Ю" * contract.CONTACT_NAME_MAX_LENGTH}
    tv = check("households", [household(c, contact_name=n) for c, n in names.items()], settings)
    assert rules_by_row(tv) == {2: {"contact_name_shows_as_written"}, 3: {"contact_name_at_most_100_characters"},
                                4: {"contact_name_shows_as_written"}, 6: {"contact_name_shows_as_written"}}
    assert len("Kovalenko" * 1_112) > 10_000
    assert tv.report_path is not None
    page = tv.report_path.read_text(encoding="utf-8")
    assert "contact_name is at most 100 characters long" in page and "holds a hidden character" in page
    for name in ("oknelavoK", "Kovalenko", "Olena", "Коваленко"):
        assert name not in page and all(name not in e.message for e in tv.row_errors), name


def test_data_docs_html_is_written(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url="sqlite://", clock=ManualClock(TODAY))
    tv = validate_table("capacity_offers", pd.DataFrame([offer("OF-1", ags="9162000")]), batch_id="docs-run",
                        settings=settings)
    assert tv.report_path is not None and tv.report_path.suffix == ".html" and tv.report_path.is_file()
    assert settings.data_docs in tv.report_path.parents
    assert "docs-run" in tv.report_path.parts
    assert (settings.data_docs / "index.html").is_file()
    page = tv.report_path.read_text(encoding="utf-8")
    assert "ags is exactly 8 digits" in page  # the rule as the contract says it, not GX's wording of a regex
    assert "9162000" in page
    assert (settings.gx_root / "great_expectations.yml").is_file()
    json.dumps(tv.result)  # the result is JSON-able as promised
    assert tv.result["success"] is False


def _rules(table: str) -> dict[str, dict]:
    """The suite's rules by name; a health or disability field's rule as written (GX sees only whether it held)."""
    return {exp["meta"]["rule"]: exp["meta"].get("judged_aside") or exp
            for exp in load_suite_dict(table)["expectations"]}


def test_the_suites_say_what_the_contract_module_says() -> None:
    sets = {}
    for table in TABLES:
        suite = load_suite_dict(table)
        assert suite["name"] == table
        for exp in suite["expectations"]:
            assert exp["meta"]["rule"] and exp["meta"]["message"], exp
            # A health or disability field's rule is judged aside (GX sees only whether it held).
            exp = exp["meta"].get("judged_aside") or exp
            if exp["type"] == "expect_column_values_to_be_in_set" and not exp["kwargs"]["column"].startswith("_"):
                sets[exp["kwargs"]["column"]] = exp["kwargs"]["value_set"]
    # Every single-choice field has its rule, with the contract's values in the contract's order.
    assert sets == {field: list(values) for field, values in contract.CHOICES.items()}
    households, capacity, members = _rules("households"), _rules("capacity_offers"), _rules("members")
    for rules, multiple in ((households, contract.HOUSEHOLD_SELECT_MULTIPLE),
                            (capacity, contract.CAPACITY_SELECT_MULTIPLE)):
        for field, options in multiple.items():
            one = "(?:" + "|".join(options) + ")"
            assert rules[f"{field}_allowed_values"]["kwargs"]["regex"] == f"^{one}(?: {one})*\\Z"
    assert households["ties_ags_eight_digits"]["kwargs"]["regex"] == f"^{contract.AGS_PATTERN}\\Z"
    assert capacity["ags_eight_digits"]["kwargs"]["regex"] == f"^{contract.AGS_PATTERN}\\Z"
    assert capacity["ags_valid_land"]["kwargs"]["value_set"] == list(contract.LAND_BY_AGS_PREFIX)
    for rules, field in ((households, "interview_date"), (capacity, "valid_from"), (capacity, "valid_until")):
        assert rules[f"{field}_format"]["kwargs"]["regex"] == f"^{contract.DATE_PATTERN}\\Z"
    for field in contract.CAPACITY_COUNT_FIELDS:
        assert capacity[f"{field}_whole_number"]["kwargs"]["regex"] == f"^{contract.INT_PATTERN}\\Z"
        low = capacity["places_persons_at_least_8" if field == "places_persons" else f"{field}_not_negative"]
        assert low["kwargs"]["min_value"] == (contract.MIN_PLACES_PERSONS if field == "places_persons" else 0)
    for aspect in contract.WEIGHT_ASPECTS:
        rule = households[f"weight_{aspect}_0_to_5"]["kwargs"]
        assert (rule["min_value"], rule["max_value"]) == contract.WEIGHT_RANGE
    assert members["birth_year_1900_to_current_year"]["kwargs"]["min_value"] == contract.EARLIEST_BIRTH_YEAR
    assert households["contact_name_at_most_100_characters"]["kwargs"]["max_value"] == contract.CONTACT_NAME_MAX_LENGTH


def test_expectations_dir_can_be_overridden(tmp_path: Path) -> None:
    assert load_settings({}).expectations_dir == Path(__file__).resolve().parent.parent / "expectations"
    suite = load_suite_dict("members")
    suite["expectations"] = [e for e in suite["expectations"] if e["meta"]["rule"] != "sex_allowed_value"]
    (tmp_path / "members.json").write_text(json.dumps(suite), encoding="utf-8")
    settings = load_settings({"REMATCH_HOME": str(tmp_path / "home"), "REMATCH_DATABASE_URL": "sqlite://",
                              "REMATCH_EXPECTATIONS_DIR": str(tmp_path)}, clock=ManualClock(TODAY))
    assert settings.expectations_dir == tmp_path
    assert check("members", [member("A", sex="unknown")], settings).success
    assert not check("members", [member("A", sex="unknown")], replace(settings, home=tmp_path / "h2",
                     expectations_dir=load_settings({}).expectations_dir)).success


def test_unknown_table_and_ambiguous_index_are_rejected(settings: Settings) -> None:
    with pytest.raises(ValueError, match="no expectation suite"):
        validate_batch({"assignments": pd.DataFrame()}, batch_id="x", settings=settings)
    with pytest.raises(ValueError, match="index must be unique"):
        validate_table("members", pd.DataFrame([member("A"), member("B")], index=[1, 1]), batch_id="x",
                       settings=settings)


def test_health_values_are_judged_but_never_written_into_results_or_data_docs(tmp_path: Path) -> None:
    # Data Docs list a failing rule's values; for health and disability details (contract §1) they must not, with
    # or without consent: the rule still quarantines the row, the docs show only that it failed.
    settings = Settings(home=tmp_path, database_url="sqlite://", clock=ManualClock(TODAY))
    secrets = {"medical_needs": "dialyse onkologie", "wheelchair_access": "Rollstuhl seit 2019",
               "mobility_impaired": "gehbehindert links"}
    households = pd.DataFrame([household("RM-1", medical_needs=secrets["medical_needs"]),
                               household("RM-2", wheelchair_access=secrets["wheelchair_access"]),
                               household("RM-3", medical_needs="none dialysis")])
    members = pd.DataFrame([member("RM-1"), member("RM-2"),
                            member("RM-3", mobility_impaired=secrets["mobility_impaired"])])
    result = validate_batch({"households": households, "members": members}, batch_id="health", settings=settings)
    hh, mem = result["households"], result["members"]
    assert rules_by_row(hh)[0] >= {"medical_needs_allowed_values"}
    assert rules_by_row(hh)[1] >= {"wheelchair_access_allowed_value"}
    assert rules_by_row(hh)[2] >= {"medical_needs_none_excludes_others"}
    assert [e.field for e in errors_of(hh, 0) if e.rule == "medical_needs_allowed_values"] == ["medical_needs"]
    assert "mobility_impaired_allowed_value" in {e.rule for e in mem.row_errors}
    written = "".join(p.read_text(encoding="utf-8", errors="replace") for p in tmp_path.rglob("*")
                      if p.is_file() and p.suffix in (".html", ".json"))
    written += json.dumps(hh.result) + json.dumps(mem.result)
    for secret in (*secrets.values(), "none dialysis"):
        assert secret not in written, secret
    assert "medical_needs" in written  # the rule and its column are named, only the values are not


@pytest.mark.parametrize("payload", ['<script>alert("x")</script>',
                                     pytest.param('"><img src=x onerror=alert(1)>', marks=pytest.mark.full),
                                     pytest.param("</td></tr></table><svg onload=alert(1)>", marks=pytest.mark.full)])
def test_markup_in_any_text_field_of_either_file_kind_stays_text_in_the_data_docs(tmp_path: Path,
                                                                                   payload: str) -> None:
    # Data Docs show the values a rule did not expect; GX writes them verbatim, so they are made safe first.
    settings = Settings(home=tmp_path, database_url="sqlite://", clock=ManualClock(TODAY))
    fields = {"households": household(), "members": member(), "capacity_offers": offer()}
    tables: dict[str, list[dict[str, str | None]]] = {}
    for table, base in fields.items():
        for i, name in enumerate(f for f in base if f != "source_row"):
            row = dict(base)
            row[name] = payload
            if table != "capacity_offers":  # every household keeps its member, and the other way round
                row["case_id"] = payload if name == "case_id" else f"RM-2026-{i:05d}"
            else:
                row["offer_id"] = payload if name == "offer_id" else f"OF-{i}"
            tables.setdefault(table, []).append(row)
    batch = {t: pd.DataFrame(rows) for t, rows in tables.items() if t != "capacity_offers"}
    result = validate_batch(batch, batch_id="markup-households", settings=settings)
    result.update(validate_batch({"capacity_offers": pd.DataFrame(tables["capacity_offers"])},
                                 batch_id="markup-capacity", settings=settings))
    assert all(tv.row_errors for tv in result.values())  # the payload broke rules, so its values are listed
    pages = [p.read_text(encoding="utf-8") for p in settings.data_docs.rglob("*.html")]
    assert len(pages) >= 4
    for page in pages:
        assert payload not in page
        assert "<script>alert" not in page and "<img src=x" not in page and "<svg onload" not in page
    assert any(html_escape(payload) in page for page in pages)  # shown, as text


def test_a_readers_finding_replaces_only_the_suite_findings_it_explains() -> None:
    from rematch_pipeline.validation import RowError, _explained

    suite = [RowError(0, "german_level", "german_level_allowed_value", "m"),
             RowError(1, "case_id", "member_case_id_required", "m"), RowError(1, "sex", "sex_allowed_value", "m")]
    tv = TableValidation("members", False, 2, {0, 1}, list(suite), {}, None, {})
    _explained(tv, [RowError(0, "german_level", "repeated_column_disagrees", "r"),
                    RowError(1, "case_id", "household_without_case_id", "r")])
    # The lost-link message goes (the household row lacks the case_id); a value the file states twice and wrong stays.
    assert [e.rule for e in tv.row_errors] == ["german_level_allowed_value", "sex_allowed_value"]
