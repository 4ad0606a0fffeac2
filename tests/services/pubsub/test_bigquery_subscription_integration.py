"""BigQuery subscriptions: `hyp pubsub` writes a subscription's messages into a `hyp bigquery` table.

Both run as real processes on free ports; everything goes through Google's own clients (google-cloud-pubsub
for the subscription, google-cloud-bigquery for the table and the rows), as a user's code would.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.api_core import exceptions
from google.cloud import bigquery, pubsub_v1
from google.pubsub_v1 import types

from services.common.processes import stop_group, wait_for
from services.testing.bigquery import bigquery_client
from services.testing.hyp import HypProcess
from services.testing.pubsub import EmulatorProcess, pull, start_emulator, topic_and_subscription, unique

PROJECT = "bq-sub-project"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/pubsub/docs/bigquery"),
]
BQ_STATE = types.BigQueryConfig.State
SUB_STATE = types.Subscription.State


def _bigquery(home: Path) -> HypProcess:
    env = dict(os.environ, HYP_WAREHOUSE_DIR=str(home / "warehouse"), HYP_PROJECT=PROJECT)
    return HypProcess("bigquery", log_path=home / "bigquery.log", env=env)


@pytest.fixture(scope="module")
def bq_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HypProcess]:
    with _bigquery(tmp_path_factory.mktemp("bq")).start(60) as server:
        yield server


@pytest.fixture(scope="module")
def emulator(bq_server: HypProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    e = start_emulator(
        tmp_path_factory.mktemp("ps"),
        topology="none",
        project=PROJECT,
        extra_env={"BIGQUERY_EMULATOR_HOST": bq_server.url},
    )
    yield e
    e.stop()


@pytest.fixture(scope="module")
def bq(bq_server: HypProcess) -> bigquery.Client:
    return bigquery_client(bq_server.url, PROJECT)


@pytest.fixture
def dataset(bq: bigquery.Client) -> Iterator[str]:
    name = f"ds_{uuid.uuid4().hex[:10]}"
    bq.create_dataset(name)
    yield f"{PROJECT}.{name}"
    bq.delete_dataset(name, delete_contents=True, not_found_ok=True)


METADATA_SCHEMA = [
    bigquery.SchemaField("subscription_name", "STRING"),
    bigquery.SchemaField("message_id", "STRING"),
    bigquery.SchemaField("publish_time", "TIMESTAMP"),
    bigquery.SchemaField("data", "STRING"),
    bigquery.SchemaField("attributes", "STRING"),
]


def _rows(bq: bigquery.Client, table: str, want: int, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The table's rows once it holds at least `want` (bounded poll)."""

    def enough() -> list[dict[str, Any]] | None:
        rows = [dict(r.items()) for r in bq.query(f"SELECT * FROM `{table}`").result()]
        return rows if len(rows) >= want else None

    result: list[dict[str, Any]] = wait_for(enough, timeout, f"{want} rows in {table}", interval=0.2)
    return result


def _state(subscriber: pubsub_v1.SubscriberClient, sub: str, want: int, timeout: float = 30.0) -> Any:
    def reached() -> list[Any] | None:
        pb = subscriber.get_subscription(subscription=sub)
        return [pb] if pb.bigquery_config.state == want else None

    return wait_for(reached, timeout, f"{sub} in state {want}", interval=0.1)[0]


def _each_once(bq: bigquery.Client, table_id: str, ids: list[str]) -> None:
    """Waits until every message of ``ids`` is a row of the table, then: each exactly once, nothing else."""

    def all_written() -> int | None:
        n = next(iter(bq.query(f"SELECT COUNT(DISTINCT message_id) AS n FROM `{table_id}`").result())).n
        return n if n >= len(ids) else None

    wait_for(all_written, 90, f"{len(ids)} distinct messages in {table_id}", interval=0.5)
    row = next(iter(bq.query(f"SELECT COUNT(*) AS n, COUNT(DISTINCT message_id) AS d FROM `{table_id}`").result()))
    assert (row.n, row.d) == (len(ids), len(ids)), "lost or duplicated rows"
    assert {r.message_id for r in bq.query(f"SELECT message_id FROM `{table_id}`").result()} == set(ids)


