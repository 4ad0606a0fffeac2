"""Push delivery from the emulator process to a local HTTP server: envelope, retries, dead-letter."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.fixtures.pubsub import EmulatorProcess, unique

pytestmark = pytest.mark.integration
WAIT_S = 20.0


class Receiver:
    """An HTTP endpoint that fails the first `failures` deliveries of each message, then answers 204."""

    def __init__(self, failures: int = 0, always_fail: bool = False) -> None:
        self.failures = failures
        self.always_fail = always_fail
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    receiver.requests.append(body)
                    seen = sum(
                        1 for r in receiver.requests if r["message"]["messageId"] == body["message"]["messageId"]
                    )
                ok = not receiver.always_fail and seen > receiver.failures
                self.send_response(204 if ok else 503)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/push"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory() -> Iterator:
    made: list[Receiver] = []

    def make(**kwargs) -> Receiver:
        made.append(Receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _wait(predicate, timeout: float = WAIT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_push_retries_until_2xx(pubsub_emulator: EmulatorProcess, receiver_factory) -> None:
    receiver = receiver_factory(failures=2)
    topic = pubsub_emulator.topic_path(unique("t"))
    sub = pubsub_emulator.subscription_path(unique("push"))
    pubsub_emulator.publisher().create_topic(name=topic)
    pubsub_emulator.subscriber().create_subscription(
        request={
            "name": sub,
            "topic": topic,
            "push_config": {"push_endpoint": receiver.url},
            "retry_policy": {"minimum_backoff": {"nanos": 50_000_000}, "maximum_backoff": {"seconds": 1}},
        }
    )
    pubsub_emulator.publisher().publish(topic, b"payload", event="purchase").result(timeout=WAIT_S)
    assert _wait(lambda: len(receiver.requests) >= 3)
    first = receiver.requests[0]
    assert base64.b64decode(first["message"]["data"]) == b"payload"
    assert first["message"]["attributes"] == {"event": "purchase"}
    assert first["subscription"] == sub
    assert first["message"]["publishTime"]
    stats = httpx.get(f"{pubsub_emulator.rest_url}/admin/state").json()
    assert _wait(
        lambda: (
            next(
                s
                for s in httpx.get(f"{pubsub_emulator.rest_url}/admin/state").json()["subscriptions"]
                if s["name"] == sub
            )["backlog"]
            == 0
        )
    )
    assert stats["subscriptions"]
    time.sleep(0.5)  # a delivery after the 2xx would be a bug: give it the chance to show
    assert len(receiver.requests) == 3


def test_push_dead_letters_after_max_attempts(pubsub_emulator: EmulatorProcess, receiver_factory) -> None:
    receiver = receiver_factory(always_fail=True)
    topic = pubsub_emulator.topic_path(unique("t"))
    dl_topic = pubsub_emulator.topic_path(unique("dl"))
    dl_sub = pubsub_emulator.subscription_path(unique("dls"))
    sub = pubsub_emulator.subscription_path(unique("push"))
    publisher, client = pubsub_emulator.publisher(), pubsub_emulator.subscriber()
    publisher.create_topic(name=topic)
    publisher.create_topic(name=dl_topic)
    client.create_subscription(name=dl_sub, topic=dl_topic)
    client.create_subscription(
        request={
            "name": sub,
            "topic": topic,
            "push_config": {"push_endpoint": receiver.url},
            "dead_letter_policy": {"dead_letter_topic": dl_topic, "max_delivery_attempts": 5},
            "retry_policy": {"minimum_backoff": {"nanos": 20_000_000}, "maximum_backoff": {"nanos": 100_000_000}},
        }
    )
    publisher.publish(topic, b"never-accepted").result(timeout=WAIT_S)
    assert _wait(lambda: len(receiver.requests) >= 5)
    assert [r["deliveryAttempt"] for r in receiver.requests[:5]] == [1, 2, 3, 4, 5]
    deadline = time.monotonic() + WAIT_S
    dead = []
    while not dead and time.monotonic() < deadline:
        dead = list(client.pull(subscription=dl_sub, max_messages=1, timeout=5).received_messages)
    assert dead and dead[0].message.data == b"never-accepted"
    assert dead[0].message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert len(receiver.requests) == 5
