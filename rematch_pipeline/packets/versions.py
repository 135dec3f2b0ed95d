"""Versioned documents (packets, letters): the same content is written once, a changed one becomes version n+1."""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any, Protocol

from rematch_pipeline import progress
from rematch_pipeline.config import Settings
from rematch_pipeline.repository import Ledger, unit_of_work

log = logging.getLogger(__name__)


class Files(Protocol):
    """What writing a packet or a letter returns."""

    @property
    def html_path(self) -> Path: ...
    @property
    def pdf_path(self) -> Path: ...
    @property
    def html_sha256(self) -> str: ...
    @property
    def pdf_sha256(self) -> str: ...


def files_not_as_recorded(row: Any) -> bool:
    """Whether a recorded version's files are gone (retention deleted them, or the outbox lost them) or its HTML no
    longer is what was rendered (edited by hand): either way rendering writes them again."""
    html = Path(row.html_path)
    if not (html.is_file() and Path(row.pdf_path).is_file()):
        return True
    return hashlib.sha256(html.read_bytes()).hexdigest() != row.sha256


RESTORE_PREFIX = ".restore-"
RENDER_PREFIX = ".render-"  # where render processes write, inside the outbox (the same file system)


def restore(row: Any, write: Callable[[Path], Files], settings: Settings, actor: str, event: str,
            subject: str) -> None:
    """Write a recorded version's files again, at the paths its row holds, and record `event` in the audit trail.

    Only when the new HTML hashes to the row's sha256 (the printer is deterministic, so the PDF is that version's
    too). Written aside first, so restoring an older version never touches the latest one's files at the plain names.
    """
    outbox = settings.outbox
    outbox.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=outbox, prefix=RESTORE_PREFIX) as tmp:
        files = write(Path(tmp))
        if files.html_sha256 != row.sha256:
            raise RuntimeError(f"{subject} v{row.version}: the content to restore is not the recorded one")
        for written, recorded in ((files.html_path, row.html_path), (files.pdf_path, row.pdf_path)):
            Path(recorded).parent.mkdir(parents=True, exist_ok=True)
            os.replace(written, recorded)
    with unit_of_work(settings) as uow:
        uow.audit(actor, event, subject, {"version": row.version, "html_sha256": files.html_sha256,
                                          "pdf_sha256": files.pdf_sha256}, settings.clock.now())
    log.info("%s v%d restored", subject, row.version)


def versioned(path: Path, version: int) -> Path:
    return path.with_name(f"{path.stem}_v{version}{path.suffix}")


def shelve(prior: Any) -> dict[str, str]:
    """Never overwrite silently: move the earlier version's files to a versioned name; returns their new paths.

    A target that already exists is from an interrupted earlier attempt, so the file at the plain name is not that
    version and stays where it is (the new version overwrites it).
    """
    kept: dict[str, str] = {}
    for column in ("html_path", "pdf_path"):
        old = Path(getattr(prior, column))
        target = versioned(old, prior.version)
        if old.exists() and not target.exists():
            old.rename(target)
        kept[column] = str(target)
    return kept


@dataclass(frozen=True)
class DocumentKind:
    """How one kind of document (packet, letter) is looked up in its ledger, written and recorded."""

    name: str  # plural, for progress lines: "packets", "offer letters"
    look_up: Callable[[Settings, Any], tuple[str, Ledger]]  # content hash, and what the ledger holds for it
    write: Callable[[Any, Path], Files]  # a module-level function: render workers are given it by name
    record: Callable[[Settings, Any, str, Ledger, dict[str, str], Files, str], dict[str, Any]]
    unchanged: Callable[[Settings, Any, Any, str], dict[str, Any]]


def render_one(settings: Settings, kind: DocumentKind, doc: Any, actor: str) -> dict[str, Any]:
    """Write one document unless the ledger already holds the same content; a changed one becomes a new version."""
    digest, ledger = kind.look_up(settings, doc)
    if ledger.same is not None:
        return kind.unchanged(settings, doc, ledger.same, actor)
    kept = shelve(ledger.prior) if ledger.prior is not None else {}
    return kind.record(settings, doc, digest, ledger, kept, kind.write(doc, settings.outbox), actor)


@dataclass(frozen=True)
class Placed:
    """A document's files moved from where a render process wrote them to their place in the outbox."""

    html_path: Path
    pdf_path: Path
    html_sha256: str
    pdf_sha256: str


def _place(files: Files, written_in: Path, outbox: Path) -> Placed:
    paths = []
    for path in (files.html_path, files.pdf_path):
        target = outbox / Path(path).relative_to(written_in)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
        paths.append(target)
    return Placed(paths[0], paths[1], files.html_sha256, files.pdf_sha256)


def render_all(settings: Settings, kind: DocumentKind, docs: Sequence[Any], actor: str,
               workers: int = 1) -> list[dict[str, Any]]:
    """Render documents, only the changed ones new; with workers > 1 the changed ones are printed in processes.

    Printing is CPU-bound, so threads would not help. Workers only write files, aside in the outbox; here, in one
    process and one document at a time, the earlier version is shelved, the new files moved into place and the
    ledger written. So the database never sees concurrent writers, and a document that fails to print leaves every
    document before it recorded and every one after it as it was.
    """
    if workers <= 1 or len(docs) < 2:
        return [render_one(settings, kind, d, actor)
                for d in progress.track(docs, f"rendering {kind.name}", total=len(docs), unit=kind.name)]
    from rematch_pipeline.packets.typeset import render_pool

    plans = [(d, *kind.look_up(settings, d)) for d in docs]
    todo = [(d, digest, ledger) for d, digest, ledger in plans if ledger.same is None]
    recorded: list[dict[str, Any]] = []
    if todo:  # a rerun where nothing changed starts no process
        settings.outbox.mkdir(parents=True, exist_ok=True)
        with (tempfile.TemporaryDirectory(dir=settings.outbox, prefix=RENDER_PREFIX) as tmp,
              render_pool(min(workers, len(todo))) as pool):
            printed = pool.map(kind.write, [d for d, *_ in todo], repeat(Path(tmp)),
                               chunksize=max(1, min(16, len(todo) // (8 * workers))))
            for (d, digest, ledger), files in zip(todo, progress.track(
                    printed, f"rendering changed {kind.name}", total=len(todo), unit=kind.name), strict=True):
                kept = shelve(ledger.prior) if ledger.prior is not None else {}
                recorded.append(kind.record(settings, d, digest, ledger, kept, _place(files, Path(tmp),
                                                                                      settings.outbox), actor))
    written = iter(recorded)
    return [next(written) if ledger.same is None else kind.unchanged(settings, d, ledger.same, actor)
            for d, _, ledger in plans]
