"""Pub/Sub: the emulator over raw gRPC (fast path), or real Pub/Sub through the client library.

Against an emulator (``PUBSUB_EMULATOR_HOST``) requests are encoded by hand
(PublishRequest is two length-delimited fields) and several are kept in flight,
which is what lets one Python process publish tens of thousands of events a
second. Without an emulator host the google-cloud-pubsub client publishes
with the ambient credentials, as against real Pub/Sub.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import pyarrow.compute as pc

from loadgen.core import Batch
from loadgen.render import attribute_index, attribute_templates, payloads
from loadgen.sinks import SinkError

PUBLISH_METHOD = "/google.pubsub.v1.Publisher/Publish"
MAX_MESSAGES_PER_REQUEST = 1000  # real Pub/Sub's limit
MAX_REQUEST_BYTES = 9_000_000  # under real Pub/Sub's 10 MB
BLOCKING_MAX_MESSAGES = 500  # requests up to this size go out as a blocking call when none is in flight
RETRYABLE = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL"}


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + varint(len(payload)) + payload


def encode_attributes(attributes: dict[str, str]) -> bytes:
    """PubsubMessage.attributes (field 2, a map) as wire bytes."""
    return b"".join(_field(0x12, _field(0x0A, k.encode()) + _field(0x12, v.encode())) for k, v in attributes.items())


def encode_request(topic: str, messages: list[bytes]) -> bytes:
    """PublishRequest{topic=1, messages=2} from already-encoded PubsubMessages."""
    return _field(0x0A, topic.encode()) + b"".join(messages)


def decode_message_ids(response: bytes) -> list[str]:
    """PublishResponse.message_ids (field 1, repeated string)."""
    ids, i = [], 0
    while i < len(response):
        tag = response[i]
        i += 1
        length = shift = 0
        while True:
            b = response[i]
            i += 1
            length |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if tag == 0x0A:
            ids.append(response[i : i + length].decode())
        i += length
    return ids


class PubSubSink:
    def __init__(
        self,
        topic_path: str,
        emulator_host: str | None,
        n_users: int,
        run_id: str,
        max_in_flight: int = 4,
        timeout_s: float = 30.0,
    ) -> None:
        self.topic_path, self.n_users, self.run_id = topic_path, n_users, run_id
        self.max_in_flight, self.timeout_s = max_in_flight, timeout_s
        self.published = 0
        self._in_flight: deque[tuple[Any, bytes, int]] = deque()
        self._varints = [varint(i) for i in range(1 << 14)]
        if emulator_host:
            import grpc

            self._grpc = grpc
            self._channel = grpc.insecure_channel(
                emulator_host,
                options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)],
            )
            self._publish = self._channel.unary_unary(PUBLISH_METHOD)
            self._client = None
        else:
            from services.common.pubsub_clients import publisher

            self._client = publisher(None)
            self._futures: list[Any] = []

    def _len(self, n: int) -> bytes:
        return self._varints[n] if n < 16384 else varint(n)

    def send(self, batch: Batch, now: float) -> None:
        if not len(batch):
            return
        data = pc.cast(payloads(batch, self.n_users, now), "binary").to_pylist()
        templates = attribute_templates(self.run_id, int(now * 1000))
        index = attribute_index(batch).tolist()
        if self._client is not None:
            for d, i in zip(data, index, strict=True):
                self._futures.append(self._client.publish(self.topic_path, d, **templates[i]))
            if len(self._futures) >= 10_000:
                self._wait_client()
            return
        attrs = [encode_attributes(t) for t in templates]
        ln = self._len
        messages: list[bytes] = []
        size = 0
        for d, i in zip(data, index, strict=True):
            inner = b"\x0a" + ln(len(d)) + d + attrs[i]
            m = b"\x12" + ln(len(inner)) + inner
            if len(messages) >= MAX_MESSAGES_PER_REQUEST or size + len(m) > MAX_REQUEST_BYTES:
                self._submit(messages)
                messages, size = [], 0
            messages.append(m)
            size += len(m)
        if messages:
            self._submit(messages)

    def _submit(self, messages: list[bytes]) -> None:
        while len(self._in_flight) >= self.max_in_flight:
            self._complete(self._in_flight.popleft())
        request = encode_request(self.topic_path, messages)
        if not self._in_flight and len(messages) <= BLOCKING_MAX_MESSAGES:
            # a paced run's small send: one blocking call (a future costs a gRPC helper thread per call)
            return self._complete((None, request, len(messages)))
        self._in_flight.append((self._publish.future(request, timeout=self.timeout_s), request, len(messages)))

    def _complete(self, entry: tuple[Any, bytes, int], attempt: int = 0) -> None:
        future, request, n = entry
        try:
            response = future.result() if future is not None else self._publish(request, timeout=self.timeout_s)
            ids = decode_message_ids(response)
        except self._grpc.RpcError as exc:
            code = exc.code().name if exc.code() else "UNKNOWN"
            if code in RETRYABLE and attempt < 5:
                time.sleep(min(0.1 * 2**attempt, 2.0))
                return self._complete((None, request, n), attempt + 1)
            if code == "NOT_FOUND":
                raise SinkError(f"--topic: {self.topic_path} does not exist on the emulator") from None
            raise SinkError(f"pubsub: publish failed: {code}: {exc.details()}") from None
        if len(ids) != n:
            raise SinkError(f"pubsub: the server acknowledged {len(ids)} of {n} messages")
        self.published += n

    def _wait_client(self) -> None:
        for f in self._futures:
            try:
                f.result(timeout=self.timeout_s)
            except Exception as exc:
                raise SinkError(f"pubsub: publish failed: {exc}") from None
            self.published += 1
        self._futures = []

    def close(self) -> None:
        try:
            if self._client is not None:
                self._wait_client()
                self._client.stop()
            else:
                while self._in_flight:
                    self._complete(self._in_flight.popleft())
                self._channel.close()
        finally:
            self._in_flight.clear()
