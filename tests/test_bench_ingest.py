"""`rematch bench ingest`: a generated export is ingested in full and each phase reports rows per second."""

from __future__ import annotations

import json

import pytest

from rematch_pipeline.cli import main


@pytest.mark.full
def test_bench_ingest_reports_rows_per_second_for_parse_validate_and_store(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "ingest", "--households", "300", "--seed", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["households"] == 300 and result["members"] > 300
    assert result["rows"] == result["households"] + result["members"] == result["accepted"]
    assert result["status"] == "ingested" and result["quarantined"] == 0
    for phase in ("parse", "validate", "store"):
        assert result[f"{phase}_s"] > 0
        assert result[f"{phase}_rows_per_s"] == round(result["rows"] / result[f"{phase}_s"])
    # The whole ingest includes its three phases; each of the four figures is rounded to the millisecond.
    assert result["total_s"] >= result["parse_s"] + result["validate_s"] + result["store_s"] - 0.002
