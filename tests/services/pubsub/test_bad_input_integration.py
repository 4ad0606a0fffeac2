"""Bad input gets the real service's error codes, and the emulator keeps serving everyone else."""

from __future__ import annotations

import contextlib
import socket

import grpc
import httpx
import pytest
from google.api_core import exceptions
from google.pubsub_v1 import types

from tests.fixtures.pubsub import EmulatorProcess, unique

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/pubsub/docs/reference/rpc/google.pubsub.v1"),
]


def _still_serving(emulator: EmulatorProcess) -> None:
    topic = emulator.topic_path(unique("alive"))
    emulator.publisher().create_topic(name=topic)
    assert emulator.publisher().publish(topic, b"x").result(timeout=10)
    assert httpx.get(f"{emulator.rest_url}/").text == "Ok."


def test_malformed_names_are_invalid_argument(pubsub_emulator: EmulatorProcess) -> None:
    publisher = pubsub_emulator.publisher()
    for bad in ["projects/hyp-local/topics/", "topics/abc", "projects/hyp-local/topics/a b c", "projects//topics/abc"]:
        with pytest.raises(exceptions.InvalidArgument):
            publisher.create_topic(name=bad)
    with pytest.raises(exceptions.InvalidArgument):
        publisher.create_topic(name=pubsub_emulator.topic_path("x" * 256))
    _still_serving(pubsub_emulator)


@pytest.mark.gcp_parity("https://cloud.google.com/pubsub/quotas#resource_limits")
def test_oversize_and_empty_messages_are_rejected(pubsub_emulator: EmulatorProcess) -> None:
    topic = pubsub_emulator.topic_path(unique("t"))
    stub = pubsub_emulator.publisher()
    stub.create_topic(name=topic)
    channel = grpc.insecure_channel(pubsub_emulator.host, options=[("grpc.max_send_message_length", -1)])
    publish = channel.unary_unary(
        "/google.pubsub.v1.Publisher/Publish",
        request_serializer=types.PublishRequest.serialize,
        response_deserializer=types.PublishResponse.deserialize,
    )
    cases = {
        "size exceeds": [types.PubsubMessage(data=b"x" * 10_000_001)],
        "no data and no attributes": [types.PubsubMessage()],
        "attributes": [types.PubsubMessage(data=b"x", attributes={f"k{i}": "v" for i in range(101)})],
        "value": [types.PubsubMessage(data=b"x", attributes={"k": "v" * 1025})],
        "more than 1000": [types.PubsubMessage(data=b"x")] * 1001,
    }
    for expected, messages in cases.items():
        with pytest.raises(grpc.RpcError) as err:
            publish(types.PublishRequest(topic=topic, messages=messages), timeout=20)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, expected
        assert expected in err.value.details()
    channel.close()
    _still_serving(pubsub_emulator)


def test_unknown_subscription_and_bad_ack_ids(pubsub_emulator: EmulatorProcess) -> None:
    client = pubsub_emulator.subscriber()
    missing = pubsub_emulator.subscription_path(unique("missing"))
    with pytest.raises(exceptions.NotFound):
        client.acknowledge(subscription=missing, ack_ids=["1-1"])
    with pytest.raises(exceptions.NotFound):
        client.get_subscription(subscription=missing)
    topic = pubsub_emulator.topic_path(unique("t"))
    sub = pubsub_emulator.subscription_path(unique("s"))
    pubsub_emulator.publisher().create_topic(name=topic)
    client.create_subscription(name=sub, topic=topic)
    with pytest.raises(exceptions.InvalidArgument, match="ack ID"):
        client.acknowledge(subscription=sub, ack_ids=["not-an-ack-id"])
    with pytest.raises(exceptions.InvalidArgument):
        client.modify_ack_deadline(subscription=sub, ack_ids=["1-1"], ack_deadline_seconds=601)
    with pytest.raises(exceptions.InvalidArgument):
        client.create_subscription(
            request={
                "name": pubsub_emulator.subscription_path(unique("s")),
                "topic": topic,
                "filter": "attributes.x = unquoted",
            }
        )
    _still_serving(pubsub_emulator)


@pytest.mark.local_only("robustness of our own servers: any bytes on the ports")
def test_garbage_bytes_on_the_ports(pubsub_emulator: EmulatorProcess) -> None:
    for addr in (pubsub_emulator.host, pubsub_emulator.rest_url.removeprefix("http://")):
        host, port = addr.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"\x00\xff garbage \r\n\r\n" * 100)
            s.settimeout(2)
            with contextlib.suppress(TimeoutError, ConnectionResetError):
                s.recv(1024)
    # a gRPC call whose body is not a protobuf
    channel = grpc.insecure_channel(pubsub_emulator.host)
    raw = channel.unary_unary("/google.pubsub.v1.Publisher/GetTopic")
    with pytest.raises(grpc.RpcError) as err:
        raw(b"\xff\xff\xff\xff\x0f", timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    channel.close()
    # REST: not JSON, wrong shape, unknown path
    r = httpx.post(f"{pubsub_emulator.rest_url}/v1/projects/hyp-local/topics/abc:publish", content=b"{nope")
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert httpx.get(f"{pubsub_emulator.rest_url}/v1/nowhere").status_code == 404
    _still_serving(pubsub_emulator)


def test_a_duration_protobuf_cannot_represent_is_invalid_and_changes_nothing(pubsub_emulator: EmulatorProcess) -> None:
    """Found by tests/fuzz: a retention with nanos of the other sign than its seconds was stored, and every later
    save of the state (any create or delete, with --data-dir) failed with INTERNAL."""
    from google.protobuf import duration_pb2, field_mask_pb2

    publisher = pubsub_emulator.publisher()
    bad = duration_pb2.Duration(seconds=700, nanos=-5)
    with pytest.raises(exceptions.InvalidArgument, match="message_retention_duration"):
        publisher.create_topic(
            request=types.Topic(name=pubsub_emulator.topic_path(unique("t")), message_retention_duration=bad)
        )
    topic = publisher.create_topic(name=pubsub_emulator.topic_path(unique("t")))
    mask = field_mask_pb2.FieldMask(paths=["message_retention_duration"])
    with pytest.raises(exceptions.InvalidArgument, match="message_retention_duration"):
        publisher.update_topic(topic=types.Topic(name=topic.name, message_retention_duration=bad), update_mask=mask)
    assert not publisher.get_topic(topic=topic.name).message_retention_duration  # unchanged
    subscriber = pubsub_emulator.subscriber()
    with pytest.raises(exceptions.InvalidArgument, match=r"retry_policy\.minimum_backoff"):
        subscriber.create_subscription(
            request=types.Subscription(
                name=pubsub_emulator.subscription_path(unique("s")),
                topic=topic.name,
                retry_policy=types.RetryPolicy(minimum_backoff=duration_pb2.Duration(seconds=-1, nanos=5)),
            )
        )
    _still_serving(pubsub_emulator)