def test_create_bigquery_subscription_sample_writes_metadata_columns(
    emulator: EmulatorProcess, bq: bigquery.Client, dataset: str
) -> None:
    """Google's python-pubsub sample (create_bigquery_subscription), against a table made with the BigQuery
    client; then every message is a row with Pub/Sub's metadata, and the subscription cannot be pulled."""
    table_id = f"{dataset}.sample"
    bq.create_table(bigquery.Table(table_id, schema=METADATA_SCHEMA))
    publisher, subscriber = emulator.publisher(), emulator.subscriber()
    topic_path = publisher.topic_path(PROJECT, unique("t"))
    publisher.create_topic(name=topic_path)
    subscription_path = subscriber.subscription_path(PROJECT, unique("bq"))

    bigquery_config = pubsub_v1.types.BigQueryConfig(table=table_id, write_metadata=True)
    with subscriber:
        subscription = subscriber.create_subscription(
            request={"name": subscription_path, "topic": topic_path, "bigquery_config": bigquery_config}
        )
    assert subscription.bigquery_config.table == table_id
    assert subscription.bigquery_config.write_metadata
    assert subscription.bigquery_config.state == BQ_STATE.ACTIVE
    assert subscription.state == SUB_STATE.ACTIVE

    ids = [publisher.publish(topic_path, f"event {i}".encode(), n=str(i)).result(10) for i in range(20)]
    rows = _rows(bq, table_id, 20)
    assert len(rows) == 20
    by_id = {r["message_id"]: r for r in rows}
    assert set(by_id) == set(ids)
    for i, message_id in enumerate(ids):
        row = by_id[message_id]
        assert row["data"] == f"event {i}"
        assert json.loads(row["attributes"]) == {"n": str(i)}
        assert row["subscription_name"] == subscription_path
        assert row["publish_time"].tzinfo is not None

    subscriber = emulator.subscriber()
    with pytest.raises(exceptions.FailedPrecondition, match="BigQuery subscription"):
        subscriber.pull(request={"subscription": subscription_path, "max_messages": 1}, timeout=5)
    listed = {s.name: s for s in subscriber.list_subscriptions(project=f"projects/{PROJECT}")}
    assert listed[subscription_path].bigquery_config.table == table_id


def test_missing_table_is_not_found_until_it_is_created(
    emulator: EmulatorProcess, bq: bigquery.Client, dataset: str
) -> None:
    table_id = f"{dataset}.later"
    topic, sub = topic_and_subscription(emulator, bigquery_config={"table": table_id, "write_metadata": True})
    publisher, subscriber = emulator.publisher(), emulator.subscriber()
    ids = [publisher.publish(topic, b"kept while the table is missing").result(10) for _ in range(5)]
    pb = _state(subscriber, sub, BQ_STATE.NOT_FOUND)
    assert pb.state == SUB_STATE.RESOURCE_ERROR

    bq.create_table(bigquery.Table(table_id, schema=METADATA_SCHEMA))
    pb = _state(subscriber, sub, BQ_STATE.ACTIVE)
    assert pb.state == SUB_STATE.ACTIVE
    assert sorted(r["message_id"] for r in _rows(bq, table_id, 5)) == sorted(ids)


def test_table_without_the_columns_is_schema_mismatch(
    emulator: EmulatorProcess, bq: bigquery.Client, dataset: str
) -> None:
    table_id = f"{dataset}.no_metadata"
    bq.create_table(bigquery.Table(table_id, schema=[bigquery.SchemaField("data", "STRING")]))
    topic, sub = topic_and_subscription(emulator, bigquery_config={"table": table_id, "write_metadata": True})
    publisher, subscriber = emulator.publisher(), emulator.subscriber()
    publisher.publish(topic, b"x").result(10)
    assert _state(subscriber, sub, BQ_STATE.SCHEMA_MISMATCH).state == SUB_STATE.RESOURCE_ERROR
    # without write_metadata the table fits: the backlog is written, the state is ACTIVE again
    subscriber.update_subscription(
        request={
            "subscription": {"name": sub, "bigquery_config": {"table": table_id}},
            "update_mask": {"paths": ["bigquery_config"]},
        }
    )
    assert [r["data"] for r in _rows(bq, table_id, 1)] == ["x"]
    _state(subscriber, sub, BQ_STATE.ACTIVE)


def test_rows_the_table_refuses_go_to_the_dead_letter_topic(
    emulator: EmulatorProcess, bq: bigquery.Client, dataset: str
) -> None:
    """use_table_schema: the JSON message's fields into the columns; rows BigQuery refuses (a wrong type, a field
    without a column) are dead-lettered after max_delivery_attempts, counted as Pub/Sub counts them."""
    table_id = f"{dataset}.orders"
    schema = [bigquery.SchemaField("id", "INTEGER", mode="REQUIRED"), bigquery.SchemaField("item", "STRING")]
    bq.create_table(bigquery.Table(table_id, schema=schema))
    publisher, subscriber = emulator.publisher(), emulator.subscriber()
    dead, dead_sub = emulator.topic_path(unique("dead")), emulator.subscription_path(unique("dead"))
    publisher.create_topic(name=dead)
    subscriber.create_subscription(request={"name": dead_sub, "topic": dead})
    policy = {"dead_letter_topic": dead, "max_delivery_attempts": 5}
    topic, sub = topic_and_subscription(
        emulator, bigquery_config={"table": table_id, "use_table_schema": True}, dead_letter_policy=policy
    )
    good = [json.dumps({"id": i, "item": f"item {i}"}).encode() for i in range(3)]
    bad = [b'{"id": "not a number"}', b'{"id": 7, "colour": "red"}', b"not json"]
    for data in good + bad:
        publisher.publish(topic, data).result(10)

    rows = _rows(bq, table_id, 3)
    assert sorted(r["id"] for r in rows) == [0, 1, 2]
    dead_letters = pull(subscriber, dead_sub, 3, timeout=30)
    assert sorted(m.message.data for m in dead_letters) == sorted(bad)
    for m in dead_letters:
        assert m.message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
        assert m.message.attributes["CloudPubSubDeadLetterSourceSubscription"] == sub.rsplit("/", 1)[-1]
    assert len(_rows(bq, table_id, 3)) == 3


