"""LocalHypStack: `hyp up` on a private home and port offset, with HypStack's addresses and clients, a kill and
a bounded wait for the supervision to bring the service back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from services.common.settings import EVENTS_TOPIC
from services.stack import definition as d
from services.testing.local_stack import LocalHypStack

pytestmark = [pytest.mark.integration, pytest.mark.local_only("the test kit's local stack")]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalHypStack]:
    with LocalHypStack(["pubsub", "bigquery", "storage"], env={"HYP_UP_RESTART_BACKOFF": "0.2"}) as running:
        yield running


def test_addresses_are_moved_and_the_clients_work(stack: LocalHypStack) -> None:
    assert stack.offset and stack.pubsub_host == f"127.0.0.1:{d.PUBSUB_PORT + stack.offset}"
    assert f"BIGQUERY_EMULATOR_HOST={stack.bigquery_url}" in stack.output
    assert f"STORAGE_EMULATOR_HOST={stack.storage_url}" in stack.output
    assert stack.publisher().publish(stack.topic_path(EVENTS_TOPIC), b"{}", run_id="kit").result(30)
    rows = stack.bigquery_client().query("SELECT 1 AS one").result()
    assert [r["one"] for r in rows] == [1]
    bucket = stack.storage_client().create_bucket(f"kit-{uuid.uuid4().hex[:8]}")
    bucket.blob("a").upload_from_string(b"x")
    with pytest.raises(RuntimeError, match="not one of its ports"):
        stack.port("storage", d.BIGQUERY_PORT)


def test_a_killed_service_is_back_and_still_has_its_data(stack: LocalHypStack) -> None:
    client = stack.storage_client()
    bucket = client.create_bucket(f"kill-{uuid.uuid4().hex[:8]}")
    bucket.blob("kept").upload_from_string(b"before the crash")
    victim = stack.kill("storage")
    pid = stack.wait_restarted("storage", restarts=1, timeout=60)
    assert pid != victim
    assert stack.supervision()["storage"]["last_exit"] == "killed by SIGKILL"
    assert client.bucket(bucket.name).blob("kept").download_as_bytes() == b"before the crash"
