"""The whole path, all real processes: emulator push -> `hyp processor` -> `hyp endpoint` (MLflow champion).

The emulator is the session's (tests/fixtures/pubsub.py); this module creates its own topic, a
push subscription pointed at its processor (retry policy, dead-letter policy, acked messages
retained so a seek can replay them) and a dead-letter topic with a pull subscription.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from google.protobuf import duration_pb2, timestamp_pb2

from services.common.processes import free_port, wait_for
from services.warehouse.query import query
from tests.fixtures.pubsub import unique
from tests.services.processor.helpers import Service, purchase_event, view_event

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def stack(pubsub_emulator, champion, tmp_path_factory):
    from google.cloud import pubsub_v1

    work = tmp_path_factory.mktemp("processor-stack")
    warehouse = work / "warehouse"
    topic, dead_topic = unique("proc-events"), unique("proc-dead")
    push_sub, dead_sub = unique("proc-push"), unique("proc-dead-pull")
    endpoint_port, processor_port = free_port(), free_port()
    publisher, subscriber = pubsub_emulator.publisher(), pubsub_emulator.subscriber()
    publisher.create_topic(name=pubsub_emulator.topic_path(topic))
    publisher.create_topic(name=pubsub_emulator.topic_path(dead_topic))
    subscriber.create_subscription(
        request={"name": pubsub_emulator.subscription_path(dead_sub), "topic": pubsub_emulator.topic_path(dead_topic)}
    )
    subscriber.create_subscription(
        request=pubsub_v1.types.Subscription(
            name=pubsub_emulator.subscription_path(push_sub),
            topic=pubsub_emulator.topic_path(topic),
            ack_deadline_seconds=30,
            push_config=pubsub_v1.types.PushConfig(push_endpoint=f"http://127.0.0.1:{processor_port}/"),
            retry_policy=pubsub_v1.types.RetryPolicy(
                minimum_backoff=duration_pb2.Duration(nanos=200_000_000),
                maximum_backoff=duration_pb2.Duration(seconds=2),
            ),
            dead_letter_policy=pubsub_v1.types.DeadLetterPolicy(
                dead_letter_topic=pubsub_emulator.topic_path(dead_topic), max_delivery_attempts=100
            ),
            retain_acked_messages=True,
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PUBSUB_EMULATOR_HOST": pubsub_emulator.host,
        "HYP_PROJECT": pubsub_emulator.project,
        "MLFLOW_TRACKING_URI": champion.tracking_uri,
        "HYP_WAREHOUSE_DIR": str(warehouse),
        "HYP_ENDPOINT_URL": f"http://127.0.0.1:{endpoint_port}",
        "HYP_PROCESSOR_DEADLETTER_TOPIC": dead_topic,
        "HYP_PROCESSOR_ENDPOINT_TIMEOUT_S": "3",
        "HYP_ENDPOINT_RELOAD_INTERVAL_S": "0",
    }
    endpoint = Service("endpoint", endpoint_port, env, work / "endpoint.log")
    processor = Service("processor", processor_port, env, work / "processor.log")
    endpoint.start()
    processor.start()

    def publish(event: object, attributes: dict[str, str], raw: bytes | None = None) -> str:
        data = raw if raw is not None else json.dumps(event).encode()
        return publisher.publish(pubsub_emulator.topic_path(topic), data, **attributes).result(timeout=10)

    ns = type("Stack", (), {})()
    ns.__dict__.update(
        warehouse=warehouse,
        endpoint=endpoint,
        processor=processor,
        publish=publish,
        subscriber=subscriber,
        push_subscription=pubsub_emulator.subscription_path(push_sub),
        dead_subscription=pubsub_emulator.subscription_path(dead_sub),
        champion=champion,
    )
    try:
        yield ns
    finally:
        processor.stop()
        endpoint.stop()


def count(warehouse: Path, sql: str) -> int:
    try:
        return query(warehouse, sql).column(0)[0].as_py()
    except Exception:
        return 0


def test_events_and_anomalies_land_scored_by_the_champion(stack):
    run = unique("run")
    normal = {"run_id": run, "anomaly": "0"}
    ids = [stack.publish(purchase_event(40.0 + i, tax=7.6, shipping=4.99, user=f"u{i}"), normal) for i in range(12)]
    ids.append(stack.publish(purchase_event(1_000_000.1, 7.6, 4.99, user="spike"), {"run_id": run, "anomaly": "1"}))
    ids += [stack.publish(view_event(f"v{i}"), {"run_id": run, "anomaly": "0"}) for i in range(5)]
    in_run = f"json_extract_string(attributes, '$.run_id') = '{run}'"
    wait_for(lambda: count(stack.warehouse, f"SELECT count(*) FROM cloud_run WHERE {in_run}") == 18, 60, "18 events")
    wait_for(
        lambda: count(stack.warehouse, f"SELECT count(*) FROM cloud_run_anomaly WHERE {in_run}") == 13,
        60,
        "13 scored purchases",
    )
    rows = query(stack.warehouse, f"SELECT * FROM cloud_run_anomaly WHERE {in_run}").to_pylist()
    assert {r["model_version"] for r in rows} == {stack.champion.version}
    flagged = {r["user_id"] for r in rows if r["anomaly"]}
    assert "spike" in flagged
    assert {r["message_id"] for r in rows} <= set(ids)


def test_endpoint_outage_then_recovery_loses_nothing(stack):
    run = unique("outage")
    in_run = f"json_extract_string(attributes, '$.run_id') = '{run}'"
    stack.endpoint.stop()
    try:
        for i in range(8):
            stack.publish(purchase_event(30.0 + i, 5.7, 3.99, user=f"o{i}"), {"run_id": run})
        # events are durable while the endpoint is down; scoring waits (503 -> Pub/Sub retries)
        wait_for(lambda: count(stack.warehouse, f"SELECT count(*) FROM cloud_run WHERE {in_run}") == 8, 60, "events")
        wait_for(lambda: "http_503" in httpx.get(stack.processor.url + "/metrics").text, 30, "503 answers")
        assert count(stack.warehouse, f"SELECT count(*) FROM cloud_run_anomaly WHERE {in_run}") == 0
    finally:
        stack.endpoint.start()
    wait_for(
        lambda: count(stack.warehouse, f"SELECT count(*) FROM cloud_run_anomaly WHERE {in_run}") == 8,
        90,
        "all 8 scored after recovery",
    )
    assert count(stack.warehouse, f"SELECT count(*) FROM cloud_run WHERE {in_run}") == 8


def test_unparseable_events_reach_the_dead_letter_topic_with_the_reason(stack):
    stack.publish(None, {"run_id": "bad"}, raw=b"{not an event")
    received = []

    def pulled() -> bool:
        response = stack.subscriber.pull(subscription=stack.dead_subscription, max_messages=10, timeout=5)
        for m in response.received_messages:
            received.append(m.message)
            stack.subscriber.acknowledge(subscription=stack.dead_subscription, ack_ids=[m.ack_id])
        return any(m.data == b"{not an event" for m in received)

    wait_for(pulled, 30, "the dead-lettered event")
    [message] = [m for m in received if m.data == b"{not an event"]
    assert message.attributes["run_id"] == "bad"
    assert "payload: not JSON" in message.attributes["deadletter_reason"]


def test_redelivery_after_a_restart_adds_no_rows(stack):
    before = (
        count(stack.warehouse, "SELECT count(*) FROM cloud_run"),
        count(stack.warehouse, "SELECT count(*) FROM cloud_run_anomaly"),
    )
    assert before[0] > 0
    stack.processor.stop()
    stack.processor.start()  # the ledger comes back from the warehouse
    # replay every retained message: Seek to a time before the first publish
    stack.subscriber.seek(request={"subscription": stack.push_subscription, "time": timestamp_pb2.Timestamp(seconds=1)})

    def duplicates() -> int:
        text = httpx.get(stack.processor.url + "/metrics").text
        for line in text.splitlines():
            if line.startswith('hyp_processor_pushes_total{outcome="duplicate"}'):
                return int(float(line.split()[-1]))
        return 0

    wait_for(lambda: duplicates() >= before[0], 90, "the replayed messages")
    after = (
        count(stack.warehouse, "SELECT count(*) FROM cloud_run"),
        count(stack.warehouse, "SELECT count(*) FROM cloud_run_anomaly"),
    )
    assert after == before
