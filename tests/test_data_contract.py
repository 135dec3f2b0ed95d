"""The project's copy of the data contract (docs/data-contract.md): every boundary name in it, its examples valid."""

from __future__ import annotations

import re
from pathlib import Path

from rematch_pipeline import contract
from rematch_pipeline.config import Settings
from rematch_pipeline.ingest.service import ingest_file
from rematch_pipeline.quarantine import list_quarantine

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = ROOT / "docs" / "data-contract.md"


def _example(heading: str) -> str:
    """The first fenced block after the example whose bold title starts with `heading`."""
    text = CONTRACT.read_text(encoding="utf-8")
    after = text[text.index(f"**{heading}"):]
    return re.search(r"```\n(.*?)```", after, re.S).group(1)  # type: ignore[union-attr]


def test_every_field_and_choice_that_crosses_the_boundary_is_in_the_projects_contract() -> None:
    text = CONTRACT.read_text(encoding="utf-8")
    names = (*contract.HOUSEHOLD_FIELDS, *contract.MEMBER_FIELDS, *contract.CAPACITY_FIELDS, *contract.DECISION_FIELDS,
             *contract.LANGUAGES, *contract.GERMAN_LEVELS, *contract.MEDICAL_NEEDS, *contract.OCCUPATIONS,
             *contract.SETTLEMENT_TYPES)
    assert [n for n in names if not re.search(rf"\b{re.escape(n)}\b", text)] == []
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/data-contract.md" in readme and "../shared" not in readme


def test_the_capacity_example_is_accepted_as_it_stands(settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "capacity.csv"
    path.write_text(_example("Capacity template, CSV"), encoding="utf-8")
    report = ingest_file(path, settings)
    assert (report.format, report.accepted, report.quarantined) == ("capacity_csv", 1, 0)


def test_the_kobo_csv_example_is_read_and_as_the_contract_says_updates_known_households_only(
        settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / "kobo.csv"
    path.write_text(_example("Household form, KoboToolbox CSV"), encoding="utf-8")
    report = ingest_file(path, settings)
    assert (report.format, report.accepted, report.quarantined) == ("kobo_csv", 0, 1)
    assert [q["rule"] for q in list_quarantine(settings)] == ["household_unknown_without_members"]
