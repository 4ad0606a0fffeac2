"""The load side: warehouse files and Pub/Sub publishes, each finished (durable) before a batch moves on.

The direct runner pickles and sets up every DoFn anew for each bundle, so the clients live in
process-level caches here, not in the DoFns.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apache_beam as beam

from services.detector import metrics, records
from services.detector.batch import Batch, Rejected
from services.detector.journal import crash_at

# the detector's events and verdicts: tables of its own, as a Dataflow job's (the processor writes cloud_run*)
from services.warehouse.tables import DETECTOR_TABLE, DETECTOR_VERDICTS

log = logging.getLogger(__name__)

_PUBLISHERS: dict[str | None, Any] = {}
_PUBLISHERS_LOCK = threading.Lock()
PUBLISH_TIMEOUT_S = 30.0


def publisher_for(emulator_host: str | None) -> Any:
    """One batching publisher client per emulator host for the whole process."""
    with _PUBLISHERS_LOCK:
        client = _PUBLISHERS.get(emulator_host)
        if client is None:
            from google.cloud.pubsub_v1.types import BatchSettings

            from services.common.pubsub_clients import publisher

            settings = BatchSettings(max_messages=1000, max_bytes=9_000_000, max_latency=0.005)
            client = _PUBLISHERS[emulator_host] = publisher(emulator_host, batch_settings=settings)
        return client


def publish_all(topic: str, emulator_host: str | None, messages: list[tuple[bytes, dict[str, str]]]) -> None:
    """Publish and wait until every message is accepted; retry (with backoff) until it is.

    An unavailable Pub/Sub is not a bad message: the batch waits here, unacknowledged, and a
    process killed meanwhile gets the whole batch redelivered.
    """
    pending = list(messages)
    backoff = 0.2
    while pending:
        client = publisher_for(emulator_host)
        futures = [(m, client.publish(topic, m[0], **m[1])) for m in pending]
        failed = []
        for message, future in futures:
            try:
                future.result(timeout=PUBLISH_TIMEOUT_S)
            except Exception as exc:  # retried below
                failed.append(message)
                error = exc
        if failed:
            log.warning("publish to %s failed for %d messages (retrying): %s", topic, len(failed), error)
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
        pending = failed


_WRITERS: list[Any] = []
_WRITERS_LOCK = threading.Lock()


def _writer_pool() -> Any:
    """Two threads for the two Parquet files of a batch: the fsyncs overlap (they release the GIL)."""
    with _WRITERS_LOCK:
        if not _WRITERS:
            from concurrent.futures import ThreadPoolExecutor

            _WRITERS.append(ThreadPoolExecutor(max_workers=2, thread_name_prefix="hyp-detector-write"))
        return _WRITERS[0]


def _commit_tables(root: Path, tables: list[tuple[str, list[dict[str, Any]]]], journal: Any, ids: list[str]) -> None:
    """Write each table's files (concurrently: the fsyncs overlap), then commit them together: through the
    journal (one record, then the renames) when there is one. A refusal raises before anything is committed."""
    from services.warehouse import writer

    tables = [(name, rows) for name, rows in tables if rows]
    if len(tables) == 1:
        prepared = [writer.prepare(root, *tables[0])]
    else:
        futures = [_writer_pool().submit(writer.prepare, root, name, rows) for name, rows in tables]
        errors = [f.exception() for f in futures]  # waits for every table's files, whatever happens to either
        prepared = [f.result() for f, e in zip(futures, errors, strict=True) if e is None]
        for error in errors:
            if error is not None:
                for files in prepared:
                    writer.discard(files)
                raise error
    if journal is not None:
        journal.commit(ids, prepared)
    else:
        for i, files in enumerate(prepared):
            if i == 1:
                crash_at("between_tables")
            writer.publish(files)
    crash_at("before_ack")


def _ids(batches: list[Batch]) -> list[str]:
    return [m.message_id for b in batches for m in b.event_messages]


def write_warehouse(warehouse_dir: str, batch: Batch, journal: Any = None) -> Batch:
    """Append the batch's events (``dataflow``) and verdicts (``dataflow_anomaly``) as new files, concurrently.

    Returns the batch, with rows the warehouse refused moved to ``rejected`` (dead letter). ``journal``
    (journal.CommitJournal): commit both tables' files through it, leaving out messages it has committed.
    """
    from services.warehouse import WarehouseError

    if journal is not None:
        batch = _unseen([batch], journal)[0]
    now = datetime.now(UTC).replace(tzinfo=None)
    root = Path(warehouse_dir)
    tables = [(DETECTOR_TABLE, records.cloud_run_rows(batch, now))]
    if batch.verdicts:
        tables.append((DETECTOR_VERDICTS, records.anomaly_rows(batch, now)))
    try:
        _commit_tables(root, tables, journal, _ids([batch]))
    except WarehouseError as exc:
        # Some row the contract let through that the table refuses: find it, dead-letter it, keep the rest.
        log.warning("warehouse refused a batch, writing row by row: %s", exc)
        batch = _write_row_by_row(root, batch, now, journal)
    return batch


def write_warehouse_many(warehouse_dir: str, batches: list[Batch], journal: Any = None) -> list[Batch]:
    """One commit for several batches: both tables' rows in one file each (written concurrently).

    If the warehouse refuses the group, each batch is written on its own (row by row where needed).
    Returns the batches as written (refused rows moved to ``rejected``; with ``journal``, the rows of messages
    it committed before, or twice in ``batches``, left out: see journal.py).
    """
    from services.warehouse import WarehouseError

    if journal is not None:
        batches = _unseen(batches, journal)
    if len(batches) == 1:
        return [write_warehouse(warehouse_dir, batches[0], journal)]
    now = datetime.now(UTC).replace(tzinfo=None)
    root = Path(warehouse_dir)
    events = [row for b in batches for row in records.cloud_run_rows(b, now)]
    verdicts = [row for b in batches if b.verdicts for row in records.anomaly_rows(b, now)]
    try:
        _commit_tables(root, [(DETECTOR_TABLE, events), (DETECTOR_VERDICTS, verdicts)], journal, _ids(batches))
    except WarehouseError as exc:
        log.warning("warehouse refused a commit of %d batches, writing them one by one: %s", len(batches), exc)
        return [write_warehouse(warehouse_dir, b, journal) for b in batches]
    return list(batches)


def _unseen(batches: list[Batch], journal: Any) -> list[Batch]:
    """The batches without the events of messages the journal committed, or seen earlier in ``batches``."""
    ids = _ids(batches)
    if len(set(ids)) == len(ids) and journal.disjoint(ids):  # the usual case, in C
        return batches
    seen: set[str] = set()
    out = []
    for b in batches:
        drop = set()
        for i, m in enumerate(b.event_messages):
            if m.message_id in seen or journal.seen(m.message_id):
                drop.add(i)
            else:
                seen.add(m.message_id)
        if drop:
            b = _without(b, drop)
        out.append(b)
    left_out = sum(len(b.events) for b in batches) - sum(len(b.events) for b in out)
    journal.skipped += left_out
    log.info("commit: %d redelivered message(s) already in the warehouse left out (acknowledged)", left_out)
    return out


def _without(batch: Batch, drop: set[int]) -> Batch:
    """The batch without the events at ``drop`` (and their verdicts); its messages (ack ids) unchanged."""
    verdict_of = dict(zip(batch.purchase_index, batch.verdicts, strict=True))
    events: list[dict[str, Any]] = []
    messages: list[Any] = []
    index: list[int] = []
    verdicts: list[dict[str, Any]] = []
    for i, (event, message) in enumerate(zip(batch.events, batch.event_messages, strict=True)):
        if i in drop:
            continue
        if i in verdict_of:
            index.append(len(events))
            verdicts.append(verdict_of[i])
        events.append(event)
        messages.append(message)
    return batch.replace(
        events=tuple(events), event_messages=tuple(messages), purchase_index=tuple(index), verdicts=tuple(verdicts)
    )


def _write_row_by_row(root: Path, batch: Batch, now: datetime, journal: Any = None) -> Batch:
    """Each row's files prepared on its own (a refused one dead-lettered), then the rest committed at once."""
    from services.warehouse import WarehouseError, writer

    rejected = list(batch.rejected)
    verdict_of = dict(zip(batch.purchase_index, batch.verdicts, strict=True))
    keep_events: list[dict[str, Any]] = []
    keep_messages: list[Any] = []
    keep_index: list[int] = []
    keep_verdicts: list[dict[str, Any]] = []
    events: list[writer.Prepared] = []
    verdicts: list[writer.Prepared] = []
    for i, (event, message) in enumerate(zip(batch.events, batch.event_messages, strict=True)):
        one = Batch(messages=(message,), events=(event,), event_messages=(message,))
        if i in verdict_of:
            one = one.replace(purchase_index=(0,), verdicts=(verdict_of[i],))
        mine: list[writer.Prepared] = []
        try:
            mine = writer.prepare(root, DETECTOR_TABLE, records.cloud_run_rows(one, now))
            theirs = writer.prepare(root, DETECTOR_VERDICTS, records.anomaly_rows(one, now))
        except WarehouseError as exc:
            writer.discard(mine)
            rejected.append(Rejected(message, f"warehouse: {exc}"))
            continue
        events += mine
        verdicts += theirs
        if i in verdict_of:
            keep_index.append(len(keep_events))
            keep_verdicts.append(verdict_of[i])
        keep_events.append(event)
        keep_messages.append(message)
    if journal is not None:
        journal.commit([m.message_id for m in keep_messages], [events, verdicts])
    else:
        writer.publish(events + verdicts)
    return batch.replace(
        events=tuple(keep_events),
        event_messages=tuple(keep_messages),
        purchase_index=tuple(keep_index),
        verdicts=tuple(keep_verdicts),
        rejected=tuple(rejected),
    )


