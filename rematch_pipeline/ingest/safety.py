"""Refuse hostile files before any parser sees them: size, ZIP path traversal and bombs, macros, external links."""

from __future__ import annotations

import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path


class RefusedFileError(ValueError):
    """The file is refused for safety reasons; `rule` names the reason for the quarantine table."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule


@dataclass(frozen=True)
class Limits:
    """What a file may weigh; configured by REMATCH_MAX_FILE_MB and its siblings (config.load_settings)."""

    max_file_bytes: int = 200 * 1024 * 1024
    max_zip_ratio: float = 200.0  # uncompressed / compressed, per entry (spreadsheet XML compresses 10-50x)
    max_unzipped_bytes: int = 2 * 1024 * 1024 * 1024
    max_zip_entries: int = 10_000


# An entry below this size cannot be a bomb, whatever its ratio (a sheet of blanks compresses 1000x).
_RATIO_FLOOR_BYTES = 1024 * 1024
_DRIVE = re.compile(r"^[A-Za-z]:")


def check_size(path: Path, name: str, limits: Limits) -> None:
    size = path.stat().st_size
    if size > limits.max_file_bytes:
        raise RefusedFileError("file_too_large", f"{name}: {size / 2**20:.1f} MiB is larger than the limit of "
                                                 f"{limits.max_file_bytes / 2**20:.0f} MiB (REMATCH_MAX_FILE_MB); "
                                                 f"split the export into smaller files")
    if size == 0:
        raise RefusedFileError("file_empty", f"{name}: the file is empty")


def _unsafe_name(name: str) -> bool:
    norm = name.replace("\\", "/")
    return norm.startswith("/") or bool(_DRIVE.match(norm)) or ".." in norm.split("/")


# The compression methods Python's zipfile unpacks; any other fails only when an entry is read.
_READABLE_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})


def check_zip(zf: zipfile.ZipFile, name: str, limits: Limits, stored_bytes: int | None = None) -> None:
    """Path traversal, symbolic links, passwords, entry count, total size and compression ratio (per entry and of
    the whole archive, `stored_bytes` long); before anything is unpacked. The sizes are the ones the archive
    declares: reading never goes beyond them (a longer entry fails its checksum)."""
    infos = zf.infolist()
    if len(infos) > limits.max_zip_entries:
        raise RefusedFileError("zip_too_many_entries", f"{name}: {len(infos)} entries in the archive, more than "
                                                       f"the limit of {limits.max_zip_entries}")
    names = [info.filename for info in infos]
    if len(set(names)) != len(names):
        raise RefusedFileError("zip_duplicate_entries", f"{name}: the archive holds two entries of the same name, "
                                                        f"so which one is meant cannot be told; export it again")
    if any(info.flag_bits & 0x1 for info in infos):
        raise RefusedFileError("zip_encrypted", f"{name}: the archive is protected by a password; export it again "
                                                f"without a password and send the new file")
    unknown = sorted({info.compress_type for info in infos} - _READABLE_METHODS)
    if unknown:
        # Another tool's method (Deflate64, PPMd, ...): named by number, before anything is unpacked.
        raise RefusedFileError("zip_compression_method",
                               f"{name}: the archive is packed with a compression method this pipeline cannot "
                               f"read (method {', '.join(map(str, unknown))}); export it again as a standard ZIP "
                               f"(Deflate) and send the new file")
    total = 0
    for info in infos:
        if _unsafe_name(info.filename):
            raise RefusedFileError("zip_path_traversal", f"{name}: the archive entry {info.filename!r} points "
                                                         f"outside the archive (path traversal); refused")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise RefusedFileError("zip_path_traversal", f"{name}: the archive entry {info.filename!r} is a "
                                                         f"symbolic link; refused")
        total += info.file_size
        if info.file_size > _RATIO_FLOOR_BYTES:
            ratio = info.file_size / max(info.compress_size, 1)
            if ratio > limits.max_zip_ratio:
                raise RefusedFileError("zip_compression_ratio",
                                       f"{name}: the archive entry {info.filename!r} unpacks {ratio:.0f} times "
                                       f"larger than it is stored (limit {limits.max_zip_ratio:.0f}, "
                                       f"REMATCH_MAX_ZIP_RATIO); refused as a possible ZIP bomb")
    # Many small entries each under the per-entry floor can still make a bomb: the whole archive is held to the
    # same ratio.
    if stored_bytes and total > _RATIO_FLOOR_BYTES and total / stored_bytes > limits.max_zip_ratio:
        raise RefusedFileError("zip_compression_ratio",
                               f"{name}: the archive unpacks {total / stored_bytes:.0f} times larger than it is "
                               f"stored (limit {limits.max_zip_ratio:.0f}, REMATCH_MAX_ZIP_RATIO); refused as a "
                               f"possible ZIP bomb")
    if total > limits.max_unzipped_bytes:
        raise RefusedFileError("zip_too_large", f"{name}: the archive unpacks to {total / 2**20:.0f} MiB, more "
                                                f"than the limit of {limits.max_unzipped_bytes / 2**20:.0f} MiB "
                                                f"(REMATCH_MAX_UNZIPPED_MB)")


def check_xlsx(zf: zipfile.ZipFile, name: str) -> None:
    """Workbooks with macros, external workbook links or external data connections are refused, not opened."""
    names = zf.namelist()
    lowered = [n.lower() for n in names]
    content_types = zf.read("[Content_Types].xml") if "[Content_Types].xml" in names else b""
    if (any(n.endswith("vbaproject.bin") or n.startswith("xl/macrosheets/") for n in lowered)
            or b"macroEnabled" in content_types or b"vbaProject" in content_types):
        raise RefusedFileError("xlsx_macros", f"{name}: the workbook contains macros (VBA); save it as a plain "
                                              f".xlsx workbook without macros and send it again")
    if any(n.startswith(("xl/externallinks/", "xl/connections.xml")) for n in lowered):
        raise RefusedFileError("xlsx_external_links", f"{name}: the workbook links to other workbooks or external "
                                                      f"data sources; paste the values only and send it again")