def test_drop_unknown_fields_writes_what_has_a_column(
    emulator: EmulatorProcess, bq: bigquery.Client, dataset: str
) -> None:
    table_id = f"{dataset}.dropped"
    bq.create_table(bigquery.Table(table_id, schema=[bigquery.SchemaField("id", "INTEGER")]))
    topic, sub = topic_and_subscription(
        emulator, bigquery_config={"table": table_id, "use_table_schema": True, "drop_unknown_fields": True}
    )
    emulator.publisher().publish(topic, b'{"id": 1, "colour": "red"}').result(10)
    assert _rows(bq, table_id, 1) == [{"id": 1}]
    assert emulator.subscriber().get_subscription(subscription=sub).bigquery_config.drop_unknown_fields


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"table": "not-a-table"}, "bigquery_config.table"),
        ({"table": "p.d.t.extra"}, "bigquery_config.table"),
        ({"table": "p.d.bad/name"}, "bigquery_config.table"),
        ({"table": "p.d.t", "use_topic_schema": True, "use_table_schema": True}, "use_table_schema"),
    ],
)
def test_bad_bigquery_configs_are_refused_naming_the_field(
    emulator: EmulatorProcess, config: dict[str, Any], field: str
) -> None:
    topic, sub = emulator.topic_path(unique("t")), emulator.subscription_path(unique("bq"))
    emulator.publisher().create_topic(name=topic)
    subscriber = emulator.subscriber()
    with pytest.raises(exceptions.InvalidArgument, match=field):
        subscriber.create_subscription(request={"name": sub, "topic": topic, "bigquery_config": config})
    # the REST API answers the same, in Google's JSON error shape
    camel = {k.split("_")[0] + "".join(w.title() for w in k.split("_")[1:]): v for k, v in config.items()}
    body = {"topic": topic, "bigqueryConfig": camel}
    r = httpx.put(f"{emulator.rest_url}/v1/{sub}", json=body, timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert field in r.json()["error"]["message"]
    with pytest.raises(exceptions.NotFound):
        subscriber.get_subscription(subscription=sub)


@pytest.mark.local_only("a kill -9 of `hyp bigquery`: what the emulator does while its BigQuery is down")
def test_kill9_of_bigquery_mid_stream_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    server = _bigquery(tmp_path).start(60)
    emulator = start_emulator(
        tmp_path / "ps", topology="none", project=PROJECT, extra_env={"BIGQUERY_EMULATOR_HOST": server.url}
    )
    try:
        bq = bigquery_client(server.url, PROJECT)
        bq.create_dataset("crash")
        table_id = f"{PROJECT}.crash.events"
        bq.create_table(bigquery.Table(table_id, schema=METADATA_SCHEMA))
        topic, _ = topic_and_subscription(emulator, bigquery_config={"table": table_id, "write_metadata": True})
        publisher = emulator.publisher()
        total, ids = 4000, list[str]()
        halfway = threading.Event()

        def publish() -> None:
            for chunk in range(20):
                futures = [publisher.publish(topic, f"m{chunk}-{i}".encode()) for i in range(total // 20)]
                ids.extend(f.result(30) for f in futures)
                if chunk == 10:
                    halfway.set()

        publishing = threading.Thread(target=publish)
        publishing.start()
        assert halfway.wait(60)
        assert server.process is not None
        stop_group(server.process, timeout=10, first=signal.SIGKILL)
        publishing.join(120)
        assert len(ids) == total
        server.start(60)
        _each_once(bq, table_id, ids)
        assert "bigquery unavailable" in emulator.log()  # the kill did land mid-stream
    finally:
        emulator.stop()
        server.stop()


@pytest.mark.local_only("--data-dir: the emulator's own persistence across restarts")
def test_bigquery_config_and_backlog_survive_a_restart(
    bq_server: HypProcess, bq: bigquery.Client, tmp_path: Path
) -> None:
    """Stored like a push config: after a restart with the same --data-dir the subscription is still a BigQuery
    subscription, and what it had not written (its table was missing) is written once the table exists."""
    bq.create_dataset("restart", exists_ok=True)
    table_id = f"{PROJECT}.restart.later_{uuid.uuid4().hex[:6]}"
    env = {"BIGQUERY_EMULATOR_HOST": bq_server.url}
    first = start_emulator(tmp_path, topology="none", data_dir=tmp_path / "data", project=PROJECT, extra_env=env)
    try:
        topic, sub = topic_and_subscription(first, bigquery_config={"table": table_id, "write_metadata": True})
        ids = [first.publisher().publish(topic, b"before the restart").result(10) for _ in range(3)]
        _state(first.subscriber(), sub, BQ_STATE.NOT_FOUND)
    finally:
        first.stop()
    second = start_emulator(tmp_path, topology="none", data_dir=tmp_path / "data", project=PROJECT, extra_env=env)
    try:
        pb = second.subscriber().get_subscription(subscription=sub)
        assert pb.bigquery_config.table == table_id and pb.bigquery_config.write_metadata
        bq.create_table(bigquery.Table(table_id, schema=METADATA_SCHEMA))
        assert sorted(r["message_id"] for r in _rows(bq, table_id, 3)) == sorted(ids)
        _state(second.subscriber(), sub, BQ_STATE.ACTIVE)
    finally:
        second.stop()


def test_rest_api_creates_a_bigquery_subscription_and_refuses_to_pull_it(
    emulator: EmulatorProcess, bq: bigquery.Client, dataset: str
) -> None:
    table_id = f"{dataset}.over_rest"
    bq.create_table(bigquery.Table(table_id, schema=METADATA_SCHEMA))
    topic = emulator.topic_path(unique("t"))
    sub = emulator.subscription_path(unique("bq"))
    rest = emulator.rest_url
    assert httpx.put(f"{rest}/v1/{topic}", json={}, timeout=10).status_code == 200
    body = {"topic": topic, "bigqueryConfig": {"table": table_id, "writeMetadata": True}}
    created = httpx.put(f"{rest}/v1/{sub}", json=body, timeout=10).json()
    assert created["bigqueryConfig"] == {"table": table_id, "writeMetadata": True, "state": "ACTIVE"}
    assert created["state"] == "ACTIVE"
    published = httpx.post(f"{rest}/v1/{topic}:publish", json={"messages": [{"data": "aGk="}]}, timeout=10).json()
    assert [r["message_id"] for r in _rows(bq, table_id, 1)] == published["messageIds"]
    pulled = httpx.post(f"{rest}/v1/{sub}:pull", json={"maxMessages": 1}, timeout=10)
    assert pulled.status_code == 400
    assert pulled.json()["error"]["status"] == "FAILED_PRECONDITION"


@pytest.mark.local_only("a kill -9 of the emulator itself with --data-dir: its own persistence")
def test_kill9_of_the_emulator_mid_write_loses_nothing_and_duplicates_nothing(
    bq_server: HypProcess, bq: bigquery.Client, dataset: str, tmp_path: Path
) -> None:
    """Rows being written when the emulator dies are written again after its restart (their acks were lost):
    insertId = message id keeps them from being stored twice."""
    table_id = f"{dataset}.emulator_crash"
    env = {"BIGQUERY_EMULATOR_HOST": bq_server.url, "HYP_PUBSUB_BIGQUERY_BATCH_ROWS": "200"}
    data = tmp_path / "data"
    first = start_emulator(tmp_path, topology="none", data_dir=data, project=PROJECT, extra_env=env)
    try:
        topic, sub = topic_and_subscription(first, bigquery_config={"table": table_id, "write_metadata": True})
        publisher = first.publisher()
        total = 5000
        futures = [publisher.publish(topic, f"m{i}".encode()) for i in range(total)]
        ids = [f.result(60) for f in futures]
        _state(first.subscriber(), sub, BQ_STATE.NOT_FOUND)  # all of it in the backlog, nothing written yet
        bq.create_table(bigquery.Table(table_id, schema=METADATA_SCHEMA))

        def writing() -> bool:
            state = httpx.get(f"{first.rest_url}/admin/state", timeout=5).json()
            acked = next(s["acked_total"] for s in state["subscriptions"] if s["name"] == sub)
            return 0 < acked < total

        wait_for(writing, 60, "the first rows written", interval=0.01)
    finally:
        first.stop(kill=True)
    second = start_emulator(tmp_path, topology="none", data_dir=data, project=PROJECT, extra_env=env)
    try:
        _each_once(bq, table_id, ids)
    finally:
        second.stop()
