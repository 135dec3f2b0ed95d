"""Folders written by concurrent workers (the GX project, the Data Docs site) are held by one process at a time."""

from __future__ import annotations

import fcntl
import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from rematch_pipeline import datadocs, validation
from rematch_pipeline.clock import ManualClock
from rematch_pipeline.config import Settings
from rematch_pipeline.locks import exclusive, lock_file
from tests import exports as x
from tests.conftest import TEST_NOW


def _held_elsewhere(folder: Path) -> bool:
    """Whether someone holds `folder`: a lock through another open file is refused while it is held, even in this
    process."""
    with open(lock_file(folder), "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def _try_in_child(folder: str, answer: Any) -> None:
    answer.put(_held_elsewhere(Path(folder)))


def _held_seen_by_another_process(folder: Path) -> bool:
    ctx = multiprocessing.get_context("spawn")
    answer = ctx.Queue()
    child = ctx.Process(target=_try_in_child, args=(str(folder), answer))
    child.start()
    child.join(60)
    return bool(answer.get(timeout=5))


def _nest(folder: str, answer: Any) -> None:
    with exclusive(Path(folder)):
        for _ in range(2):  # a writer of the folder calls writers of it, one after another
            with exclusive(Path(folder)):
                pass
        answer.put(_held_elsewhere(Path(folder)))


def test_a_folder_held_by_one_process_is_held_against_every_other_until_released(tmp_path: Path) -> None:
    folder = tmp_path / "site"
    with exclusive(folder):
        assert _held_seen_by_another_process(folder)
    assert not _held_seen_by_another_process(folder)
    assert not folder.exists(), "the lock changed what is inside or created the folder"


def test_a_writer_may_call_other_writers_of_the_folder_it_holds(tmp_path: Path) -> None:
    # In a child process: were the lock not reentrant, the child would wait for itself forever.
    ctx = multiprocessing.get_context("spawn")
    answer = ctx.Queue()
    child = ctx.Process(target=_nest, args=(str(tmp_path / "site"), answer))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
        pytest.fail("a writer calling another writer of the folder it holds waited for itself")
    assert answer.get(timeout=5), "leaving an inner block released the outer one"


def _checking(folder: Path, seen: list[str], name: str, real: Callable[..., Any]) -> Callable[..., Any]:
    def call(*args: Any, **kwargs: Any) -> Any:
        seen.append(f"{name}: {'held' if _held_elsewhere(folder) else 'NOT HELD'}")
        return real(*args, **kwargs)
    return call


def test_data_docs_and_gx_stores_are_written_only_while_their_folder_is_held(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two files of one ingest run are validated at once on two workers: GX copies its static files into the site at
    # each build while the other run's publishing removes them (an OSError failed the file), and a new project's
    # suites and checkpoints are written by both.
    settings = Settings(home=tmp_path, database_url="sqlite://", clock=ManualClock(TEST_NOW))
    site, gx_root = settings.data_docs.resolve(), settings.gx_root.resolve()
    validation._project.cache_clear()
    seen: list[str] = []
    project = validation._project(gx_root, site)
    monkeypatch.setattr(project.context, "build_data_docs",
                        _checking(site, seen, "GX builds the site", project.context.build_data_docs))
    monkeypatch.setattr(datadocs, "_install_stylesheet",
                        _checking(site, seen, "the site's static files", datadocs._install_stylesheet))
    monkeypatch.setattr(validation, "_sync_checkpoint",
                        _checking(gx_root, seen, "GX stores the suite", validation._sync_checkpoint))
    frame = pd.DataFrame([x.offer("OF-1") | {"source_row": 2}])
    try:
        validation.validate_batch({"capacity_offers": frame}, batch_id="b", settings=settings)
    finally:
        validation._project.cache_clear()
    assert {s.split(":")[0] for s in seen} == {"GX builds the site", "the site's static files", "GX stores the suite"}
    assert all(s.endswith(": held") for s in seen), seen


def test_a_checkpoint_another_worker_stored_for_an_asset_this_process_has_not_loaded_is_synced_again(
        tmp_path: Path) -> None:
    # Two files of a new home ingested at once: the other worker stored the checkpoint and its asset after this
    # process loaded the project; reading that checkpoint through the stale context failed the file.
    settings = Settings(home=tmp_path, database_url="sqlite://", clock=ManualClock(TEST_NOW))
    site, gx_root = settings.data_docs.resolve(), settings.gx_root.resolve()
    site.mkdir(parents=True, exist_ok=True)
    validation._project.cache_clear()
    try:
        stale = validation._project(gx_root, site)
        validation._project.cache_clear()
        frame = pd.DataFrame([x.offer("OF-1") | {"source_row": 2}])
        validation.validate_batch({"capacity_offers": frame}, batch_id="b", settings=settings)  # the other worker
        suite = validation.load_suite_dict("capacity_offers", settings.expectations_dir)
        checkpoint = validation._checkpoint(stale, "capacity_offers", suite)
        assert checkpoint.name == "rematch_capacity_offers"
    finally:
        validation._project.cache_clear()
