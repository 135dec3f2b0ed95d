"""The demo scenario generator: deterministic files in the contract's export formats with plausible content."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from rematch_pipeline.contract import (
    CAPACITY_FIELDS,
    GERMAN_LEVELS,
    LAND_BY_AGS_PREFIX,
    LANGUAGES,
    MEDICAL_NEEDS,
    MEDICAL_SERVICES,
    MEMBER_FIELDS,
    OCCUPATIONS,
    PETS,
    PREF_SETTLEMENTS,
    QUALIFICATIONS,
    RELATIONS,
    SETTLEMENT_TYPES,
    SEXES,
    WEIGHT_ASPECTS,
)
from rematch_pipeline.scenario import PILOT_CITIES, ScenarioFiles, generate_scenario

ROUND_DATE = date(2026, 11, 23)
POLISH_CITIES = {"Warszawa", "Kraków", "Wrocław", "Przemyśl", "Rzeszów", "Lublin"}


def sheet_records(path: Path, sheet: str) -> tuple[list[str], list[dict[str, Any]]]:
    wb = load_workbook(path, read_only=True)
    try:
        rows = list(wb[sheet].iter_rows(values_only=True))
    finally:
        wb.close()
    header = [str(h) for h in rows[0]]
    return header, [dict(zip(header, r, strict=True)) for r in rows[1:]]


class Scenario:
    def __init__(self, files: ScenarioFiles):
        self.files = files
        self.main_header, self.households = sheet_records(files.households_xlsx, "rematch_household")
        self.member_header, self.members = sheet_records(files.households_xlsx, "members")
        self.capacity_header, self.offers = sheet_records(files.capacity_xlsx, "capacity")
        self.members_of: dict[object, list[dict[str, Any]]] = defaultdict(list)
        for m in self.members:
            self.members_of[m["_submission__uuid"]].append(m)

    def persons_demand(self) -> int:
        return sum(len(self.members_of[h["_uuid"]]) for h in self.households if h["consent_matching"] == "yes")


@pytest.fixture(scope="module")
def pilot(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return Scenario(generate_scenario(tmp_path_factory.mktemp("pilot"), 300, 8, seed=11))


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    return Scenario(generate_scenario(tmp_path_factory.mktemp("large"), 2000, 120, seed=3))


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    a = generate_scenario(tmp_path / "a", 60, 12, seed=5)
    b = generate_scenario(tmp_path / "b", 60, 12, seed=5)
    assert a.households_xlsx.read_bytes() == b.households_xlsx.read_bytes()
    assert a.capacity_xlsx.read_bytes() == b.capacity_xlsx.read_bytes()


def test_different_seed_gives_different_files(tmp_path: Path) -> None:
    a = generate_scenario(tmp_path / "a", 60, 12, seed=5)
    b = generate_scenario(tmp_path / "b", 60, 12, seed=6)
    assert a.households_xlsx.read_bytes() != b.households_xlsx.read_bytes()
    assert a.capacity_xlsx.read_bytes() != b.capacity_xlsx.read_bytes()


def test_files_carry_fixed_document_timestamps(pilot: Scenario) -> None:
    for path in (pilot.files.households_xlsx, pilot.files.capacity_xlsx):
        wb = load_workbook(path, read_only=True)
        assert wb.properties.created == wb.properties.modified == datetime(2026, 1, 1)
        wb.close()


def test_files_are_named_as_the_demo_expects(pilot: Scenario) -> None:
    assert pilot.files.households_xlsx.name == "households_kobo.xlsx"
    assert pilot.files.capacity_xlsx.name == "capacity.xlsx"


def test_kobo_export_uses_group_paths_option_columns_and_system_columns_last(pilot: Scenario) -> None:
    header = pilot.main_header
    for grouped in ("grp_needs/wheelchair_access", "grp_needs/medical_needs", "grp_needs/pets",
                    "grp_prefs/pref_settlement", *(f"grp_prefs/weight_{a}" for a in WEIGHT_ASPECTS)):
        assert grouped in header
    assert {f"languages/{o}" for o in LANGUAGES} <= set(header)
    assert {f"grp_needs/medical_needs/{o}" for o in MEDICAL_NEEDS} <= set(header)
    assert header[-5:] == ["_id", "_uuid", "_submission_time", "_validation_status", "_index"]
    assert header[0] == "case_id"
    assert pilot.member_header == [*MEMBER_FIELDS, "_index", "_parent_table_name", "_parent_index",
                                   "_submission__uuid"]


def test_select_multiple_option_columns_agree_with_the_space_separated_column(pilot: Scenario) -> None:
    for h in pilot.households:
        for column, options in (("languages", LANGUAGES), ("grp_needs/medical_needs", MEDICAL_NEEDS)):
            chosen = str(h[column]).split()
            assert [o for o in options if h[f"{column}/{o}"] == 1] == chosen
            assert all(h[f"{column}/{o}"] in (0, 1) for o in options)


def test_kobo_cells_are_typed_as_kobo_writes_them(pilot: Scenario) -> None:
    h = pilot.households[0]
    assert isinstance(h["interview_date"], str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", h["interview_date"])
    assert isinstance(h["_id"], int) and h["_index"] == 1 and h["_validation_status"] is None
    assert re.fullmatch(r"2026-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}", str(h["_submission_time"]))
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", str(h["_uuid"]))
    assert [x["_index"] for x in pilot.households] == list(range(1, len(pilot.households) + 1))
    assert len({x["_id"] for x in pilot.households}) == len(pilot.households)


def test_case_ids_are_unique_and_numbered(pilot: Scenario) -> None:
    ids = [h["case_id"] for h in pilot.households]
    assert ids[0] == "RM-2026-00001" and len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"RM-2026-\d{5}", str(i)) for i in ids)


def test_every_household_has_exactly_one_head(large: Scenario) -> None:
    for h in large.households:
        relations = [m["relation"] for m in large.members_of[h["_uuid"]]]
        assert relations.count("head") == 1, h["case_id"]


def test_members_point_at_their_household_by_uuid_and_parent_index(pilot: Scenario) -> None:
    index_by_uuid = {h["_uuid"]: h["_index"] for h in pilot.households}
    for m in pilot.members:
        assert m["_parent_table_name"] == "rematch_household"
        assert index_by_uuid[m["_submission__uuid"]] == m["_parent_index"]
    assert [m["_index"] for m in pilot.members] == list(range(1, len(pilot.members) + 1))


def test_birth_years_are_consistent_with_roles(large: Scenario) -> None:
    for h in large.households:
        members = large.members_of[h["_uuid"]]
        head_age = next(ROUND_DATE.year - int(m["birth_year"]) for m in members if m["relation"] == "head")
        assert 18 <= head_age <= 90
        for m in members:
            age = ROUND_DATE.year - int(m["birth_year"])
            if m["relation"] == "child":
                assert 0 <= age <= 17 and age <= head_age - 18
                assert m["occupation"] == "none" and m["qualification"] == "none"
            elif m["relation"] == "parent":
                assert age >= head_age + 18
            elif m["relation"] in ("spouse", "sibling"):
                assert age >= 18
            if age < 18:
                assert m["occupation"] == "none" and m["qualification"] == "none"


def test_values_come_from_the_contract_choice_lists(large: Scenario) -> None:
    for h in large.households:
        assert set(str(h["languages"]).split()) <= set(LANGUAGES) and h["languages"]
        assert h["german_level"] in GERMAN_LEVELS
        assert h["grp_needs/pets"] in PETS
        assert h["grp_prefs/pref_settlement"] in PREF_SETTLEMENTS
        for yes_no in ("consent_matching", "consent_health_share", "grp_needs/wheelchair_access"):
            assert h[yes_no] in ("yes", "no")
        assert all(h[f"grp_prefs/weight_{a}"] in range(6) for a in WEIGHT_ASPECTS)
        assert h["interview_location"] in POLISH_CITIES
        assert h["contact_phone"] is None or str(h["contact_phone"]).startswith("+48 ")
        assert h["contact_email"] is None or re.fullmatch(r"[a-z.0-9]+@example\.(com|org|net)", str(h["contact_email"]))
    for m in large.members:
        assert m["relation"] in RELATIONS and m["sex"] in SEXES
        assert m["occupation"] in OCCUPATIONS and m["qualification"] in QUALIFICATIONS
        assert m["mobility_impaired"] in ("yes", "no")


def test_medical_needs_none_stands_alone_and_paediatric_needs_children(large: Scenario) -> None:
    for h in large.households:
        needs = str(h["grp_needs/medical_needs"]).split()
        assert set(needs) <= set(MEDICAL_NEEDS)
        assert needs == ["none"] or "none" not in needs
        if "paediatric_specialist" in needs:
            assert any(ROUND_DATE.year - int(m["birth_year"]) < 18 for m in large.members_of[h["_uuid"]])


def test_interviews_lie_within_60_days_before_the_round(large: Scenario) -> None:
    for h in large.households:
        day = date.fromisoformat(str(h["interview_date"]))
        assert ROUND_DATE - timedelta(days=60) <= day < ROUND_DATE
        submitted = datetime.fromisoformat(str(h["_submission_time"]))
        assert day <= submitted.date() < ROUND_DATE


def test_household_mix_matches_the_pilot_distributions(large: Scenario) -> None:
    n = len(large.households)
    sizes = Counter(len(large.members_of[h["_uuid"]]) for h in large.households)
    impaired = {m["_submission__uuid"] for m in large.members if m["mobility_impaired"] == "yes"}
    share = lambda k: k / n  # noqa: E731
    assert 0.10 <= share(sizes[1]) <= 0.20  # singles
    assert 0.03 <= share(len(impaired)) <= 0.08
    assert 0.005 <= share(sum(h["grp_needs/wheelchair_access"] == "yes" for h in large.households)) <= 0.04
    assert 0.07 <= share(sum(h["grp_needs/pets"] != "none" for h in large.households)) <= 0.13
    assert 0.94 <= share(sum(h["consent_matching"] == "yes" for h in large.households)) <= 0.995
    assert 0.75 <= share(sum(h["consent_health_share"] == "yes" for h in large.households)) <= 0.85
    assert 0.11 <= share(sum(h["ties_ags"] is not None for h in large.households)) <= 0.19
    assert share(sum(h["grp_needs/medical_needs"] == "none" for h in large.households)) >= 0.7
    assert share(sum(h["german_level"] in ("none", "a1") for h in large.households)) >= 0.7
    assert share(sum("uk" in str(h["languages"]).split() for h in large.households)) >= 0.85
    assert sum(h["notes"] is not None for h in large.households) > 0


def test_wheelchair_households_have_a_mobility_impaired_member(large: Scenario) -> None:
    for h in large.households:
        if h["grp_needs/wheelchair_access"] == "yes":
            assert any(m["mobility_impaired"] == "yes" for m in large.members_of[h["_uuid"]])


def test_pilot_cities_have_their_real_ags(pilot: Scenario) -> None:
    expected = {
        "Braunschweig": ("03101000", "NI"), "Dinslaken": ("05170008", "NW"), "Düsseldorf": ("05111000", "NW"),
        "Kiel": ("01002000", "SH"), "München": ("09162000", "BY"), "Rottenburg am Neckar": ("08416036", "BW"),
        "Salzgitter": ("03102000", "NI"), "Troisdorf": ("05382068", "NW"),
    }
    assert {o["municipality_name"]: (o["ags"], o["state"]) for o in pilot.offers} == expected
    assert {a for a, *_ in PILOT_CITIES} == {a for a, _ in expected.values()}


def test_fewer_municipalities_take_the_first_pilot_cities(tmp_path: Path) -> None:
    files = generate_scenario(tmp_path, 30, 3, seed=1)
    _, offers = sheet_records(files.capacity_xlsx, "capacity")
    assert [o["ags"] for o in offers] == [a for a, *_ in PILOT_CITIES[:3]]


def test_synthetic_municipalities_have_unique_ags_consistent_with_their_land(large: Scenario) -> None:
    ags = [str(o["ags"]) for o in large.offers]
    assert len(set(ags)) == len(ags) == 120
    assert len({o["municipality_name"] for o in large.offers}) == 120
    for o in large.offers:
        assert re.fullmatch(r"\d{8}", str(o["ags"]))
        assert LAND_BY_AGS_PREFIX[str(o["ags"])[:2]] == o["state"]
        assert o["offer_id"] == f"OF-{o['ags']}-1"
        assert o["settlement_type"] in SETTLEMENT_TYPES
    by_land = Counter(o["state"] for o in large.offers)
    assert by_land["NW"] > by_land["SL"] and len(by_land) >= 8  # roughly by population


def test_capacity_total_roughly_matches_demand(pilot: Scenario, large: Scenario) -> None:
    for scenario in (pilot, large):
        ratio = sum(int(o["places_persons"]) for o in scenario.offers) / scenario.persons_demand()
        assert 0.85 <= ratio <= 1.10


def test_capacity_rows_are_internally_consistent(large: Scenario) -> None:
    counts = [f for f in CAPACITY_FIELDS if f.startswith(("places", "units", "kita", "school", "language"))]
    for o in large.offers:
        assert all(isinstance(o[f], int) and o[f] >= 0 for f in counts)
        assert o["places_persons"] >= 8
        units = sum(int(o[f]) for f in ("units_1_room", "units_2_rooms", "units_3_rooms", "units_4plus_rooms"))
        assert units >= 1
        assert int(o["units_wheelchair"]) <= units and int(o["units_pets_allowed"]) <= units
        assert o["valid_from"] <= o["valid_until"]
        services = str(o["medical_services"]).split()
        assert services and set(services) <= set(MEDICAL_SERVICES)
        sectors = str(o["job_sectors_shortage"]).split()
        assert sectors and set(sectors) <= set(OCCUPATIONS) - {"none", "other"}
        assert o["ukrainian_community"] in ("none", "small", "large")
        assert o["contact_name"] and str(o["contact_email"]).endswith("@example.org")


def test_about_95_percent_of_offers_are_valid_on_the_round_date(large: Scenario) -> None:
    day = datetime.combine(ROUND_DATE, datetime.min.time())
    valid = sum(o["valid_from"] <= day <= o["valid_until"] for o in large.offers)
    assert valid == 114  # 5% of 120 are expired or not yet valid


def test_capacity_sheet_has_contract_columns_text_ags_and_real_dates(pilot: Scenario) -> None:
    assert pilot.capacity_header == list(CAPACITY_FIELDS)
    wb = load_workbook(pilot.files.capacity_xlsx)
    ws = wb["capacity"]
    kiel = next(r for r in ws.iter_rows(min_row=2) if r[2].value == "Kiel")
    assert kiel[1].value == "01002000" and kiel[1].data_type == "s" and kiel[1].number_format == "@"
    assert isinstance(kiel[5].value, datetime) and kiel[5].is_date
    assert wb.sheetnames == ["capacity", "instructions"]
    assert "Gemeindeschlüssel" in " ".join(str(c.value) for c in wb["instructions"]["A"])


def test_ties_point_at_offered_municipalities_or_their_kreis(large: Scenario) -> None:
    offered = {str(o["ags"]) for o in large.offers}
    kreise = {a[:5] for a in offered}
    ties = [str(h["ties_ags"]) for h in large.households if h["ties_ags"] is not None]
    assert all(re.fullmatch(r"\d{8}", t) and t[:5] in kreise for t in ties)
    exact = sum(t in offered for t in ties)
    assert 0.5 * len(ties) <= exact < len(ties)  # some are neighbours in the same Kreis


def test_hxl_row_can_be_requested(tmp_path: Path) -> None:
    files = generate_scenario(tmp_path, 5, 2, seed=1, hxl_row=True)
    _, rows = sheet_records(files.households_xlsx, "rematch_household")
    tags = [v for v in rows[0].values() if v is not None]
    assert tags and all(str(v).startswith("#") for v in tags)
