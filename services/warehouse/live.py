"""Which Parquet files of a partition are live: committed and not replaced by a merged file.

Writers and the compactor commit a file by renaming it from a hidden temporary
name, so a partition folder's ``*.parquet`` names are whole files. A merged file
(``*.merged.parquet``) lists the files it replaces in its Parquet key-value
metadata under ``hyp.covers``; a reader drops every name in the union of the
covers of the merged files it sees, so each row is read exactly once whether or
not the replaced files have been deleted yet. Files are immutable and their
names unique, so covers are cached by name while the file is there.

A file whose footer cannot be read (a truncated tail, zeroed or garbage bytes where the footer is: what a
power cut or a bad disk leaves) is not served: it is moved aside to ``<table>/.quarantine/<partition>/``
with a ``.reason`` file beside it and a warning in the log, and the query runs over what is intact. A
corrupt merged file uncovers the files it replaced, so its rows come back from them while they are on
disk (the compactor deletes them only after its grace period). A file whose footer reads but a page of which
does not decode (flipped bytes in a column chunk) is moved aside the same way, so a query never names it. Footers
are checked once per file (by path, mtime and size) and process; a file's pages are decoded once, the first time
a listing names it, and recorded in the partition's ``CHECKED_NAME`` for the next process (``hyp bigquery``
checks its tables at start, in the background).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

MERGED_SUFFIX = ".merged.parquet"
COVERS_KEY = b"hyp.covers"
INSERT_IDS_KEY = "hyp.insert_ids"  # the BigQuery insertIds of a file's rows (writer.write_atomic), JSON
QUARANTINE_DIR = ".quarantine"
RECHECK_S = 1.0  # a partition's listing is reused at most this long, even when its folder looks unchanged
RACY_NS = 100_000_000  # a folder changed this close to its listing may have changed again in the same tick
MAX_LISTINGS = 65_536  # partitions whose listing is kept (all are dropped past it)
CHECKED_NAME = ".pages-checked.json"  # in a partition: its files whose pages decoded (name -> [size, mtime_ns])
PAGE_CHECK_ROWS = 65_536  # rows decoded at a time by the page check (bounds its memory)
MAX_SCHEMAS = 256  # distinct schemas interned for the footer cache (the table is emptied past it)

log = logging.getLogger(__name__)


def partitions(warehouse_dir: str | os.PathLike[str], table_name: str) -> list[Path]:
    """The table's ``date=*`` folders, oldest first."""
    try:
        with os.scandir(Path(warehouse_dir) / table_name) as it:
            return sorted(Path(e.path) for e in it if e.name.startswith("date=") and e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def committed(partition: Path) -> list[str]:
    """Names of the committed Parquet files in a partition, in name (= time) order. What this process knew of
    the partition's files that are gone is forgotten (:class:`_PerFile`): every reader and the compactor list
    a partition through here."""
    try:
        with os.scandir(partition) as it:
            names = sorted(e.name for e in it if e.name.endswith(".parquet") and not e.name.startswith("."))
    except (FileNotFoundError, NotADirectoryError):
        names = []
    for store in (_covers_of, _footers, _pages_ok):
        store.retain(partition, names)
    return names


def is_merged(name: str) -> bool:
    return name.endswith(MERGED_SUFFIX)


class _PerFile:
    """Facts this process learned about committed files, by partition folder and file name.

    Kept only while the file is there: each listing of a partition (:func:`live`) drops the entries of names it
    no longer finds, so the store holds the files on disk, not every file the process ever saw (compaction
    replaces a busy table's files every few seconds: a cache bounded by a count kept tens of thousands of gone
    files' entries, the console's and detector's growth in round 23's soak). Past ``MAX_LISTINGS`` entries
    everything is dropped (a safety bound for partitions nobody lists again)."""

    def __init__(self) -> None:
        self._by_partition: dict[str, dict[str, Any]] = {}
        self._entries = 0
        self._lock = threading.Lock()

    def get(self, path: str) -> Any:
        folder, _, name = path.rpartition(os.sep)
        with self._lock:
            return self._by_partition.get(folder, {}).get(name)

    def put(self, path: str, value: Any) -> None:
        folder, _, name = path.rpartition(os.sep)
        with self._lock:
            if self._entries >= MAX_LISTINGS:
                self._by_partition.clear()
                self._entries = 0
            entries = self._by_partition.setdefault(folder, {})
            self._entries += name not in entries
            entries[name] = value

    def retain(self, partition: Path, names: Iterable[str]) -> None:
        """Forget the partition's files not in ``names`` (what a listing found there)."""
        with self._lock:
            entries = self._by_partition.get(str(partition))
            if entries:
                present = set(names)
                for gone in [n for n in entries if n not in present]:
                    del entries[gone]
                    self._entries -= 1

    def clear(self) -> None:
        with self._lock:
            self._by_partition.clear()
            self._entries = 0

    def __len__(self) -> int:
        return self._entries


_covers_of = _PerFile()  # merged file -> the names it covers (merged files are immutable)
_footers = _PerFile()  # file -> (mtime_ns, size, (rows, schema) or why its footer cannot be read)
_pages_ok = _PerFile()  # file -> (mtime_ns, size) when its pages decoded


def _covers(path: str) -> frozenset[str]:
    known = _covers_of.get(path)
    if known is None:
        meta = pq.read_metadata(path).metadata or {}
        raw = meta.get(COVERS_KEY)
        known = frozenset(json.loads(raw)) if raw else frozenset()
        _covers_of.put(path, known)
    return known


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


_schemas: dict[bytes, pa.Schema] = {}  # one instance per distinct schema, by its serialized form (see _interned)
_schemas_lock = threading.Lock()


def _interned(schema: pa.Schema) -> pa.Schema:
    """The one instance of ``schema`` that the footer cache shares between files.

    A table's files nearly all have the same schema, and an Arrow schema built from a footer costs about 6 KiB of
    native memory: one per cached footer was about 110 MiB at the cache's cap. Keyed by the serialized schema
    (names, types, nullability and field metadata: what ``==`` would partly ignore), and bounded: past
    ``MAX_SCHEMAS`` distinct schemas the table is emptied (entries already cached keep the instance they hold)."""
    key = schema.serialize().to_pybytes()
    with _schemas_lock:
        held = _schemas.get(key)
        if held is None:
            if len(_schemas) >= MAX_SCHEMAS:
                _schemas.clear()
            held = _schemas[key] = schema
        return held


def _footer(path: str, mtime_ns: int, size: int) -> tuple[int, pa.Schema] | str:
    """The file's rows and Arrow schema from its footer, or why the footer cannot be read (read once per file
    while its mtime and size stay, for the damage check and for hyp bigquery's catalog alike). Files with the
    same schema share one schema object (:func:`_interned`)."""
    known = _footers.get(path)
    if known is not None and known[0] == mtime_ns and known[1] == size:
        return known[2]
    read = _read_footer(path)
    _footers.put(path, (mtime_ns, size, read))
    return read


def _read_footer(path: str) -> tuple[int, pa.Schema] | str:
    try:
        meta = pq.read_metadata(path)
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return meta.num_rows, _interned(meta.schema.to_arrow_schema().remove_metadata())


def footer(path: Path) -> tuple[int, int, pa.Schema | str]:
    """(size, rows, schema) of the file, schema being the reason instead when its footer cannot be read (rows
    then 0). FileNotFoundError when it is gone."""
    st = path.stat()
    read = _footer(str(path), st.st_mtime_ns, st.st_size)
    return (st.st_size, 0, read) if isinstance(read, str) else (st.st_size, *read)


def _decode(path: Path) -> str | None:
    """Why a page of the file cannot be decoded (flipped bytes behind an intact footer), or None: every page
    decoded, a batch at a time, and dropped."""
    try:
        for _ in pq.ParquetFile(path).iter_batches(batch_size=PAGE_CHECK_ROWS, use_threads=False):
            pass
    except FileNotFoundError:
        raise
    except (pa.ArrowException, OSError) as exc:
        return f"a page cannot be read: {type(exc).__name__}: {exc}"
    return None


_check_lock = threading.Lock()


def _read_checked(partition: Path) -> dict[str, list[int]]:
    try:
        data = json.loads((partition / CHECKED_NAME).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_checked(partition: Path, checked: dict[str, list[int]]) -> None:
    """Replace the partition's record of checked files (best effort: a reader may not be able to write)."""
    tmp = partition / f"{CHECKED_NAME}.{uuid.uuid4().hex}.tmp"
    try:
        tmp.write_text(json.dumps(checked, separators=(",", ":")))
        os.replace(tmp, partition / CHECKED_NAME)
    except OSError:
        tmp.unlink(missing_ok=True)


def page_damage(partition: Path, names: Iterable[str]) -> dict[str, str]:
    """Why a page of each of ``names`` (files of ``partition`` whose footers read) cannot be decoded, for those
    that cannot: what DuckDB would fail a whole query on, found before a query names the file. Each file is
    decoded once: a process remembers the files it checked, and the partition's ``CHECKED_NAME`` file records
    them for the next process (``hyp sql`` is a new process per call), by name, size and mtime, so a file
    changed in place is checked again. FileNotFoundError when one is gone."""
    with _check_lock:  # one check at a time: a query waits for the start's background check, not redoes it
        return _page_damage(partition, list(names))


def _page_damage(partition: Path, names: list[str]) -> dict[str, str]:
    damaged: dict[str, str] = {}
    checked: dict[str, list[int]] | None = None
    fresh: dict[str, list[int]] = {}
    for name in names:
        path = partition / name
        st = path.stat()
        key = (st.st_mtime_ns, st.st_size)
        if _pages_ok.get(str(path)) == key:
            continue
        if checked is None:
            checked = _read_checked(partition)
        if checked.get(name) != [st.st_size, st.st_mtime_ns]:
            reason = _decode(path)
            if reason is not None:
                damaged[name] = reason
                continue
            fresh[name] = [st.st_size, st.st_mtime_ns]
        _pages_ok.put(str(path), key)
    if fresh or damaged:
        kept = set(names) - set(damaged)
        _write_checked(partition, {n: k for n, k in ((checked or {}) | fresh).items() if n in kept})
    return damaged


def record_checked(path: Path) -> None:
    """Record a file this process just wrote whole (a merged file, from decoded rows, fsynced) as checked."""
    st = path.stat()
    with _check_lock:
        present = set(committed(path.parent))
        checked = {n: k for n, k in _read_checked(path.parent).items() if n in present}
        _write_checked(path.parent, checked | {path.name: [st.st_size, st.st_mtime_ns]})
        _pages_ok.put(str(path), (st.st_mtime_ns, st.st_size))


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
    damaged = page_damage(partition, kept)
    for name, reason in damaged.items():
        quarantine(partition / name, reason)
    return [n for n in kept if n not in damaged]


def quarantined(warehouse_dir: str | os.PathLike[str], table_name: str) -> list[Path]:
    """The table's files moved aside as damaged."""
    return sorted((Path(warehouse_dir) / table_name / QUARANTINE_DIR).glob("*/*.parquet"))


def live(partition: Path) -> list[str]:
    """Live, intact file names of one partition; lists once more if a file vanished meanwhile. What this
    process knew of files no longer there is forgotten (:func:`committed`)."""
    for attempt in range(2):
        names = committed(partition)
        try:
            return live_names(partition, intact(partition, names))
        except FileNotFoundError:
            if attempt:
                raise
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class LiveFile:
    """A live file of a table and what its footer says: bytes, rows, Arrow schema."""

    path: Path
    size: int
    rows: int
    schema: pa.Schema


@dataclass(frozen=True)
class _Listing:
    mtime_ns: int  # the partition folder's mtime when it was listed
    listed_ns: int  # wall clock when the listing began
    at: float  # monotonic clock, the same moment
    files: tuple[LiveFile, ...]


_listings: dict[str, _Listing] = {}
_listings_lock = threading.Lock()


def _listed(partition: Path) -> tuple[LiveFile, ...]:
    """The live files of a partition, from the last listing while its folder is unchanged (a commit, a merge,
    a deletion or a quarantine renames a file in or out of it, which changes its mtime) and younger than
    ``RECHECK_S``; else listed, checked and footed again. A listing begun within ``RACY_NS`` of the folder's
    mtime is not reused (a rename in the same clock tick would leave the mtime as it was)."""
    try:
        st = os.stat(partition)
    except FileNotFoundError:
        return ()
    key, now = str(partition), time.monotonic()
    hit = _listings.get(key)
    if (
        hit is not None
        and hit.mtime_ns == st.st_mtime_ns
        and now - hit.at < RECHECK_S
        and hit.listed_ns - st.st_mtime_ns > RACY_NS
    ):
        return hit.files
    listed_ns = time.time_ns()
    for attempt in range(2):
        found: list[LiveFile] = []
        try:
            for name in live(partition):
                size, rows, schema = footer(partition / name)
                if not isinstance(schema, str):  # damaged meanwhile: the next listing moves it aside
                    found.append(LiveFile(partition / name, size, rows, schema))
        except FileNotFoundError:  # merged and deleted meanwhile: list again, and keep nothing
            if attempt == 0:
                continue
            raise
        break
    with _listings_lock:
        if len(_listings) >= MAX_LISTINGS:
            _listings.clear()
        _listings[key] = _Listing(st.st_mtime_ns, listed_ns, now, tuple(found))
    return tuple(found)


def live_footers(warehouse_dir: str | os.PathLike[str], table_name: str) -> list[LiveFile]:
    """Live files of a table with their footers, partition by partition, in time order. A query over a table
    whose partitions did not change reads them from memory: no per-file stat, footer or damage check."""
    return [f for p in partitions(warehouse_dir, table_name) for f in _listed(p)]


def live_files(warehouse_dir: str | os.PathLike[str], table_name: str) -> list[Path]:
    """Live files of a table, partition by partition, in time order."""
    return [f.path for f in live_footers(warehouse_dir, table_name)]
