"""Work in a second process: its result, its errors in words, and this side stopping it when it fails first."""

from __future__ import annotations

import os
import time

import pytest

from rematch_pipeline.simulation.beside import SecondProcess, SecondProcessFailed


def _add(a: int, b: int) -> int:
    return a + b


def _refuse() -> None:
    raise ValueError("accept-share and decline-share are between 0 and 1")


def _vanish() -> None:
    os._exit(9)  # as the kernel's out-of-memory killer would end it: no word back


class _Local(Exception):
    def __init__(self, code: int, where: str) -> None:  # rebuilt from its args alone, it fails on the other side
        super().__init__(f"{where}: {code}")


def _unreadable() -> None:
    raise _Local(3, "somewhere")


def _sleep() -> None:
    time.sleep(120)


def test_the_result_comes_back() -> None:
    with SecondProcess("the sum", _add, 2, 3) as beside:
        assert beside.result() == 5


def test_an_error_comes_back_as_raised_and_check_raises_it_before_this_side_finishes() -> None:
    # Rule: a failure over there stops the work here at the next check, not after all of it.
    with SecondProcess("the myopic rounds", _refuse) as beside:
        deadline = time.monotonic() + 60
        with pytest.raises(ValueError, match="accept-share and decline-share"):
            while time.monotonic() < deadline:
                beside.check()
                time.sleep(0.1)


@pytest.mark.parametrize("fn", [_vanish, _unreadable], ids=["killed", "error-that-cannot-cross"])
def test_a_process_that_ends_without_a_result_fails_in_words(fn: object) -> None:
    with SecondProcess("the myopic rounds", fn) as beside, pytest.raises(SecondProcessFailed) as failed:
        beside.result()
    assert str(failed.value).startswith("the myopic rounds ")
    assert "--processes 1" in str(failed.value)


def test_this_side_failing_first_stops_the_other_at_once() -> None:
    # Rule: leaving the `with` by an error does not wait for the other side's work (minutes at scale).
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="this side"), SecondProcess("the myopic rounds", _sleep) as beside:
        process = beside._process
        raise RuntimeError("this side failed")
    assert time.monotonic() - t0 < 60 and not process.is_alive()
