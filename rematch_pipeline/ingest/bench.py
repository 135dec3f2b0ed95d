"""`rematch bench ingest`: a generated Kobo XLSX export through archive, parse, validate and store, timed per phase."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from rematch_pipeline import progress
from rematch_pipeline.clock import ManualClock
from rematch_pipeline.config import Settings
from rematch_pipeline.db.engine import migrate
from rematch_pipeline.ingest.service import ingest_file
from rematch_pipeline.scenario import DEFAULT_ROUND_DATE as BENCH_DATE
from rematch_pipeline.scenario import generate_scenario


def _rate(rows: int, seconds: float) -> float | None:
    return round(rows / seconds) if seconds > 0 else None


def bench_ingest(households: int, seed: int = 1, database_url: str | None = None) -> dict[str, Any]:
    """Generate `households` households (about 2.8 members each) and ingest them into a fresh database.

    The database is a new SQLite file unless `database_url` names another (empty) one. Rows per second count every
    row of the file: households and members.
    """
    with tempfile.TemporaryDirectory(prefix="rematch-bench-") as tmp:
        t0 = time.perf_counter()
        with progress.step("generating the export"):
            files = generate_scenario(Path(tmp) / "scenario", households=households,
                                      municipalities=min(50, max(8, households // 100)), seed=seed,
                                      round_date=BENCH_DATE)
        generate_s = time.perf_counter() - t0
        home = Path(tmp) / "home"
        # The generated interviews lie before BENCH_DATE: the ingest runs on that day, whatever today is.
        settings = Settings(home=home, database_url=database_url or f"sqlite:///{home / 'bench.sqlite'}",
                            clock=ManualClock(BENCH_DATE))
        settings.ensure_dirs()
        migrate(settings.database_url)  # the init of the throwaway database, outside the measured ingest
        t1 = time.perf_counter()
        report = ingest_file(files.households_xlsx, settings, actor="bench")
        total_s = time.perf_counter() - t1
        size = files.households_xlsx.stat().st_size
    rows = report.rows_read
    timing = report.timings
    return {
        "households": report.counts.get("households", {}).get("rows", 0),
        "members": report.counts.get("members", {}).get("rows", 0),
        "rows": rows, "file_mb": round(size / 2**20, 1), "status": report.status,
        "accepted": report.accepted, "quarantined": report.quarantined,
        "generate_s": round(generate_s, 2),
        "parse_s": timing.get("parse_s"), "parse_rows_per_s": _rate(rows, timing.get("parse_s", 0)),
        "validate_s": timing.get("validate_s"), "validate_rows_per_s": _rate(rows, timing.get("validate_s", 0)),
        "store_s": timing.get("store_s"), "store_rows_per_s": _rate(rows, timing.get("store_s", 0)),
        "total_s": round(total_s, 3), "total_rows_per_s": _rate(rows, total_s),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "database": "sqlite" if database_url is None else database_url.split(":", 1)[0],
    }
