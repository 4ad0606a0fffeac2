"""Which Parquet files of a partition are live: committed and not replaced by a merged file.

Writers and the compactor commit a file by renaming it from a hidden temporary
name, so a partition folder's ``*.parquet`` names are whole files. A merged file
(``*.merged.parquet``) lists the files it replaces in its Parquet key-value
metadata under ``hyp.covers``; a reader drops every name in the union of the
covers of the merged files it sees, so each row is read exactly once whether or
not the replaced files have been deleted yet. Files are immutable and their
names unique, so covers are cached by path (bounded).

A file whose footer cannot be read (a truncated tail, zeroed or garbage bytes where the footer is: what a
power cut or a bad disk leaves) is not served: it is moved aside to ``<table>/.quarantine/<partition>/``
with a ``.reason`` file beside it and a warning in the log, and the query runs over what is intact. A
corrupt merged file uncovers the files it replaced, so its rows come back from them while they are on
disk (the compactor deletes them only after its grace period). Footers are checked once per file.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

MERGED_SUFFIX = ".merged.parquet"
COVERS_KEY = b"hyp.covers"
INSERT_IDS_KEY = "hyp.insert_ids"  # the BigQuery insertIds of a file's rows (writer.write_atomic), JSON
QUARANTINE_DIR = ".quarantine"

log = logging.getLogger(__name__)


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


def insert_ids(path: Path) -> list[str]:
    """The insertIds kept in a file's footer (none for a file written without them, or unreadable)."""
    try:
        raw = (pq.read_metadata(path).metadata or {}).get(INSERT_IDS_KEY.encode())
        return [str(i) for i in json.loads(raw)] if raw else []
    except (pa.ArrowException, OSError, ValueError):
        return []


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


@lru_cache(maxsize=16384)
def _footer(path: str, mtime_ns: int, size: int) -> tuple[int, pa.Schema] | str:
    """The file's rows and Arrow schema from its footer, or why the footer cannot be read (keyed by path, mtime
    and size: read once per file, for the damage check and for hyp bigquery's catalog alike)."""
    try:
        meta = pq.read_metadata(path)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return meta.num_rows, meta.schema.to_arrow_schema().remove_metadata()


def footer(path: Path) -> tuple[int, int, pa.Schema | str]:
    """(size, rows, schema) of the file, schema being the reason instead when its footer cannot be read (rows
    then 0). FileNotFoundError when it is gone."""
    st = path.stat()
    read = _footer(str(path), st.st_mtime_ns, st.st_size)
    return (st.st_size, 0, read) if isinstance(read, str) else (st.st_size, *read)


def damage(path: Path) -> str | None:
    """Why ``path`` is not a readable Parquet file, or None. FileNotFoundError when it is gone."""
    schema = footer(path)[2]
    return schema if isinstance(schema, str) else None


def quarantine(path: Path, reason: str) -> Path | None:
    """Move a damaged file of a partition to ``<table>/.quarantine/<partition>/`` with its reason; where it went
    (None when another reader moved it first)."""
    folder = path.parent.parent / QUARANTINE_DIR / path.parent.name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    try:
        os.replace(path, target)
    except FileNotFoundError:
        return None
    (folder / f"{path.name}.reason").write_text(reason + "\n")
    log.warning("warehouse: %s is damaged (%s); moved to %s, the rest of the table is served", path, reason, target)
    return target


def intact(partition: Path, names: Iterable[str]) -> list[str]:
    """``names`` without the damaged files (each moved aside by :func:`quarantine`). FileNotFoundError when
    one vanished meanwhile (the caller lists again)."""
    kept = []
    for name in names:
        reason = damage(partition / name)
        if reason is None:
            kept.append(name)
        else:
            quarantine(partition / name, reason)
    return kept


def quarantined(warehouse_dir: str | os.PathLike[str], table_name: str) -> list[Path]:
    """The table's files moved aside as damaged."""
    return sorted((Path(warehouse_dir) / table_name / QUARANTINE_DIR).glob("*/*.parquet"))


def live(partition: Path) -> list[str]:
    """Live, intact file names of one partition; lists once more if a file vanished meanwhile."""
    try:
        return live_names(partition, intact(partition, committed(partition)))
    except FileNotFoundError:
        return live_names(partition, intact(partition, committed(partition)))


def live_files(warehouse_dir: str | os.PathLike[str], table_name: str) -> list[Path]:
    """Live files of a table, partition by partition, in time order."""
    return [p / name for p in partitions(warehouse_dir, table_name) for name in live(p)]
