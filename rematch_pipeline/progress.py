"""Progress of long steps: services name their steps and counts, whoever runs them decides whether to show them."""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import IO, Any, Protocol, TypeVar

from rematch_pipeline.reports.charts import count, seconds

T = TypeVar("T")

# Without a terminal (a log file, a pipe, CI) a step says how far it got at most this often, so steps shorter than
# this say nothing at all.
LINE_EVERY_S = 5.0
REDRAW_S = 0.2  # how often the bar is redrawn on a terminal, also while a step reports nothing (a solve)
BAR_WIDTH = 20
SPINNER = "|/-\\"


class Reporter(Protocol):
    def start(self, step: Step) -> None: ...

    def update(self, step: Step) -> None: ...

    def end(self, step: Step) -> None: ...


@dataclass(eq=False)
class Step:
    """One step under way: what it does, how many units of how many are done (total None: not known ahead).

    Names and details are shown to whoever runs the command: step names, counts and the file names the user passed,
    never personal data.
    """

    name: str
    total: int | None = None
    unit: str = ""
    done: int = 0
    detail: str = ""
    started: float = field(default_factory=time.monotonic)
    reporter: Reporter | None = None

    def advance(self, n: int = 1, detail: str | None = None) -> None:
        self.done += n
        if detail is not None:
            self.detail = detail
        if self.reporter is not None:
            self.reporter.update(self)

    def note(self, detail: str) -> None:
        """Say what the step is doing now without counting a unit done."""
        self.advance(0, detail)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


# No reporter by default: library use, Airflow task logs and tests stay quiet unless a caller installs one.
_reporter: ContextVar[Reporter | None] = ContextVar("rematch_progress_reporter", default=None)


@contextmanager
def step(name: str, total: int | None = None, unit: str = "") -> Iterator[Step]:
    """A step that may take seconds: `with step("rendering packets", total=n, unit="packets") as s: ... s.advance()`."""
    reporter = _reporter.get()
    current = Step(name, total, unit, reporter=reporter)
    if reporter is None:
        yield current
        return
    reporter.start(current)
    try:
        yield current
    finally:
        reporter.end(current)


def track(items: Iterable[T], name: str, total: int | None = None, unit: str = "") -> Iterator[T]:
    """The items of `items`, one step unit counted done as the caller takes the next (or the last one ends)."""
    with step(name, total, unit) as current:
        for item in items:
            yield item
            current.advance()


@contextmanager
def reporting(reporter: Reporter) -> Iterator[Reporter]:
    """Show the steps run inside the block with `reporter`."""
    token = _reporter.set(reporter)
    try:
        yield reporter
    finally:
        _reporter.reset(token)


# Characters that steer a terminal or reorder a line rather than show: C0 and C1 controls, DEL, bidi controls.
_STEERING = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str, keep_lines: bool = True) -> str:
    """Text safe to show on a terminal: a control character written as its escape (`\\u001b`), so a file name
    cannot move the cursor, clear the screen or set the window title; line breaks and tabs stay unless
    `keep_lines` is off. The escape is also valid inside a JSON string."""
    if not keep_lines:
        text = text.replace("\n", "\\u000a").replace("\t", "\\u0009")
    return _STEERING.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def describe(steps: list[Step], tick: int | None = None, width: int | None = None) -> str:
    """One line for people: the steps from outermost to innermost, the innermost with its bar, counts and time (and
    a spinner at `tick` when its total is not known). On a terminal `width` wide the innermost step alone, cut
    before its time if need be, so the moving part stays in sight."""
    head, tail = _line(steps, tick)
    if width is None or len(head + tail) < width:
        return head + tail
    head, tail = _line(steps[-1:], tick)
    room = width - len(tail) - 2
    return head + tail if len(head) <= room else head[: max(room, 1)] + "…" + tail


def _line(steps: list[Step], tick: int | None) -> tuple[str, str]:
    inner = steps[-1]
    text = " › ".join(visible(s.name, keep_lines=False) for s in steps if s.name)
    if inner.total:
        filled = min(BAR_WIDTH, BAR_WIDTH * inner.done // inner.total)
        text += f" [{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {count(inner.done)} of {count(inner.total)}"
        text += f" {inner.unit}" if inner.unit else ""
    elif inner.unit and inner.done:
        text += f" {count(inner.done)} {inner.unit}"
    if inner.detail:
        text += f", {visible(inner.detail, keep_lines=False)}"
    tail = f" ({seconds(inner.elapsed())})"
    if inner.total is None and tick is not None:  # it still moves while the step reports nothing (a solve)
        tail += f" {SPINNER[tick % len(SPINNER)]}"
    return text, tail


class TerminalReporter:
    """Shows the steps on `stream`: on a terminal, one line with a bar redrawn in place and cleared when the steps
    end; elsewhere a plain line at most every `line_every_s` seconds and one when such a long step ends."""

    def __init__(self, stream: IO[str], *, tty: bool | None = None, line_every_s: float | None = None,
                 redraw_s: float = REDRAW_S) -> None:
        self.stream = stream
        self.tty = _isatty(stream) if tty is None else tty
        self.line_every_s = LINE_EVERY_S if line_every_s is None else line_every_s
        self.redraw_s = redraw_s
        self._steps: list[Step] = []
        self._lock = threading.Lock()
        self._last_line = 0.0  # when a line was last written without a terminal
        self._said: set[int] = set()  # steps that have written a line without a terminal
        self._tick = 0
        self._drawn = False
        self._last_draw = 0.0
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> TerminalReporter:
        # A solve reports nothing for a minute: a ticker keeps the elapsed time moving meanwhile.
        self._ticker = threading.Thread(target=self._run_ticker, name="rematch-progress", daemon=True)
        self._ticker.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            self._clear()

    def _run_ticker(self) -> None:
        while not self._stop.wait(self.redraw_s):
            with self._lock:
                self._tick += 1
                self._show()

    def start(self, step: Step) -> None:
        with self._lock:
            self._steps.append(step)
            if not self.tty:
                # Without a terminal a step says something only once it has run `line_every_s`.
                self._last_line = max(self._last_line, step.started)
            self._show()

    def update(self, step: Step) -> None:
        with self._lock:
            # A step counting thousands of units redraws no more often than the ticker would.
            if not self.tty or time.monotonic() - self._last_draw >= self.redraw_s / 2:
                self._show()

    def end(self, step: Step) -> None:
        with self._lock:
            if step in self._steps:
                self._steps.remove(step)
            if self.tty:
                self._clear()
            elif id(step) in self._said:
                self._said.discard(id(step))
                total = f" of {count(step.total)}" if step.total else ""
                unit = f", {count(step.done)}{total} {step.unit}" if step.unit else ""
                self._write(f"{visible(step.name, keep_lines=False)}: done{unit} ({seconds(step.elapsed())})\n")
                self._last_line = time.monotonic()
            self._show()

    def _show(self) -> None:
        if not self._steps:
            return
        if self.tty:
            width = shutil.get_terminal_size().columns
            self._write("\r\x1b[K" + describe(self._steps, self._tick, width))
            self._last_draw = time.monotonic()
            self._drawn = True
        elif time.monotonic() - self._last_line >= self.line_every_s:
            self._said.add(id(self._steps[-1]))
            self._write(describe(self._steps) + "\n")
            self._last_line = time.monotonic()

    def _clear(self) -> None:
        if self._drawn:
            self._write("\r\x1b[K")
            self._drawn = False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # the terminal went away or the stream was closed: progress is not essential
            pass


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
