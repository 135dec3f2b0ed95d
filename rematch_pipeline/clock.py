"""The one source of "now" and "today" for the application: the system clock, or a clock set by hand."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from datetime import UTC, date, datetime, timedelta
from typing import Any


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

    Each reading of `now` moves it on by `tick` (default 1 µs), so two events read from it are never at the same
    instant and stay in the order they happened, as on a real clock, while the readings are the same on every run.
    Like a real clock it never goes back. `today` only looks, so asking the day does not move the time.
    """

    def __init__(self, at: datetime | date, tick: timedelta = timedelta(microseconds=1)) -> None:
        if tick <= timedelta(0):
            raise ValueError("a clock must tick forwards")
        self._at = _utc(at)
        self._tick = tick
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            at = self._at
            self._at = at + self._tick
        return at

    def today(self) -> date:
        with self._lock:
            return self._at.date()

    def set(self, at: datetime | date) -> None:
        """Move the clock on to `at`. A date means that day: 09:00 UTC (office hours in Germany), or no change if the
        clock is already later on that day."""
        if not isinstance(at, datetime) and self.today() == at:
            return
        self._move_to(_utc(at))

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            target = self._at + delta
        self._move_to(target)

    def _move_to(self, target: datetime) -> None:
        with self._lock:
            if target < self._at:
                raise ValueError(f"a clock never goes back: it reads {self._at.isoformat()}, "
                                 f"not {target.isoformat()}")
            self._at = target

    def __getstate__(self) -> dict[str, Any]:
        # A lock cannot be pickled: a copy (another process, a deep copy of the settings) gets its own.
        return {"_at": self._at, "_tick": self._tick}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ManualClock({self._at.isoformat()})"


def _utc(at: datetime | date) -> datetime:
    """UTC for an aware datetime (an instant anywhere: 00:30 in Berlin is the day before in UTC)."""
    if not isinstance(at, datetime):
        return datetime(at.year, at.month, at.day, 9, tzinfo=UTC)
    if at.tzinfo is None:
        raise ValueError("a clock needs a timezone-aware time")
    return as_utc(at)


def as_utc(at: datetime) -> datetime:
    """The instant in UTC. Every instant is stored in UTC, and SQLite gives it back without its zone, so a time
    without one is taken as UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
