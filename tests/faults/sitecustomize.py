"""Fault injection for tests that run the pipeline in other processes (Airflow tasks): put this folder on PYTHONPATH
and name a file in REMATCH_TEST_FAIL_FILE; storing that file then fails as a database refusing its rows would
(the error quotes REMATCH_TEST_FAIL_QUOTE, as database errors quote the value they refused)."""

import os

_NAME = os.environ.get("REMATCH_TEST_FAIL_FILE")

if _NAME:
    from sqlalchemy.exc import DataError

    from rematch_pipeline.ingest import service

    _real = service._ingest_archived

    def _refusing(archived, attempt, settings):  # type: ignore[no-untyped-def]
        if attempt.name == _NAME:
            quote = os.environ.get("REMATCH_TEST_FAIL_QUOTE", "")
            raise DataError("INSERT INTO capacity_offers ...", {}, Exception(f"value too long: {quote}"))
        return _real(archived, attempt, settings)

    service._ingest_archived = _refusing
