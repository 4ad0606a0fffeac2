"""The detector's commit journal: each message's rows in ``dataflow`` and ``dataflow_anomaly`` exactly once.

One commit of the local read writes a file in each of the two tables and then acknowledges its messages.
Without a record, a kill -9 between the two renames (or after both, before the acknowledgement) has the
messages redelivered and written again: once more in one table, or in both. The journal closes that:

1. both tables' files are written and fsynced under hidden temporary names (``writer.prepare``);
2. one line is appended to the journal and fsynced: the commit's message ids and the files' temporary and
   final names. This is the commit point;
3. the files are renamed into place (``writer.publish``), then the messages are acknowledged.

A process that opens the journal (the next start of the same worker) first finishes every recorded commit:
a temporary file still there is renamed into place (roll forward), so a journalled commit is in both tables.
A torn last line (killed while writing it) is no commit: none of its files was renamed, and the compactor
sweeps their temporary files. The message ids of the commits of the last ``retain_s`` seconds (those loaded
at a start count from the start) are kept in memory, and a commit leaves out the rows of any message among
them (a redelivery after a lost acknowledgement, or after a lease that lapsed while the process was starved
of CPU), and of any message twice in one commit; those messages are acknowledged with the rest.

One journal per worker (``<warehouse>/.detector-commits/<key>.jsonl``, ``key`` the subscription and the worker
id), held with an exclusive ``flock``; a second process with the same key gets a journal of its own (key and
pid). The journal is rewritten with only the retained ids whenever it has grown past ``REWRITE_BYTES``.

Local-only: Dataflow's own exactly-once sinks work otherwise (shuffle-based deduplication); this is the local
read's equivalent, and it covers what a worker committed itself: a message one worker committed and another
worker receives again (its lease lapsed while the first was killed) is written again.
"""

from __future__ import annotations

import collections
import fcntl
import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from services.common.files import fsync_dir
from services.warehouse.writer import Prepared, publish

log = logging.getLogger(__name__)

FOLDER = ".detector-commits"
RETAIN_S = 300.0  # ids are kept this long after their commit (or after the start that loaded them)
REWRITE_BYTES = 8 * 2**20
# Test-only: ``HYP_DETECTOR_TEST_CRASH`` names a point at which a commit os._exit()s, as a kill -9 would stop it.
CRASH_ENV = "HYP_DETECTOR_TEST_CRASH"
CRASH_POINTS = ("after_record", "between_tables", "before_ack")
_CRASH = os.environ.get(CRASH_ENV, "")


class CommitJournal:
    """See the module docstring."""

    def __init__(self, warehouse_dir: str | os.PathLike[str], key: str, retain_s: float = RETAIN_S) -> None:
        self.root = Path(warehouse_dir)
        self.retain_s = retain_s
        folder = self.root / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        self.path, self._lock_fd = _locked(folder, key)
        self._ids: set[str] = set()
        self._records: collections.deque[tuple[float, list[str]]] = collections.deque()
        self.recovered_files = 0  # temporary files renamed into place at the start
        self.skipped = 0  # rows left out as already committed (metrics, tests)
        self._recover()
        self._fh = open(self.path, "ab")  # noqa: SIM115 - kept open: one append per commit

    def close(self) -> None:
        self._fh.close()
        os.close(self._lock_fd)

    # -- at a start ------------------------------------------------------------------------------

    def _recover(self) -> None:
        now = time.time()
        try:
            lines = self.path.read_bytes().splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                record = json.loads(line)
                ids = [str(i) for i in record["ids"]]
                files = [(self.root / tmp, self.root / final) for tmp, final in record.get("files", ())]
            except (ValueError, KeyError, TypeError):
                continue  # a torn line: the commit never happened (nothing of it was renamed)
            for tmp, final in files:
                if tmp.exists() and not final.exists():
                    os.replace(tmp, final)
                    self.recovered_files += 1
            self._remember(ids, now)  # retained from this start: the redeliveries come after it
        if self.recovered_files:
            log.warning(
                "detector journal %s: %d file(s) of a commit interrupted by a crash renamed into place",
                self.path,
                self.recovered_files,
            )
        self._rewrite()

    def _rewrite(self) -> None:
        """Replace the journal with one line of the retained ids (nothing left to roll forward)."""
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        with open(tmp, "wb") as fh:
            if self._ids:
                fh.write(_line({"t": time.time(), "ids": sorted(self._ids)}))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        fsync_dir(self.path.parent)

    # -- a commit ------------------------------------------------------------------------------

    def seen(self, message_id: str) -> bool:
        """Whether the message's rows were committed by this worker (within ``retain_s``)."""
        return message_id in self._ids

    def disjoint(self, ids: Iterable[str]) -> bool:
        """Whether none of ``ids`` was committed by this worker (within ``retain_s``)."""
        return self._ids.isdisjoint(ids)

    def commit(self, ids: Sequence[str], files: Sequence[Sequence[Prepared]]) -> None:
        """Record the commit (fsynced), then rename its files into place, table after table."""
        rel = [[str(p.tmp.relative_to(self.root)), str(p.final.relative_to(self.root))] for t in files for p in t]
        self._fh.write(_line({"t": time.time(), "ids": list(ids), "files": rel}))
        self._fh.flush()
        os.fsync(self._fh.fileno())
        crash_at("after_record")
        for i, table_files in enumerate(files):
            if i == 1:
                crash_at("between_tables")
            publish(table_files)
        self._remember(ids, time.time())
        self._trim()

    def _remember(self, ids: Iterable[str], at: float) -> None:
        kept = [i for i in ids if i not in self._ids]
        self._ids.update(kept)
        self._records.append((at, kept))

    def _trim(self) -> None:
        horizon = time.time() - self.retain_s
        while self._records and self._records[0][0] < horizon:
            self._ids.difference_update(self._records.popleft()[1])
        if self._fh.tell() > REWRITE_BYTES:
            self._fh.close()
            self._rewrite()
            self._fh = open(self.path, "ab")  # noqa: SIM115


def crash_at(point: str) -> None:
    """Test-only: exit here, as a kill -9 would stop the process, when ``CRASH_ENV`` names ``point``."""
    if _CRASH and point == _CRASH:
        log.warning("test crash point %s reached: exiting as a kill -9 would", point)
        os._exit(137)


def _line(record: dict[str, object]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode() + b"\n"


def _locked(folder: Path, key: str) -> tuple[Path, int]:
    """The journal path for ``key`` and its lock (another process holding it: a journal of this pid's)."""
    for name in (key, f"{key}-{os.getpid()}"):
        fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            log.warning("detector journal %s is held by another process; this one keeps its own", name)
            continue
        return folder / f"{name}.jsonl", fd
    raise RuntimeError(f"detector journal {key}: cannot lock")
