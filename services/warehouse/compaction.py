"""Online compaction: merge small files while writers write and readers read.

One owner: a Compactor compacts only while it holds a non-blocking ``flock`` on
``<warehouse>/.compaction.lock``; several processes may run one, the lock dies
with its holder and the next run of another takes over.

Exactly once without stopping anyone: a merged file is written under a hidden
``.compact-*.tmp`` name, fsynced and renamed to ``*.merged.parquet`` (the
commit). Its Parquet metadata ``hyp.covers`` names every file it replaces
(transitively, for files still on disk), and readers drop covered files
(live.py). Covered files are deleted only ``grace_s`` after the commit, so a
reader that listed them a moment before can still open them; any later run
deletes leftovers and the temporary files of a crashed run.

Policy, size-tiered: files sit in tiers by size (64 KiB, x8 per tier); a tier
with ``min_files`` files is merged, oldest first, into files of at most
``max_bytes``; so the file count stays about ``min_files`` per tier and each row
is rewritten about once per tier. A partition without a new file for
``quiet_s`` is merged whole (a file more than 8x all the rest stays as it is).

Tables: the warehouse's own (tables.py) and those made through ``hyp bigquery``'s API
(``_bigquery/<project>/<dataset>/tables/<table>/[data-<generation>/]date=*``). An API table has
no schema here: a merge writes the union of its sources' columns (a column added to the table
later reads as null in older rows, as it does before the merge).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import os
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from services.common.files import fsync_dir
from services.warehouse.live import (
    COVERS_KEY,
    MERGED_SUFFIX,
    covers,
    damage,
    is_merged,
    partitions,
    quarantine,
    record_checked,
)
from services.warehouse.tables import TABLES, WarehouseError
from services.warehouse.writer import to_arrow

log = logging.getLogger(__name__)

LOCK_NAME = ".compaction.lock"
# In an API table's data folder (the parent of its date=* partitions): a DML statement of hyp bigquery holds it
# from listing to commit; a merge takes it without waiting and skips the partition while a statement has it.
TABLE_LOCK_NAME = ".dml.lock"
TMP_PREFIX = ".compact-"
API_ROOT = "_bigquery"  # where hyp bigquery keeps its tables (services/bigquery/catalog.py ROOT)
WRITER_TMP_STALE_S = 3600.0  # a writer's hidden temp file this old belongs to a crashed writer
TIER_BASE_BYTES = 64 * 1024
TIER_FACTOR = 8
ROW_GROUP_ROWS = 16_384  # rows buffered before a row group is written: bounds memory per merge
_TS = re.compile(r"^part-(\d{8}T\d{6,12})-")

# Steps reported to ``on_step`` (tests kill the process at each one).
STEPS = ("temp_written", "committed", "source_deleted", "swept")


class Compactor:
    """Merges each table's small files under one owner; see the module docstring."""

    def __init__(
        self,
        warehouse_dir: str | os.PathLike[str],
        *,
        interval_s: float = 30.0,
        grace_s: float = 60.0,
        min_files: int = 8,
        max_bytes: int = 128 * 2**20,
        quiet_s: float = 600.0,
        on_step: Callable[[str], None] | None = None,
    ) -> None:
        self.root = Path(warehouse_dir)
        self.interval_s = interval_s
        self.grace_s = grace_s
        self.min_files = max(2, min_files)
        self.max_bytes = max_bytes
        self.quiet_s = quiet_s
        self._on_step = on_step
        self._lock_fd: int | None = None
        self._run_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        """Run ``run_once`` now and then every ``interval_s`` in a daemon thread."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="warehouse-compactor", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the thread (after the merge in progress, if any) and give up ownership."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._run_lock:
            self._release()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # keep compacting later; the service it runs in goes on
                log.warning("warehouse compaction failed: %s", exc)
            self._stop.wait(self.interval_s)

    @property
    def owner(self) -> bool:
        """Whether this Compactor holds the warehouse's compaction lock."""
        return self._lock_fd is not None

    def _acquire(self) -> bool:
        if self._lock_fd is not None:
            return True
        if not self.root.is_dir():
            return False
        fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._lock_fd = fd
        log.info("warehouse compaction: this process (pid %d) owns %s", os.getpid(), self.root / LOCK_NAME)
        return True

    def _release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the last descriptor releases the flock
            self._lock_fd = None

    def _step(self, name: str) -> None:
        if self._on_step is not None:
            self._on_step(name)

    # -- one run -------------------------------------------------------------------------------

    def run_once(self) -> dict[str, int]:
        """Compact every table once if this Compactor owns the lock; return counts.

        Counts: ``merged`` (files written), ``files_merged`` (their sources),
        ``files_removed`` (covered files deleted), ``temp_removed``, ``live_files``
        (after the run), ``skipped`` (1 if another process owns compaction), ``dml_busy`` (partitions of API
        tables left for the next run because a DML statement held the table).
        """
        counts: Counter[str] = Counter(
            merged=0, files_merged=0, files_removed=0, temp_removed=0, live_files=0, skipped=0, dml_busy=0
        )
        with self._run_lock:
            if not self._acquire():
                counts["skipped"] = 1
                return dict(counts)
            for name, schema in self._tables():
                for partition in partitions(self.root, name):
                    try:
                        with _table_lock(partition.parent, schema is None) as free:
                            if free:
                                self._partition(name, partition, counts, schema)
                            else:
                                counts["dml_busy"] += 1
                    except (OSError, WarehouseError, pa.ArrowException) as exc:
                        log.warning("warehouse compaction: %s: %s", partition, exc)
        if counts["merged"]:
            # Arrow's allocator keeps what a merge freed for reuse; in a long-running writer (the detector, the
            # processor) that is tens of MiB held between merges every half minute: hand it back to the system
            pa.default_memory_pool().release_unused()
        if counts["merged"] or counts["files_removed"]:
            log.debug("warehouse compaction: %s", dict(counts))
        return dict(counts)

    def _tables(self) -> list[tuple[str, pa.Schema | None]]:
        """(folder relative to the warehouse, schema) of every table; None: an API table's (its files')."""
        out: list[tuple[str, pa.Schema | None]] = [(name, spec.schema) for name, spec in TABLES.items()]
        for meta in sorted(self.root.glob(f"{API_ROOT}/*/*/tables/*/table.json")):
            folder = meta.parent.relative_to(self.root)
            out.append((str(folder), None))
            out += [(str(folder / d.name), None) for d in sorted(meta.parent.glob("data-*")) if d.is_dir()]
        return out

    def _partition(
        self, table_name: str, partition: Path, counts: Counter[str], schema: pa.Schema | None = None
    ) -> None:
        now = time.time()
        stats: dict[str, os.stat_result] = {}
        with os.scandir(partition) as it:
            for entry in it:
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue
                if entry.name.startswith("."):
                    stale = entry.name.startswith(TMP_PREFIX) or now - st.st_mtime > WRITER_TMP_STALE_S
                    if entry.name.endswith(".tmp") and stale:
                        _unlink(Path(entry.path))
                        counts["temp_removed"] += 1
                elif entry.name.endswith(".parquet"):
                    stats[entry.name] = st
        damaged = [n for n in stats if damage(partition / n) is not None]
        for name in damaged:  # never merged (nor deleted): moved aside, the rest of the partition is compacted
            quarantine(partition / name, damage(partition / name) or "")
            del stats[name]
        names = sorted(stats, key=lambda n: _order(n, stats[n]))
        covered_since = self._covered(partition, names, stats)
        live = [n for n in names if n not in covered_since]
        for group in self._plan(live, stats, now):
            merged = self._merge(table_name, partition, group, set(names), schema)
            counts["merged"] += 1
            counts["files_merged"] += len(group)
            st = (partition / merged).stat()
            stats[merged] = st
            live = [n for n in live if n not in group] + [merged]
            for n in covers(partition / merged):
                covered_since[n] = min(covered_since.get(n, math.inf), _commit_time(st))
        now = time.time()
        for name, since in sorted(covered_since.items()):
            if name in stats and now - since >= self.grace_s:
                _unlink(partition / name)
                counts["files_removed"] += 1
                self._step("source_deleted")
        self._step("swept")
        counts["live_files"] += len(live)

    def _covered(self, partition: Path, names: list[str], stats: dict[str, os.stat_result]) -> dict[str, float]:
        """Covered name -> commit time of the earliest merged file on disk that covers it."""
        since: dict[str, float] = {}
        for name in names:
            if is_merged(name):
                t = _commit_time(stats[name])
                for c in covers(partition / name):
                    since[c] = min(since.get(c, math.inf), t)
        return since

    def _plan(self, live: list[str], stats: dict[str, os.stat_result], now: float) -> list[list[str]]:
        """Groups of live files (each in time order) to merge now."""
        small = [n for n in live if stats[n].st_size < self.max_bytes]
        if live and all(now - stats[n].st_mtime >= self.quiet_s for n in live):
            by_size = sorted(small, key=lambda n: stats[n].st_size, reverse=True)
            while len(by_size) >= 2 and stats[by_size[0]].st_size > 8 * sum(stats[n].st_size for n in by_size[1:]):
                by_size.pop(0)
            keep = set(by_size)
            return self._batches([n for n in small if n in keep], stats)
        tiers: dict[int, list[str]] = {}
        for n in small:
            tiers.setdefault(_tier(stats[n].st_size), []).append(n)
        groups: list[list[str]] = []
        for _, members in sorted(tiers.items()):
            if len(members) >= self.min_files:
                groups.extend(self._batches(members, stats))
        return groups

    def _batches(self, names: list[str], stats: dict[str, os.stat_result]) -> list[list[str]]:
        """Consecutive runs of ``names`` of at most ``max_bytes`` each; runs of one file are dropped."""
        out: list[list[str]] = []
        batch: list[str] = []
        size = 0
        for n in names:
            if batch and size + stats[n].st_size > self.max_bytes:
                out.append(batch)
                batch, size = [], 0
            batch.append(n)
            size += stats[n].st_size
        out.append(batch)
        return [b for b in out if len(b) >= 2]

    def _merge(
        self, table_name: str, partition: Path, sources: list[str], on_disk: set[str], known: pa.Schema | None = None
    ) -> str:
        """Write the sources' rows, in order, to one merged file; commit it by rename; return its name.

        ``known``: the table's schema (the warehouse's tables); None: the union of the sources' (API tables)."""
        covered = set(sources)
        for name in sources:  # transitively, so deleting any covered file never uncovers another
            covered |= covers(partition / name) & on_disk
        m = _TS.match(sources[0])
        stamp = m.group(1) if m else f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}"
        final = f"part-{stamp}-{uuid.uuid4().hex[:12]}{MERGED_SUFFIX}"
        tmp = partition / f"{TMP_PREFIX}{uuid.uuid4().hex}.tmp"
        base = known if known is not None else _union([pq.read_schema(partition / n) for n in sources])
        schema = base.with_metadata({COVERS_KEY: json.dumps(sorted(covered)).encode()})
        try:
            with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
                buffered: list[pa.Table] = []
                rows = 0
                for name in sources:
                    for read in _row_groups(partition / name):
                        part = to_arrow(table_name, read) if known is not None else _conform(read, base)
                        part = part.replace_schema_metadata(schema.metadata)
                        buffered.append(part)
                        rows += part.num_rows
                        if rows >= ROW_GROUP_ROWS:
                            writer.write_table(pa.concat_tables(buffered))
                            buffered, rows = [], 0
                if buffered:
                    writer.write_table(pa.concat_tables(buffered))
            with open(tmp, "rb") as fh:
                os.fsync(fh.fileno())
        except BaseException:
            _unlink(tmp)
            raise
        self._step("temp_written")
        os.rename(tmp, partition / final)
        fsync_dir(partition)
        self._step("committed")
        record_checked(partition / final)  # written here from decoded rows: readers need not decode it again
        return final


