"""File-system durability shared by every store (Pub/Sub log, warehouse, Cloud Storage, DML rewrites)."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """fsync a directory, so that names created, renamed or removed in it survive a power cut."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably: a hidden temporary file beside it, fsynced, renamed
    over it, the folder fsynced. A crash leaves the old file or the new one; a write the disk refuses leaves the
    old one and no temporary file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
