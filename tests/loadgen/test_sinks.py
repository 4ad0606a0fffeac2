"""Sinks without a server: wire encoding, JSON lines, Parquet into the warehouse, Kafka and HTTP code paths."""

from __future__ import annotations

import json
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from loadgen.config import ANOMALY_KINDS, GeneratorConfig
from loadgen.generator import EventGenerator
from loadgen.render import messages
from loadgen.sinks.http import ATTRIBUTE_HEADER_PREFIX, HttpSink
from loadgen.sinks.jsonl import JsonlSink
from loadgen.sinks.kafka import KafkaSink
from loadgen.sinks.parquet import ParquetSink
from loadgen.sinks.pubsub import decode_message_ids, encode_attributes, encode_request, varint
from services.common.events import validate_event
from services.warehouse.query import query

NOW = 1_800_000_000.0
HEAVY = GeneratorConfig(anomaly_rates={k: 0.05 for k in ANOMALY_KINDS}, run_id="run-x")


def _batch(n=500, seed=1):
    gen = EventGenerator(seed, HEAVY)
    return gen, gen.next_columns(n)


def test_hand_encoded_publish_request_parses_as_protobuf():
    from google.pubsub_v1.types import PublishRequest, PublishResponse

    attrs = {"anomaly": "1", "anomaly_kind": "burst", "run_id": "r" * 200}
    data = b"x" * 300
    inner = b"\x0a" + varint(len(data)) + data + encode_attributes(attrs)
    raw = encode_request("projects/p/topics/t", [b"\x12" + varint(len(inner)) + inner] * 3)
    request = PublishRequest.deserialize(raw)
    assert request.topic == "projects/p/topics/t"
    assert len(request.messages) == 3
    assert request.messages[0].data == data and dict(request.messages[0].attributes) == attrs
    ids = [str(i) for i in range(300)]
    assert decode_message_ids(PublishResponse.serialize(PublishResponse(message_ids=ids))) == ids


def test_jsonl_lines_hold_data_and_attributes(tmp_path):
    gen, batch = _batch()
    sink = JsonlSink(tmp_path / "events.jsonl", gen.config.n_users, gen.run_id)
    sink.send(batch, NOW)
    sink.close()
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    expected = messages(batch, gen.config.n_users, gen.run_id, NOW)
    assert [(x["data"], x["attributes"]) for x in lines] == expected
    for x in lines:
        validate_event(x["data"])


def test_parquet_rows_land_in_cloud_run_with_labels(tmp_path):
    gen, batch = _batch(2000)
    sink = ParquetSink(tmp_path, gen.config.n_users, gen.run_id, rows_per_file=10**9)
    sink.send(batch, NOW)
    assert not sink.files  # buffered until the file is big enough or closed
    sink.close()
    assert sink.files
    kinds = query(
        tmp_path,
        "SELECT json_extract_string(attributes, '$.anomaly_kind') AS k, count(*) AS n, "
        "min(json_extract_string(attributes, '$.run_id')) AS run FROM cloud_run GROUP BY 1",
    ).to_pylist()
    expected = {}
    for _, a in messages(batch, gen.config.n_users, gen.run_id, NOW):
        expected[a["anomaly_kind"]] = expected.get(a["anomaly_kind"], 0) + 1
    assert {r["k"]: r["n"] for r in kinds} == expected
    assert {r["run"] for r in kinds} == {"run-x"}
    row = query(tmp_path, "SELECT * FROM cloud_run WHERE event = 'purchase' LIMIT 1").to_pylist()[0]
    assert row["value"] > -1e9 and row["transaction_id"].startswith("T") and row["source"] == "loadgen"


def test_parquet_nested_record_from_item_arrays_equals_the_writers_json_path():
    """The sink builds ecommerce from the item arrays (no JSON round trip); it must be what the writer
    would derive from the flat items JSON, item by item."""
    from services.warehouse import ecommerce

    gen, batch = _batch(3000)
    table = ParquetSink(".", gen.config.n_users, gen.run_id).table(batch, NOW)
    direct = table.column("ecommerce").combine_chunks()
    assert direct.equals(ecommerce.nest(table.drop(["ecommerce"])))
    assert any(r["purchase"] and r["purchase"]["items"] for r in direct.to_pylist()[:500])


class FakeProducer:
    """Stands in for kafka.KafkaProducer (no broker here); records what would be sent."""

    def __init__(self, bootstrap):
        self.bootstrap, self.records, self.flushed, self.closed = bootstrap, [], False, False

    def send(self, topic, value, key, headers):
        self.records.append((topic, value, key, headers))

    def flush(self, timeout=None):
        self.flushed = True

    def close(self, timeout=None):
        self.closed = True


def test_kafka_sends_value_key_and_headers():
    gen, batch = _batch(300)
    sink = KafkaSink("127.0.0.1:9092", "events", gen.config.n_users, gen.run_id, producer_factory=FakeProducer)
    sink.send(batch, NOW)
    producer = sink._producer
    sink.close()
    assert producer.flushed and producer.closed and len(producer.records) == 300
    for (topic, value, key, headers), (event, attributes) in zip(
        producer.records, messages(batch, gen.config.n_users, gen.run_id, NOW), strict=True
    ):
        assert topic == "events" and json.loads(value) == event and key == event["user_id"].encode()
        assert {k: v.decode() for k, v in headers} == attributes


def _reachable(bootstrap: str) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
        return True
    except (OSError, ValueError):
        return False


@pytest.mark.integration
@pytest.mark.skipif(
    not os.environ.get("HYP_KAFKA_BOOTSTRAP") or not _reachable(os.environ["HYP_KAFKA_BOOTSTRAP"]),
    reason="no Kafka broker: set HYP_KAFKA_BOOTSTRAP=host:port to a reachable broker to run this",
)
def test_kafka_against_a_real_broker():
    from kafka import KafkaConsumer

    topic = f"hyp-loadgen-test-{os.getpid()}"
    gen, batch = _batch(100)
    sink = KafkaSink(os.environ["HYP_KAFKA_BOOTSTRAP"], topic, gen.config.n_users, gen.run_id)
    sink.send(batch, NOW)
    sink.close()
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=os.environ["HYP_KAFKA_BOOTSTRAP"],
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    got = [json.loads(r.value) for r, _ in zip(consumer, range(100), strict=False)]
    consumer.close()
    assert len(got) == 100


def test_http_posts_events_with_attribute_headers():
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            attrs = {k[len(ATTRIBUTE_HEADER_PREFIX) :].lower(): v for k, v in self.headers.items()
                     if k.lower().startswith(ATTRIBUTE_HEADER_PREFIX.lower())}  # fmt: skip
            received.append((self.path, json.loads(body), attrs))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        gen, batch = _batch(40)
        sink = HttpSink(f"http://127.0.0.1:{server.server_port}/json", gen.config.n_users, gen.run_id)
        sink.send(batch, NOW)
        sink.close()
    finally:
        server.shutdown()
        server.server_close()
    expected = messages(batch, gen.config.n_users, gen.run_id, NOW)
    assert [(p, e, a) for p, e, a in received] == [("/json", e, a) for e, a in expected]
