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


def write_warehouse(warehouse_dir: str, batch: Batch) -> Batch:
    """Append the batch's events (``dataflow``) and verdicts (``dataflow_anomaly``) as new files, concurrently.

    Returns the batch, with rows the warehouse refused moved to ``rejected`` (dead letter).
    """
    from services.warehouse import WarehouseError, append

    now = datetime.now(UTC).replace(tzinfo=None)
    root = Path(warehouse_dir)
    tables = [(DETECTOR_TABLE, records.cloud_run_rows(batch, now))]
    if batch.verdicts:
        tables.append((DETECTOR_VERDICTS, records.anomaly_rows(batch, now)))
    try:
        if len(tables) == 1:
            append(root, *tables[0])
        else:
            futures = [_writer_pool().submit(append, root, name, rows) for name, rows in tables]
            errors = [f.exception() for f in futures]  # waits for both files, whatever happens to either
            for error in errors:
                if error is not None:
                    raise error
    except WarehouseError as exc:
        # Some row the contract let through that the table refuses: find it, dead-letter it, keep the rest.
        log.warning("warehouse refused a batch, writing row by row: %s", exc)
        batch = _write_row_by_row(root, batch, now)
    return batch


def write_warehouse_many(warehouse_dir: str, batches: list[Batch]) -> list[Batch]:
    """One commit for several batches: both tables' rows in one file each (written concurrently).

    If the warehouse refuses the group, each batch is written on its own (row by row where needed).
    Returns the batches as written (refused rows moved to ``rejected``).
    """
    from services.warehouse import WarehouseError, append

    if len(batches) == 1:
        return [write_warehouse(warehouse_dir, batches[0])]
    now = datetime.now(UTC).replace(tzinfo=None)
    root = Path(warehouse_dir)
    events = [row for b in batches for row in records.cloud_run_rows(b, now)]
    verdicts = [row for b in batches if b.verdicts for row in records.anomaly_rows(b, now)]
    tables = [(name, rows) for name, rows in ((DETECTOR_TABLE, events), (DETECTOR_VERDICTS, verdicts)) if rows]
    try:
        futures = [_writer_pool().submit(append, root, name, rows) for name, rows in tables]
        errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
    except WarehouseError as exc:
        log.warning("warehouse refused a commit of %d batches, writing them one by one: %s", len(batches), exc)
        return [write_warehouse(warehouse_dir, b) for b in batches]
    return list(batches)


def _write_row_by_row(root: Path, batch: Batch, now: datetime) -> Batch:
    from services.warehouse import WarehouseError, append

    rejected = list(batch.rejected)
    verdict_of = dict(zip(batch.purchase_index, batch.verdicts, strict=True))
    keep_events: list[dict[str, Any]] = []
    keep_messages: list[Any] = []
    keep_index: list[int] = []
    keep_verdicts: list[dict[str, Any]] = []
    for i, (event, message) in enumerate(zip(batch.events, batch.event_messages, strict=True)):
        one = Batch(messages=(message,), events=(event,), event_messages=(message,))
        if i in verdict_of:
            one = one.replace(purchase_index=(0,), verdicts=(verdict_of[i],))
        try:
            append(root, DETECTOR_TABLE, records.cloud_run_rows(one, now))
            append(root, DETECTOR_VERDICTS, records.anomaly_rows(one, now))
        except WarehouseError as exc:
            rejected.append(Rejected(message, f"warehouse: {exc}"))
            continue
        if i in verdict_of:
            keep_index.append(len(keep_events))
            keep_verdicts.append(verdict_of[i])
        keep_events.append(event)
        keep_messages.append(message)
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

            return commit.Committer(config, write_warehouse_many, sub.acknowledge, sub.release, refused)

        return commit.committer_for(config, make)
