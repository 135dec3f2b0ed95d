"""Work run in a second process: it ends with this one, and its failure comes back as a plain sentence."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Any

PR_SET_PDEATHSIG = 1  # Linux prctl option: the signal this process gets when the one that started it ends


class SecondProcessFailed(RuntimeError):
    """The second process ended without its result, or with an error that could not be passed back."""


class SecondProcess:
    """`fn(*args)` in a spawned process (a fork would copy this process's threads' locks); `with` it so that it is
    stopped when this side fails first. `what` names the work in errors ("the myopic rounds")."""

    def __init__(self, what: str, fn: Callable[..., Any], *args: Any) -> None:
        spawn = multiprocessing.get_context("spawn")
        self.what = what
        self._conn, theirs = spawn.Pipe(duplex=False)
        self._process = spawn.Process(target=_serve, args=(theirs, os.getpid(), logging.getLogger().level, fn, args),
                                      daemon=True, name="rematch-second")
        self._process.start()
        theirs.close()
        self._outcome: tuple[str, Any] | None = None

    def __enter__(self) -> SecondProcess:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._process.is_alive():  # this side failed first: the other's work is of no use now
            self._process.terminate()
        self._process.join()
        self._conn.close()

    def check(self) -> None:
        """Raise now if the second process has failed, so this side does not finish work of no use."""
        if self._outcome is None and self._conn.poll():
            self._receive()
        if self._outcome is not None and self._outcome[0] == "error":
            raise self._outcome[1]

    def result(self) -> Any:
        """Its result, once it has one; its error raised here."""
        if self._outcome is None:
            self._receive()
        self.check()
        assert self._outcome is not None
        return self._outcome[1]

    def _receive(self) -> None:
        try:
            self._outcome = self._conn.recv()
        except (EOFError, OSError):
            self._outcome = ("error", SecondProcessFailed(
                f"{self.what} in the second process ended without a result (stopped from outside, or out of "
                "memory); run again, with --processes 1 to keep to one process"))
        except Exception:  # noqa: BLE001 - an error that pickled there but cannot be rebuilt here
            self._outcome = ("error", SecondProcessFailed(
                f"{self.what} failed in the second process; run with --processes 1 to see where"))


def _serve(conn: Connection, parent: int, log_level: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    _end_with(parent)
    from rematch_pipeline.config import configure_logging

    configure_logging(log_level)
    try:
        outcome: tuple[str, Any] = ("ok", fn(*args))
    except Exception as exc:  # noqa: BLE001 - passed back and raised there, where the command says it in words
        outcome = ("error", exc)
    try:
        conn.send(outcome)
    except Exception:  # noqa: BLE001 - an error (or a result) that cannot be pickled: say what failed instead
        conn.send(("error", SecondProcessFailed(
            f"the second process failed ({type(outcome[1]).__name__}); run with --processes 1 to see where")))
    conn.close()


def _end_with(parent: int) -> None:
    """On Linux the kernel ends this process when its parent ends, however that ends (a SIGTERM leaves no orphan);
    elsewhere the parent's own exit stops it (daemon)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent ended before the line above took effect
        os._exit(1)
