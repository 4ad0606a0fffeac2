"""Atomic files: write to a temporary file, fsync, rename into place, fsync the folder.

A rename is the commit point: a process killed at any moment leaves either the old file or the new
one at the final path, never a partial one. Temporary files live in one folder of the same file
system (``tmp/``), emptied at start.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from services.common.files import fsync_dir


def temp_path(tmp_dir: Path) -> Path:
    return tmp_dir / f"{uuid.uuid4().hex}.tmp"


def commit(tmp: Path, final: Path) -> None:
    """Move a finished (already fsynced) temporary file to ``final`` atomically and durably."""
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    fsync_dir(final.parent)


def spool(tmp_dir: Path, chunks: Iterable[bytes], seen: Callable[[bytes], object] | None = None) -> Path:
    """``chunks`` written to a new fsynced temporary file (each handed to ``seen`` too); its path. A write that
    fails (a full disk) leaves no temporary file."""
    tmp = temp_path(tmp_dir)
    try:
        with open(tmp, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                if seen is not None:
                    seen(chunk)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_bytes(tmp_dir: Path, final: Path, data: bytes) -> None:
    tmp = spool(tmp_dir, [data])
    try:
        commit(tmp, final)
    except BaseException:  # the old file stays, no temporary one is left
        tmp.unlink(missing_ok=True)
        raise


def write_json(tmp_dir: Path, final: Path, value: Any) -> None:
    write_bytes(tmp_dir, final, json.dumps(value, sort_keys=True).encode())


def read_json(path: Path) -> Any:
    return json.loads(path.read_bytes())
