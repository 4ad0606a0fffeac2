"""Test data for the detector: purchase events, messages and batches."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from services.detector.batch import Batch, Message
from services.testing import events


def purchase_event(i: int, value: float = 40.0, tax: float | None = None, shipping: float = 4.99) -> dict[str, Any]:
    """Purchase ``i`` (ids from ``i``; seven users), at the kit's fixed time."""
    return events.purchase(
        value, tax=tax, shipping=shipping, user_id=f"u{i % 7}", client_id=f"c{i}", transaction_id=f"t{i}"
    )


def view_event(i: int) -> dict[str, Any]:
    return events.view_item(f"u{i % 7}")


def message(i: int, payload: Any, ack: bool = True, **attributes: str) -> Message:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    attrs = {"sent_at": str(int(time.time() * 1000)), **attributes}
    return Message(data, attrs, f"m{i}", 1_790_000_000_000_000 + i, f"a{i}" if ack else None)


def batch(*messages: Message) -> Batch:
    return Batch(messages=tuple(messages), received_at=time.time())


class FakeSubscriber:
    """Stands in for a SubscriberClient where the test is about the Beam runner, not Pub/Sub.

    Serves ``n`` messages in pull order and records acknowledgements; integration tests use the
    real emulator instead.
    """

    def __init__(self, n: int) -> None:
        from google.pubsub_v1 import types

        self._types = types
        self.n, self.next = n, 0
        self.acked: set[str] = set()
        self.lock = threading.Lock()

    def pull(self, request: dict[str, Any], timeout: float) -> Any:
        t = self._types
        with self.lock:
            k = min(request["max_messages"], self.n - self.next)
            first, self.next = self.next, self.next + k
        payload = json.dumps(purchase_event(0)).encode()
        received = [
            t.ReceivedMessage(ack_id=f"a{j}", message=t.PubsubMessage(data=payload, message_id=f"m{j}"))
            for j in range(first, first + k)
        ]
        return t.PullResponse(received_messages=received)

    def acknowledge(self, request: dict[str, Any]) -> None:
        with self.lock:
            self.acked.update(request["ack_ids"])

    def modify_ack_deadline(self, request: dict[str, Any]) -> None:
        pass


FAKES: dict[str, FakeSubscriber] = {}


def fake_client(emulator_host: str | None) -> FakeSubscriber:
    """client_factory for SubscriptionConfig: the FakeSubscriber registered under ``emulator_host``."""
    return FAKES[emulator_host or ""]


# The detector's verdict table: `dataflow_anomaly` once the warehouse names it (services/warehouse/tables.py
# DETECTOR_VERDICTS), `cloud_run_anomaly` before (the two states of the tree while that move lands).
def verdict_table() -> str:
    from services.warehouse import tables

    return str(getattr(tables, "DETECTOR_VERDICTS", "cloud_run_anomaly"))
