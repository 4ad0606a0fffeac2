"""Generated garbage on the Pub/Sub emulator's two surfaces, against a real `hyp pubsub` with a data dir:

- gRPC: valid protobuf requests of every unary Publisher/Subscriber method with hostile values (any text for
  names, filters and ack ids, extreme integers for deadlines and batch sizes, any durations and timestamps,
  many or huge attributes); raw bytes and truncated HTTP/2 frames on the gRPC port;
- REST: any JSON body (and bodies that are not JSON) on every path of the REST front end.

Target (issue 18): every answer is a status the real API uses for a caller's mistake (never INTERNAL, UNKNOWN
or DATA_LOSS on gRPC, never a 5xx on REST), every rejection says what was wrong, and the emulator keeps
serving and its log reads back on the next start."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from google.pubsub_v1 import types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.testing.pubsub import EmulatorProcess, start_emulator, unique

pytestmark = [pytest.mark.integration, pytest.mark.local_only("robustness under generated input")]

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
PROJECT = "hyp-local"
# gRPC codes that blame the server: a caller's input never deserves one
SERVER_FAULTS = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    work = tmp_path_factory.mktemp("pubsub-fuzz")
    emulator = start_emulator(work, data_dir=work / "data")
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="module")
def channel(emulator: EmulatorProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(emulator.host, options=[("grpc.max_send_message_length", -1)]) as ch:
        yield ch


# --- values -----------------------------------------------------------------------------------------------


def _named(kind: str) -> st.SearchStrategy[str]:
    """A resource name of ``kind``: well formed, well formed around a hostile id, or any text."""
    return st.one_of(
        st.builds(lambda i: f"projects/{PROJECT}/{kind}/fz-{i}", st.integers(0, 3)),
        st.builds(lambda s: f"projects/{PROJECT}/{kind}/{s}", st.text(max_size=300)),
        st.builds(lambda p, s: f"projects/{p}/{kind}/{s}", st.text(max_size=40), st.text(max_size=40)),
        st.text(max_size=120),
    )


TOPIC, SUB, SNAP = _named("topics"), _named("subscriptions"), _named("snapshots")
INT32 = st.integers(-(2**31), 2**31 - 1)
TEXT = st.text(max_size=200)
ATTRIBUTES = st.dictionaries(st.text(max_size=300), st.text(max_size=1100), max_size=8)
DURATION = st.builds(lambda s, n: duration_pb2.Duration(seconds=s, nanos=n), st.integers(-(2**40), 2**40), INT32)
TIMESTAMP = st.builds(
    lambda s, n: timestamp_pb2.Timestamp(seconds=s, nanos=n), st.integers(-(2**36), 2**36), st.integers(0, 999_999_999)
)
MESSAGE = st.builds(
    lambda data, attributes, key: types.PubsubMessage(data=data, attributes=attributes, ordering_key=key),
    st.binary(max_size=64),
    ATTRIBUTES,
    st.text(max_size=40),
)
SUBSCRIPTION = st.builds(
    lambda name, topic, deadline, retention, filt, push, ordering, dlq, attempts, exactly: types.Subscription(
        name=name,
        topic=topic,
        ack_deadline_seconds=deadline,
        message_retention_duration=retention,
        filter=filt,
        push_config=types.PushConfig(push_endpoint=push),
        enable_message_ordering=ordering,
        dead_letter_policy=types.DeadLetterPolicy(dead_letter_topic=dlq, max_delivery_attempts=attempts),
        enable_exactly_once_delivery=exactly,
    ),
    SUB,
    TOPIC,
    INT32,
    DURATION,
    TEXT,
    st.one_of(st.just(""), TEXT),
    st.booleans(),
    st.one_of(st.just(""), TOPIC),
    INT32,
    st.booleans(),
)

# (service, method, request type, strategy of requests)
CALLS: list[tuple[str, str, Any, st.SearchStrategy[Any]]] = [
    (
        "Publisher",
        "CreateTopic",
        types.Topic,
        st.builds(
            lambda n, labels, r: types.Topic(name=n, labels=labels, message_retention_duration=r),
            TOPIC,
            st.dictionaries(TEXT, TEXT, max_size=4),
            DURATION,
        ),
    ),
    ("Publisher", "GetTopic", types.GetTopicRequest, st.builds(lambda n: types.GetTopicRequest(topic=n), TOPIC)),
    (
        "Publisher",
        "DeleteTopic",
        types.DeleteTopicRequest,
        st.builds(lambda n: types.DeleteTopicRequest(topic=n), TOPIC),
    ),
    (
        "Publisher",
        "ListTopics",
        types.ListTopicsRequest,
        st.builds(
            lambda p, size, token: types.ListTopicsRequest(project=p, page_size=size, page_token=token),
            TEXT,
            INT32,
            TEXT,
        ),
    ),
    (
        "Publisher",
        "ListTopicSubscriptions",
        types.ListTopicSubscriptionsRequest,
        st.builds(
            lambda n, size, token: types.ListTopicSubscriptionsRequest(topic=n, page_size=size, page_token=token),
            TOPIC,
            INT32,
            TEXT,
        ),
    ),
    (
        "Publisher",
        "Publish",
        types.PublishRequest,
        st.builds(lambda n, m: types.PublishRequest(topic=n, messages=m), TOPIC, st.lists(MESSAGE, max_size=5)),
    ),
    (
        "Publisher",
        "DetachSubscription",
        types.DetachSubscriptionRequest,
        st.builds(lambda n: types.DetachSubscriptionRequest(subscription=n), SUB),
    ),
    ("Subscriber", "CreateSubscription", types.Subscription, SUBSCRIPTION),
    (
        "Subscriber",
        "GetSubscription",
        types.GetSubscriptionRequest,
        st.builds(lambda n: types.GetSubscriptionRequest(subscription=n), SUB),
    ),
    (
        "Subscriber",
        "UpdateSubscription",
        types.UpdateSubscriptionRequest,
        st.builds(
            lambda s, paths: types.UpdateSubscriptionRequest(subscription=s, update_mask={"paths": paths}),
            SUBSCRIPTION,
            st.lists(
                st.one_of(
                    st.sampled_from(
                        ["ack_deadline_seconds", "filter", "labels", "push_config", "message_retention_duration"]
                    ),
                    TEXT,
                ),
                max_size=3,
            ),
        ),
    ),
    (
        "Subscriber",
        "DeleteSubscription",
        types.DeleteSubscriptionRequest,
        st.builds(lambda n: types.DeleteSubscriptionRequest(subscription=n), SUB),
    ),
    (
        "Subscriber",
        "Pull",
        types.PullRequest,
        st.builds(lambda n, m: types.PullRequest(subscription=n, max_messages=m, return_immediately=True), SUB, INT32),
    ),
    (
        "Subscriber",
        "Acknowledge",
        types.AcknowledgeRequest,
        st.builds(
            lambda n, ids: types.AcknowledgeRequest(subscription=n, ack_ids=ids), SUB, st.lists(TEXT, max_size=5)
        ),
    ),
    (
        "Subscriber",
        "ModifyAckDeadline",
        types.ModifyAckDeadlineRequest,
        st.builds(
            lambda n, ids, d: types.ModifyAckDeadlineRequest(subscription=n, ack_ids=ids, ack_deadline_seconds=d),
            SUB,
            st.lists(TEXT, max_size=5),
            INT32,
        ),
    ),
    (
        "Subscriber",
        "ModifyPushConfig",
        types.ModifyPushConfigRequest,
        st.builds(
            lambda n, e: types.ModifyPushConfigRequest(subscription=n, push_config=types.PushConfig(push_endpoint=e)),
            SUB,
            TEXT,
        ),
    ),
    (
        "Subscriber",
        "CreateSnapshot",
        types.CreateSnapshotRequest,
        st.builds(lambda n, s: types.CreateSnapshotRequest(name=n, subscription=s), SNAP, SUB),
    ),
    (
        "Subscriber",
        "Seek",
        types.SeekRequest,
        st.one_of(
            st.builds(lambda s, t: types.SeekRequest(subscription=s, time=t), SUB, TIMESTAMP),
            st.builds(lambda s, n: types.SeekRequest(subscription=s, snapshot=n), SUB, SNAP),
        ),
    ),
    (
        "Subscriber",
        "DeleteSnapshot",
        types.DeleteSnapshotRequest,
        st.builds(lambda n: types.DeleteSnapshotRequest(snapshot=n), SNAP),
    ),
]


def _alive(emulator: EmulatorProcess) -> None:
    assert emulator.process.poll() is None, emulator.log()[-3000:]
    topic = emulator.topic_path(unique("alive"))
    emulator.publisher().create_topic(name=topic)
    assert emulator.publisher().publish(topic, b"still here").result(timeout=10)


@pytest.mark.parametrize(("service", "method", "kind", "requests"), CALLS, ids=[c[1] for c in CALLS])
def test_grpc_hostile_values_get_a_callers_error(service, method, kind, requests, emulator, channel) -> None:
    # a real topic and subscription for the well-formed names to hit
    for i in range(4):
        name = f"projects/{PROJECT}/topics/fz-{i}"
        try:
            emulator.publisher().create_topic(name=name)
            emulator.subscriber().create_subscription(name=f"projects/{PROJECT}/subscriptions/fz-{i}", topic=name)
        except Exception:
            pass
    call = channel.unary_unary(
        f"/google.pubsub.v1.{service}/{method}", request_serializer=kind.serialize, response_deserializer=None
    )

    @FUZZ
    @given(request=requests)
    def run(request: Any) -> None:
        try:
            call(request, timeout=20)
        except grpc.RpcError as err:
            assert err.code() not in SERVER_FAULTS, f"{method}({request!r}) -> {err.code()} {err.details()}"
            assert err.details(), f"{method}({request!r}) -> {err.code()} with no message"

    run()
    _alive(emulator)


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00" * 64,  # not HTTP/2 at all
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # the preface, then the connection closes
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04\x00\x00\x00\x00",  # a SETTINGS frame cut short
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\xff" * 4096,  # a frame header announcing garbage
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # HTTP/1.1 on the gRPC port
    ],
    ids=["zeros", "preface-only", "truncated-settings", "garbage-frames", "http1"],
)
def test_grpc_port_survives_truncated_and_garbage_frames(payload: bytes, emulator: EmulatorProcess) -> None:
    host, port = emulator.host.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.sendall(payload)
        raw.settimeout(2)
        with contextlib.suppress(TimeoutError, ConnectionError):
            raw.recv(4096)
    _alive(emulator)


REST_PATHS = [
    ("PUT", "topics/fz-0"),
    ("PATCH", "topics/fz-0"),
    ("POST", "topics/fz-0:publish"),
    ("PUT", "subscriptions/fzr-0"),
    ("PATCH", "subscriptions/fz-0"),
    ("POST", "subscriptions/fz-0:pull"),
    ("POST", "subscriptions/fz-0:acknowledge"),
    ("POST", "subscriptions/fz-0:modifyAckDeadline"),
    ("POST", "subscriptions/fz-0:modifyPushConfig"),
    ("POST", "subscriptions/fz-0:seek"),
    ("PUT", "snapshots/fz-0"),
    ("PATCH", "snapshots/fz-0"),
]
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=50)),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=20), inner, max_size=4)),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    [
        "topic",
        "messages",
        "data",
        "attributes",
        "ackIds",
        "ackDeadlineSeconds",
        "maxMessages",
        "pushConfig",
        "time",
        "snapshot",
        "subscription",
        "filter",
        "updateMask",
        "labels",
        "messageRetentionDuration",
    ]
)
BODIES = st.one_of(
    st.dictionaries(FIELDS, JSON, max_size=4).map(lambda b: json.dumps(b).encode()),
    JSON.map(lambda b: json.dumps(b).encode()),
    st.binary(max_size=200),
)


@pytest.mark.parametrize(("method", "path"), REST_PATHS, ids=[f"{m} {p}" for m, p in REST_PATHS])
def test_rest_any_body_gets_a_4xx_with_a_reason(method: str, path: str, emulator: EmulatorProcess) -> None:
    url = f"{emulator.rest_url}/v1/projects/{PROJECT}/{path}"
    with httpx.Client(timeout=20) as client:

        @FUZZ
        @given(body=BODIES)
        def run(body: bytes) -> None:
            response = client.request(method, url, content=body, headers={"content-type": "application/json"})
            assert response.status_code < 500, f"{method} {path} {body!r} -> {response.status_code} {response.text}"
            if response.status_code >= 400:
                assert response.json()["error"]["message"], response.text

        run()
    _alive(emulator)


def test_log_reads_back_after_the_fuzzing(emulator: EmulatorProcess, tmp_path: Path) -> None:
    """Last: whatever the fuzzing wrote into the data dir, a second emulator on it starts and serves."""
    assert emulator.data_dir is not None
    emulator.stop()
    again = start_emulator(tmp_path, data_dir=emulator.data_dir)
    try:
        _alive(again)
    finally:
        again.stop()
