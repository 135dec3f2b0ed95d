"""One clock for the application: only `rematch_pipeline.clock` reads the system time; date rules hold on any day."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from rematch_pipeline.clock import ManualClock, SystemClock
from tests.source_names import names_used

REPO = Path(__file__).resolve().parent.parent
SHIFT_DAYS = 366  # a year ahead, across a leap day or not
_PROBE = "REMATCH_CLOCK_PROBE"

# What reads the machine's calendar time (durations from time.monotonic or perf_counter are fine): only the clock
# module may touch these, called or passed on (`default=datetime.now` reads the time later).
_CLOCK_READS = {
    "datetime.datetime.now", "datetime.datetime.utcnow", "datetime.datetime.today", "datetime.date.today",
    "time.time", "time.time_ns", "time.localtime", "time.gmtime", "time.ctime", "time.asctime",
    "pandas.Timestamp.now", "pandas.Timestamp.today", "pandas.Timestamp.utcnow", "pendulum.now", "pendulum.today",
    "airflow.utils.timezone.utcnow", "airflow.sdk.timezone.utcnow",
}
# ... and these, given the words "now" or "today".
_PARSES_NOW = {"pandas.Timestamp", "pandas.to_datetime", "numpy.datetime64"}


def _clock_reads(path: Path) -> list[str]:
    found = []
    for node, name in names_used(path):
        if name in _CLOCK_READS:
            found.append(f"{path.relative_to(REPO)}:{node.lineno} {name}")
        if isinstance(node, ast.Call) and name in _PARSES_NOW and any(
                isinstance(a, ast.Constant) and str(a.value).strip().lower() in ("now", "today") for a in node.args):
            found.append(f"{path.relative_to(REPO)}:{node.lineno} {name}(now)")
    return sorted(set(found))


def test_the_clock_check_sees_every_way_of_reading_the_time() -> None:
    probe = REPO / "tests" / "_clock_probe_tmp.py"
    probe.write_text("\n".join([
        "import datetime as dtm", "import pandas as pd", "from datetime import date",
        "from datetime import datetime as dt", "from time import time", "import time as t",
        "a = dtm.datetime.now()", "b = dt.utcnow()", "c = date.today()", "d = time()", "e = t.time_ns()",
        "f = pd.Timestamp.now()", "g = pd.Timestamp('today')", "h = dict(default=dt.now)", "i = t.monotonic()",
        "j = pd.to_datetime('2026-11-23')",
    ]) + "\n", encoding="utf-8")
    try:
        lines = sorted(int(r.split(":")[1].split()[0]) for r in _clock_reads(probe))
    finally:
        probe.unlink()
    assert lines == [7, 8, 9, 10, 11, 12, 13, 14]  # not the durations (15) nor a parsed fixed date (16)


def test_only_the_clock_module_reads_the_system_clock() -> None:
    files = sorted((REPO / "rematch_pipeline").rglob("*.py")) + sorted((REPO / "dags").glob("*.py"))
    reads = [r for f in files if f.name != "clock.py" or f.parent.name != "rematch_pipeline" for r in _clock_reads(f)]
    assert reads == [], "read the time from settings.clock instead:\n" + "\n".join(reads)
    assert _clock_reads(REPO / "rematch_pipeline" / "clock.py")  # the check sees a read where there is one


def test_a_manual_clock_moves_only_when_told_and_keeps_events_in_order() -> None:
    clock = ManualClock(datetime(2026, 11, 23, 9, tzinfo=UTC))
    first, second = clock.now(), clock.now()
    assert first == datetime(2026, 11, 23, 9, tzinfo=UTC) and second - first == timedelta(microseconds=1)
    clock.set(date(2026, 11, 30))
    assert clock.now() == datetime(2026, 11, 30, 9, tzinfo=UTC)
    clock.advance(timedelta(days=1))
    assert clock.today() == date(2026, 12, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 11, 23, 9))


def test_today_is_the_calendar_day_in_utc() -> None:
    # 23:30 in Rio on 30 November is already 1 December in UTC: deadlines and timestamps count in one zone.
    clock = ManualClock(datetime(2026, 11, 30, 23, 30, tzinfo=timezone(timedelta(hours=-3))))
    assert clock.now().tzinfo == UTC and clock.today() == date(2026, 12, 1)
    now = SystemClock().now()
    assert now.tzinfo == UTC and SystemClock().today() in (now.date(), now.date() + timedelta(days=1))


@pytest.mark.dated
def test_clock_probe() -> None:
    """Inside the guard's run: tell the guard what the system clock said (it must be a year ahead)."""
    target = os.environ.get(_PROBE)
    if target:
        Path(target).write_text(f"{SystemClock().today().isoformat()} {date.today().isoformat()}", encoding="utf-8")


@pytest.mark.full
def test_date_sensitive_tests_pass_with_the_system_clock_a_year_ahead(tmp_path: Path) -> None:
    # The guard: every test marked `dated` runs again with the machine's clock (datetime, date and time, for the
    # application and every library in the process) moved SHIFT_DAYS ahead, in a time zone 14 hours from UTC (so a
    # local date and the UTC date differ most of the day). A test that leans on the real date instead of the clock
    # it set fails here, not a year from now. SQLite only: the date rules do not differ by database.
    probe = tmp_path / "probe.txt"
    env = {k: v for k, v in os.environ.items() if k != "REMATCH_TEST_DATABASE_URL"}
    env.update({_PROBE: str(probe), "TZ": "Pacific/Kiritimati"})
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "dated and not slow", "-p", "no:cacheprovider",
                          f"--clock-shift-days={SHIFT_DAYS}", "--basetemp", str(tmp_path / "run")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    tail = "\n".join((run.stdout + run.stderr).splitlines()[-40:])
    assert run.returncode == 0, tail
    ahead = date.today() + timedelta(days=SHIFT_DAYS - 1)
    application, library = (date.fromisoformat(d) for d in probe.read_text(encoding="utf-8").split())
    assert application >= ahead and library >= ahead, "the guard's run did not move the clock"
    assert " passed" in tail and " failed" not in tail
