"""Which Parquet files of a partition are live: committed and not replaced by a merged file.

Writers and the compactor commit a file by renaming it from a hidden temporary
name, so a partition folder's ``*.parquet`` names are whole files. A merged file
(``*.merged.parquet``) lists the files it replaces in its Parquet key-value
metadata under ``hyp.covers``; a reader drops every name in the union of the
covers of the merged files it sees, so each row is read exactly once whether or
not the replaced files have been deleted yet. Files are immutable and their
names unique, so covers are cached by path (bounded).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import pyarrow.parquet as pq

MERGED_SUFFIX = ".merged.parquet"
COVERS_KEY = b"hyp.covers"


def partitions(warehouse_dir: str | os.PathLike[str], table_name: str) -> list[Path]:
    """The table's ``date=*`` folders, oldest first."""
    try:
        with os.scandir(Path(warehouse_dir) / table_name) as it:
            return sorted(Path(e.path) for e in it if e.name.startswith("date=") and e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def committed(partition: Path) -> list[str]:
    """Names of the committed Parquet files in a partition, in name (= time) order."""
    try:
        with os.scandir(partition) as it:
            return sorted(e.name for e in it if e.name.endswith(".parquet") and not e.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        return []


def is_merged(name: str) -> bool:
    return name.endswith(MERGED_SUFFIX)


@lru_cache(maxsize=4096)
def _covers(path: str) -> frozenset[str]:
    meta = pq.read_metadata(path).metadata or {}
    raw = meta.get(COVERS_KEY)
    return frozenset(json.loads(raw)) if raw else frozenset()


def covers(path: Path) -> frozenset[str]:
    """Names of the files a merged file replaces (empty for any other file)."""
    return _covers(str(path)) if is_merged(path.name) else frozenset()


def live_names(partition: Path, names: Iterable[str]) -> list[str]:
    """The names left after dropping every file covered by a listed merged file.

    Raises FileNotFoundError if a listed merged file vanished (the caller lists again).
    """
    names = list(names)
    covered: set[str] = set()
    for name in names:
        if is_merged(name):
            covered |= _covers(str(partition / name))
    return [n for n in names if n not in covered]


def live(partition: Path) -> list[str]:
    """Live file names of one partition; lists once more if a merged file vanished meanwhile."""
    try:
        return live_names(partition, committed(partition))
    except FileNotFoundError:
        return live_names(partition, committed(partition))


def live_files(warehouse_dir: str | os.PathLike[str], table_name: str) -> list[Path]:
    """Live files of a table, partition by partition, in time order."""
    return [p / name for p in partitions(warehouse_dir, table_name) for name in live(p)]
