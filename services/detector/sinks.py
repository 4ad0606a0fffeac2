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


class WriteWarehouseFn(beam.DoFn):
    """Append the batch's events (``cloud_run``) and verdicts (``cloud_run_anomaly``) as new files."""

    def __init__(self, warehouse_dir: str) -> None:
        self.warehouse_dir = warehouse_dir

    def process(self, batch: Batch):
        from services.warehouse import WarehouseError, append

        now = datetime.now(UTC).replace(tzinfo=None)
        root = Path(self.warehouse_dir)
        try:
            append(root, "cloud_run", records.cloud_run_rows(batch, now))
            append(root, "cloud_run_anomaly", records.anomaly_rows(batch, now))
        except WarehouseError as exc:
            # Some row the contract let through that the table refuses: find it, dead-letter it, keep the rest.
            log.warning("warehouse refused a batch, writing row by row: %s", exc)
            batch = _write_row_by_row(root, batch, now)
        yield batch


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


class PublishDetectionsFn(beam.DoFn):
    """One ``hyp-detections`` message per anomaly, published before the batch moves on."""

    def __init__(self, topic: str, emulator_host: str | None) -> None:
        self.topic, self.emulator_host = topic, emulator_host

    def process(self, batch: Batch):
        found = records.detections(batch)
        if found:
            publish_all(self.topic, self.emulator_host, found)
        yield batch


class PublishDeadLettersFn(beam.DoFn):
    """Original bytes and attributes of every rejected message, with ``deadletter_reason``."""

    def __init__(self, topic: str, emulator_host: str | None) -> None:
        self.topic, self.emulator_host = topic, emulator_host

    def process(self, batch: Batch):
        letters = records.deadletters(batch)
        if letters:
            publish_all(self.topic, self.emulator_host, letters)
        yield batch


class ObserveFn(beam.DoFn):
    """Count what a finished batch did (Prometheus); runs after the acknowledgement."""

    def process(self, batch: Batch):
        metrics.observe_batch(batch)
        yield len(batch)
