"""Push delivery from the emulator process to a local HTTP server: envelope, retries, dead-letter."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from services.common.processes import wait_for
from services.testing.pubsub import pull, topic_and_subscription
from services.testing.push import PushReceiver, PushRequest
from tests.fixtures.pubsub import EmulatorProcess, start_emulator, stop_emulator, unique

pytestmark = [pytest.mark.integration, pytest.mark.gcp_parity("https://cloud.google.com/pubsub/docs/push")]
WAIT_S = 20.0


def failing_receiver(failures: int = 0, always_fail: bool = False) -> PushReceiver:
    """An endpoint that fails (503) the first `failures` deliveries of each message, then answers 204."""

    def answer(request: PushRequest) -> int:
        ok = not always_fail and receiver.count(request.message_id) > failures
        return 204 if ok else 503

    receiver = PushReceiver(answer)
    return receiver


@pytest.fixture
def receiver_factory() -> Iterator:
    made: list[PushReceiver] = []

    def make(**kwargs) -> PushReceiver:
        made.append(failing_receiver(**kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


def _wait(predicate: Callable[[], object], timeout: float = WAIT_S) -> bool:
    return bool(wait_for(predicate, timeout, "the push deliveries", interval=0.05))


def test_push_retries_until_2xx(pubsub_emulator: EmulatorProcess, receiver_factory) -> None:
    receiver = receiver_factory(failures=2)
    topic, sub = topic_and_subscription(
        pubsub_emulator,
        push_config={"push_endpoint": receiver.url},
        retry_policy={"minimum_backoff": {"nanos": 50_000_000}, "maximum_backoff": {"seconds": 1}},
    )
    pubsub_emulator.publisher().publish(topic, b"payload", event="purchase").result(timeout=WAIT_S)
    assert _wait(lambda: len(receiver.requests) >= 3)
    first = receiver.requests[0].json()
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
    assert [r.json()["deliveryAttempt"] for r in receiver.requests[:5]] == [1, 2, 3, 4, 5]
    dead = pull(client, dl_sub, 1, timeout=WAIT_S)
    assert dead and dead[0].message.data == b"never-accepted"
    assert dead[0].message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == "5"
    assert len(receiver.requests) == 5


class SlowReceiver(PushReceiver):
    """An endpoint that answers 204 after `delay` seconds, counting the requests it holds at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.ids: list[str] = []  # wrapped deliveries, in the order they were answered
        self.bodies: list[tuple[dict[str, str], bytes]] = []  # unwrapped ones
        self.active = self.max_active = 0
        super().__init__(self._answer)

    def _answer(self, request: PushRequest) -> int:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(self.delay)  # the slow endpoint under test (server side), not a wait in the test
        with self.lock:
            self.active -= 1
            if request.wrapped:
                self.ids.append(request.message_id)
            else:
                self.bodies.append((request.headers, request.body))
        return 204


@pytest.fixture
def limited_emulator(tmp_path) -> Iterator[EmulatorProcess]:
    """A private emulator whose push subscriptions keep at most 20 requests in flight."""
    emulator = start_emulator(tmp_path, topology="none", extra_env={"HYP_PUBSUB_PUSH_MAX_OUTSTANDING": "20"})
    try:
        yield emulator
    finally:
        stop_emulator(emulator)


def _sub_state(emulator: EmulatorProcess, name: str) -> dict:
    subs = httpx.get(f"{emulator.rest_url}/admin/state", timeout=10).json()["subscriptions"]
    return next(s for s in subs if s["name"] == name)


def test_push_keeps_many_requests_in_flight_to_a_slow_endpoint(limited_emulator: EmulatorProcess) -> None:
    receiver = SlowReceiver(delay=0.5)
    try:
        topic, sub = topic_and_subscription(limited_emulator, push_config={"push_endpoint": receiver.url})
        publisher = limited_emulator.publisher()
        futures = [publisher.publish(topic, f"m{i}".encode()) for i in range(200)]
        published = sorted(f.result(timeout=WAIT_S) for f in futures)
        # 200 x 0.5 s one at a time would be 100 s; 20 at a time, 5 s
        assert _wait(lambda: len(receiver.ids) >= 200 and _sub_state(limited_emulator, sub)["backlog"] == 0, 60)
        assert sorted(receiver.ids) == published  # every message once: none lost, none pushed twice
        assert receiver.max_active == 20  # the subscription's max outstanding, reached and never exceeded
        metrics = httpx.get(f"{limited_emulator.rest_url}/metrics", timeout=10).text
        assert f'pubsub_push_requests_total{{subscription="{sub}",outcome="ack"}} 200' in metrics
    finally:
        receiver.close()


def test_push_no_wrapper_sends_raw_data_and_metadata_headers(pubsub_emulator: EmulatorProcess) -> None:
    receiver = SlowReceiver(delay=0.0)
    try:
        topic, sub = topic_and_subscription(
            pubsub_emulator,
            push_config={"push_endpoint": receiver.url, "no_wrapper": {"write_metadata": True}},
        )
        publisher = pubsub_emulator.publisher()
        message_id = publisher.publish(topic, b"\x00raw bytes", kind="raw").result(timeout=WAIT_S)
        assert _wait(lambda: len(receiver.bodies) >= 1 and _sub_state(pubsub_emulator, sub)["backlog"] == 0)
        headers, body = receiver.bodies[0]
        headers = {k.lower(): v for k, v in headers.items()}
        assert body == b"\x00raw bytes"
        assert headers["x-goog-pubsub-kind"] == "raw"
        assert headers["x-goog-pubsub-message-id"] == message_id
        assert headers["x-goog-pubsub-subscription-name"] == sub
    finally:
        receiver.close()
