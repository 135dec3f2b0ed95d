"""Files that are the same bytes for the same content: fixed timestamps in XLSX and ZIP, written atomically."""

from __future__ import annotations

import io
import os
import tempfile
import zipfile
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.writer.excel import ExcelWriter

# openpyxl and zipfile would stamp the current time: a fixed one instead, so a file says nothing of when it was made.
FIXED_TIME = datetime(2026, 1, 1, 0, 0, 0)


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """Fixed ZIP timestamps, attributes and a stable entry order ([Content_Types].xml first, as XLSX wants)."""
    order = sorted(entries, key=lambda n: (n != "[Content_Types].xml", n))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for name in order:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 0
            info.external_attr = 0
            out.writestr(info, entries[name], compresslevel=6)
    return buf.getvalue()


def workbook_bytes(wb: Workbook, creator: str) -> bytes:
    """An openpyxl workbook as XLSX bytes with fixed document and ZIP timestamps."""
    wb.properties.creator = creator
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    raw = io.BytesIO()
    # ExcelWriter directly (not wb.save), which would stamp `modified` with the current time; stored, not deflated,
    # since zip_bytes compresses each entry once.
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED) as archive:
        ExcelWriter(wb, archive).save()
    with zipfile.ZipFile(raw) as archive:
        return zip_bytes({name: archive.read(name) for name in archive.namelist()})


def write_atomically(path: Path, data: bytes) -> None:
    """Write `path` whole or not at all (a reader never sees half a file)."""
    # A temporary name of its own per writer: two writers of the same file never share a partial one.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:40]}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp_name, 0o644)  # what a plain write gives; mkstemp's own is private to the owner
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