def _row_groups(path: Path) -> Iterator[pa.Table]:
    """The file's row groups; a file whose data cannot be read (a damaged page behind an intact footer) is moved
    aside (live.quarantine) before the error goes on, so the next run merges the partition without it."""
    pf = pq.ParquetFile(path)
    for i in range(pf.num_row_groups):
        try:
            group = pf.read_row_group(i)
        except FileNotFoundError:
            raise
        except (pa.ArrowException, OSError) as exc:
            quarantine(path, f"row group {i}: {type(exc).__name__}: {exc}")
            raise
        yield group


def _order(name: str, st: os.stat_result) -> tuple[str, str, int]:
    """Time order of files: the second in the name, then the write time within that second."""
    m = _TS.match(name)
    return (m.group(1) if m else "", "" if m else name, st.st_mtime_ns)


def _tier(size: int) -> int:
    if size < TIER_BASE_BYTES:
        return 0
    return 1 + int(math.log(size / TIER_BASE_BYTES, TIER_FACTOR))


def _commit_time(st: os.stat_result) -> float:
    # the rename that commits a file updates its ctime; mtime is when its bytes were written
    return max(st.st_mtime, st.st_ctime)


def _union(schemas: list[pa.Schema]) -> pa.Schema:
    """The columns of every schema, in first-seen order; one some lack is nullable (they read as null)."""
    plain = [s.remove_metadata() for s in schemas]
    union = pa.unify_schemas(plain)
    for i, field in enumerate(union):
        if not field.nullable and any(field.name not in s.names for s in plain):
            union = union.set(i, field.with_nullable(True))
    return union


def _conform(data: pa.Table, schema: pa.Schema) -> pa.Table:
    """``data`` with exactly ``schema``'s columns: those it lacks as nulls."""
    n = data.num_rows
    columns = [data.column(f.name).cast(f.type) if f.name in data.column_names else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(columns, schema=schema)


@contextlib.contextmanager
def _table_lock(folder: Path, api_table: bool) -> Iterator[bool]:
    """True while this process holds ``TABLE_LOCK_NAME`` in an API table's data folder (False: a DML statement
    holds it; built-in tables, which DML never rewrites, need no lock)."""
    if not api_table:
        yield True
        return
    fd = os.open(folder / TABLE_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)
