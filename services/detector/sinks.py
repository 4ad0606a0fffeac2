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
    """Append the batch's events (``cloud_run``) and verdicts (``cloud_run_anomaly``) as new files, concurrently.

    Returns the batch, with rows the warehouse refused moved to ``rejected`` (dead letter).
    """
    from services.warehouse import WarehouseError, append

    now = datetime.now(UTC).replace(tzinfo=None)
    root = Path(warehouse_dir)
    tables = [("cloud_run", records.cloud_run_rows(batch, now))]
    if batch.verdicts:
        tables.append(("cloud_run_anomaly", records.anomaly_rows(batch, now)))
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


def _write_row_by_row(root: Path, batch: Batch, now: datetime) -> Batch:
    from services.warehouse import WarehouseError, append

    rejected = list(batch.rejected)
    verdict_of = dict(zip(batch.purchase_index, batch.verdicts, strict=True))
    keep_events, keep_messages, keep_index, keep_verdicts = [], [], [], []
    for i, (event, message) in enumerate(zip(batch.events, batch.event_messages, strict=True)):
        one = Batch(messages=(message,), events=(event,), event_messages=(message,))
        if i in verdict_of:
            one = one.replace(purchase_index=(0,), verdicts=(verdict_of[i],))
        try:
            append(root, "cloud_run", records.cloud_run_rows(one, now))
            append(root, "cloud_run_anomaly", records.anomaly_rows(one, now))
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

    Order: detections published (and confirmed) first, as they are the latency that matters; then the
    two warehouse files, written concurrently; then dead letters (which include rows the warehouse
    refused); then the acknowledgement, so a message is acknowledged only once everything it produced
    is durable; then the metrics.
    """

    def __init__(
        self,
        detections_topic: str,
        deadletter_topic: str,
        emulator_host: str | None,
        warehouse_dir: str,
        ack: Any = None,  # local_read.SubscriptionConfig, or None where the source acknowledges
    ) -> None:
        self.detections_topic, self.deadletter_topic = detections_topic, deadletter_topic
        self.emulator_host, self.warehouse_dir, self.ack = emulator_host, warehouse_dir, ack

    def process(self, batch: Batch):
        from services.detector import local_read

        found = records.detections(batch)
        if found:
            publish_all(self.detections_topic, self.emulator_host, found)
        batch = write_warehouse(self.warehouse_dir, batch)
        letters = records.deadletters(batch)
        if letters:
            publish_all(self.deadletter_topic, self.emulator_host, letters)
        ids = batch.ack_ids
        if ids and self.ack is not None:
            local_read.subscription_for(self.ack, pull=False).acknowledge(ids)
        metrics.observe_batch(batch)
        yield len(batch)
