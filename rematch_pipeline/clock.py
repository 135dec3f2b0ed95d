"""The one source of "now" and "today" for the application: the system clock, or a clock set by hand."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from datetime import UTC, date, datetime, timedelta


class Clock(ABC):
    """What every rule that needs the current time asks; built once with the settings and passed in.

    "Today" is the calendar day in UTC, so a deadline, a settlement and an interview-date check agree with each
    other and with the timestamps stored beside them, whatever time zone the machine is set to.
    """

    @abstractmethod
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""

    def today(self) -> date:
        return self.now().date()


class SystemClock(Clock):
    """The machine's clock: what production runs on."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class ManualClock(Clock):
    """A clock that moves only when told (`set`, `advance`), for tests, replays and simulated weeks.

    Each reading moves it on by `tick` (default 1 µs), so two events read from it are never at the same instant
    and stay in the order they happened, as on a real clock, while the readings are the same on every run.
    """

    def __init__(self, at: datetime | date, tick: timedelta = timedelta(microseconds=1)) -> None:
        if tick < timedelta(0):
            raise ValueError("a clock cannot tick backwards")
        self._at = _utc(at)
        self._tick = tick
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            at = self._at
            self._at = at + self._tick
        return at

    def set(self, at: datetime | date) -> None:
        """Put the clock at `at` (a date means 09:00 UTC that day: office hours in Germany)."""
        with self._lock:
            self._at = _utc(at)

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._at += delta

    def __repr__(self) -> str:
        return f"ManualClock({self._at.isoformat()})"


def _utc(at: datetime | date) -> datetime:
    if not isinstance(at, datetime):
        return datetime(at.year, at.month, at.day, 9, tzinfo=UTC)
    if at.tzinfo is None:
        raise ValueError("a clock needs a timezone-aware time")
    return at.astimezone(UTC)