class LoadFn(beam.DoFn):
    """The whole load side of one batch in one step (one bundle, not five, per batch on the direct runner).

    Order: detections published (and confirmed) first, as they are the latency that matters; then dead
    letters. With the local read (``ack`` set) the batch then goes to the process's committer, which
    writes the warehouse rows of consecutive batches as one commit and acknowledges their messages only
    after it (see commit.py). Where the source acknowledges by itself (Dataflow, Flink: when the bundle
    ends) the two warehouse files are written here, before the bundle ends, as nothing may be deferred.
    """

    def __init__(
        self,
        detections_topic: str,
        deadletter_topic: str,
        emulator_host: str | None,
        warehouse_dir: str,
        ack: Any = None,  # local_read.SubscriptionConfig, or None where the source acknowledges
        commit: Any = None,  # commit.CommitConfig for the local read; None: defaults
    ) -> None:
        self.detections_topic, self.deadletter_topic = detections_topic, deadletter_topic
        self.emulator_host, self.warehouse_dir, self.ack = emulator_host, warehouse_dir, ack
        self.commit = commit

    def process(self, batch: Batch):
        found = records.detections(batch)
        if found:
            publish_all(self.detections_topic, self.emulator_host, found)
        if self.ack is None:
            batch = write_warehouse(self.warehouse_dir, batch)
            letters = records.deadletters(batch)
            if letters:
                publish_all(self.deadletter_topic, self.emulator_host, letters)
            metrics.observe_batch(batch)
            yield len(batch)
            return
        letters = records.deadletters(batch)
        if letters:
            publish_all(self.deadletter_topic, self.emulator_host, letters)
        self._committer().add(batch)
        yield len(batch)

    def _committer(self) -> Any:
        from services.detector import commit, local_read
        from services.detector.journal import CommitJournal

        config = self.commit or commit.CommitConfig(self.warehouse_dir)
        topic, host, ack = self.deadletter_topic, self.emulator_host, self.ack

        def make() -> commit.Committer:
            sub = local_read.subscription_for(ack, pull=False)

            def refused(before: Batch, after: Batch) -> None:
                """Dead-letter the rows the warehouse refused (parse rejections went out already)."""
                new = after.replace(rejected=after.rejected[len(before.rejected) :])
                letters = records.deadletters(new)
                if letters:
                    publish_all(topic, host, letters)

            journal = CommitJournal(config.warehouse_dir, config.journal_key) if config.journal_key else None

            def write(warehouse_dir: str, batches: list[Batch]) -> list[Batch]:
                return write_warehouse_many(warehouse_dir, batches, journal)

            return commit.Committer(
                config, write, sub.acknowledge, sub.release, refused, journal.close if journal is not None else None
            )

        return commit.committer_for(config, make)
