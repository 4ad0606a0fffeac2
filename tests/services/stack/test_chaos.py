"""Chaos, the Pub/Sub, BigQuery and Cloud Storage rows of issue 18: kill -9 the service of a `hyp up` stack while
a client writes through Google's own library; `hyp up` brings it back, the client's own retries ride over the
gap, and every write the client saw succeed is there afterwards (duplicates counted: a write stored just before
the kill and retried after it can land twice, as on GCP: BigQuery's insertId memory is best-effort, Pub/Sub is
at-least-once)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from services.common.processes import wait_for
from services.testing.local_stack import LocalHypStack
from services.testing.pubsub import drain, topic_and_subscription

pytestmark = [pytest.mark.integration, pytest.mark.local_only("kill -9 of a local process under `hyp up`")]

BEFORE, AFTER = 20, 20  # successful writes (batches, objects) before the kill and after the restart


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalHypStack]:
    with LocalHypStack(["pubsub", "bigquery", "storage"], env={"HYP_UP_RESTART_BACKOFF": "0.2"}) as running:
        yield running


class Writer:
    """Calls ``write(i)`` for i = 0, 1, ... in a thread until stopped; ``done`` holds the i that succeeded."""

    def __init__(self, write: Callable[[int], None]) -> None:
        self.write, self.done, self.failures = write, [], []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        while not self._stop.is_set():
            try:
                self.write(i)
                self.done.append(i)
            except Exception as exc:  # counted and reported: a write the client gave up on
                self.failures.append(f"{i}: {exc}")
            i += 1

    def until(self, count: int, what: str) -> None:
        wait_for(lambda: len(self.done) >= count, 120, what, interval=0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=660)  # the client's own retry deadline (10 min) bounds one call
        assert not self._thread.is_alive()


def test_bigquery_killed_while_rows_stream_in_loses_none(stack: LocalHypStack) -> None:
    from google.cloud import bigquery

    client = stack.bigquery_client()
    dataset = f"chaos_{uuid.uuid4().hex[:8]}"
    client.create_dataset(dataset)
    table = client.create_table(
        bigquery.Table(f"{stack.project}.{dataset}.t", schema=[bigquery.SchemaField("id", "STRING")])
    )

    def insert(i: int) -> None:
        ids = [f"{i}-{j}" for j in range(50)]
        errors = client.insert_rows_json(table, [{"id": x} for x in ids], row_ids=ids, timeout=10)
        assert errors == [], errors

    writer = Writer(insert)
    try:
        writer.until(BEFORE, "rows before the kill")
        killed = time.monotonic()
        stack.kill("bigquery")
        stack.wait_restarted("bigquery", timeout=120)
        down_s = time.monotonic() - killed  # reported, not asserted
        writer.until(len(writer.done) + AFTER, "rows after the restart")
    finally:
        writer.stop()
    rows = client.query(f"SELECT id, count(*) AS n FROM `{table.full_table_id.replace(':', '.')}` GROUP BY id").result()
    stored = {r["id"]: r["n"] for r in rows}
    written = {f"{i}-{j}" for i in writer.done for j in range(50)}
    assert not writer.failures, writer.failures[:3]
    assert written <= set(stored), f"{len(written - set(stored))} acknowledged rows lost"
    duplicates = sum(n - 1 for n in stored.values())
    print(f"bigquery: down {down_s:.1f} s, {len(written)} rows acknowledged, 0 lost, {duplicates} duplicates")


def test_storage_killed_while_objects_are_written_loses_none(stack: LocalHypStack) -> None:
    from google.api_core.exceptions import PreconditionFailed

    client = stack.storage_client()
    bucket = client.create_bucket(f"chaos-{uuid.uuid4().hex[:8]}")

    answered_412: list[int] = []

    def upload(i: int) -> None:
        # create-only (generation 0): a precondition makes the upload idempotent, so the client retries it
        data = f"object {i}".encode()
        try:
            bucket.blob(f"o/{i}").upload_from_string(data, if_generation_match=0, timeout=10)
        except PreconditionFailed:
            # the first try was stored and its answer lost in the crash; the retry finds the object (412, as Cloud
            # Storage answers a retried create): it is the one written, so the write succeeded
            assert bucket.blob(f"o/{i}").download_as_bytes() == data
            answered_412.append(i)

    writer = Writer(upload)
    try:
        writer.until(BEFORE, "objects before the kill")
        killed = time.monotonic()
        stack.kill("storage")
        stack.wait_restarted("storage", timeout=120)
        down_s = time.monotonic() - killed  # reported, not asserted
        writer.until(len(writer.done) + AFTER, "objects after the restart")
    finally:
        writer.stop()
    assert not writer.failures, writer.failures[:3]
    names = {b.name for b in client.list_blobs(bucket.name, prefix="o/")}
    assert {f"o/{i}" for i in writer.done} <= names
    for i in writer.done[:: max(1, len(writer.done) // 10)]:
        assert bucket.blob(f"o/{i}").download_as_bytes() == f"object {i}".encode()
    print(
        f"storage: down {down_s:.1f} s, {len(writer.done)} objects acknowledged, 0 lost, "
        f"{len(answered_412)} stored before a lost answer"
    )


def test_pubsub_killed_while_messages_are_published_loses_none(stack: LocalHypStack) -> None:
    topic, subscription = topic_and_subscription(stack)  # in the emulator's --data-dir: they survive the kill
    publisher = stack.publisher()
    acknowledged: dict[int, str] = {}

    def publish(i: int) -> None:
        acknowledged[i] = publisher.publish(topic, f"message {i}".encode(), n=str(i)).result(timeout=120)

    writer = Writer(publish)
    try:
        writer.until(BEFORE * 10, "messages before the kill")
        killed = time.monotonic()
        stack.kill("pubsub")
        stack.wait_restarted("pubsub", timeout=120)
        down_s = time.monotonic() - killed  # reported, not asserted
        writer.until(len(writer.done) + AFTER * 10, "messages after the restart")
    finally:
        writer.stop()
    assert not writer.failures, writer.failures[:3]
    received = drain(stack.subscriber(), subscription, idle_s=3.0, limit=120)
    ns = [int(m.attributes["n"]) for m in received]
    assert set(acknowledged) <= set(ns), f"{len(set(acknowledged) - set(ns))} acknowledged messages lost"
    print(
        f"pubsub: down {down_s:.1f} s, {len(acknowledged)} messages acknowledged, 0 lost, "
        f"{len(ns) - len(set(ns))} delivered twice"
    )
