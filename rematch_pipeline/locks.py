"""Folders that one process at a time may write: an exclusive lock across the processes of this machine."""

from __future__ import annotations

import fcntl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_guard = threading.RLock()
_depth: dict[Path, int] = {}


def lock_file(folder: Path) -> Path:
    """The file whose lock stands for `folder`: beside it, so nothing in the folder (which may be served) changes."""
    folder = folder.resolve()
    return folder.with_name(f".{folder.name}.lock")


@contextmanager
def exclusive(folder: Path) -> Iterator[None]:
    """Hold `folder` alone until the block ends: other processes (two files of one ingest run validated at once on
    two workers) wait. Reentrant within a thread, so a writer may call another writer of the same folder.
    """
    folder = folder.resolve()
    with _guard:
        if _depth.get(folder):
            _depth[folder] += 1
            try:
                yield
            finally:
                _depth[folder] -= 1
            return
        folder.parent.mkdir(parents=True, exist_ok=True)
        with open(lock_file(folder), "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
            _depth[folder] = 1
            try:
                yield
            finally:
                _depth.pop(folder, None)
