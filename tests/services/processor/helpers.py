"""Events, push envelopes and an in-process processor for the processor tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx

from services.processor.app import create_app
from services.processor.settings import ProcessorSettings


def purchase_event(value: float = 50.0, tax: float = 4.0, shipping: float = 5.0, user: str = "u1") -> dict[str, Any]:
    return {
        "event_datetime": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "event": "purchase",
        "user_id": user,
        "client_id": "c1",
        "page": "/checkout",
        "page_previous": "/cart",
        "ecommerce": {
            "purchase": {
                "transaction_id": f"t-{user}-{value}",
                "affiliation": "store",
                "value": value,
                "tax": tax,
                "shipping": shipping,
                "currency": "EUR",
                "items": [{"item_id": "i1", "item_name": "mug", "price": value, "quantity": 1}],
            }
        },
    }


def view_event(user: str = "u1") -> dict[str, Any]:
    return {
        "event_datetime": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "event": "view_item",
        "user_id": user,
        "ecommerce": {"items": [{"item_id": "i1", "price": 10.0}]},
    }


def envelope(
    event: Any, message_id: str, attributes: dict[str, str] | None = None, *, raw: bytes | None = None
) -> dict[str, Any]:
    data = raw if raw is not None else json.dumps(event).encode()
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes or {"anomaly": "0", "event": "purchase"},
            "messageId": message_id,
            "publishTime": "2026-11-22T08:00:00.123456789Z",
        },
        "subscription": "projects/hyp-local/subscriptions/hyp_subscription_cloud_run",
    }


def settings(warehouse_dir, endpoint_url: str, **env: Any) -> ProcessorSettings:
    values = {
        "HYP_WAREHOUSE_DIR": str(warehouse_dir),
        "HYP_ENDPOINT_URL": endpoint_url,
        "HYP_PROCESSOR_ENDPOINT_TIMEOUT_S": "2",
        "HYP_PROCESSOR_COMMIT_INTERVAL_S": "0.05",  # sequential test pushes need not wait the default 0.5 s
        "HYP_PROCESSOR_COMPACT_INTERVAL_S": "0",
        **env,
    }
    return ProcessorSettings(**{k: str(v) for k, v in values.items()})


class RecordingDeadLetter:
    """Stands in for the dead-letter publisher in fast tests (the integration tests use the emulator)."""

    def __init__(self) -> None:
        self.published: list[tuple[bytes, dict[str, str], str]] = []

    async def publish(self, data: bytes, attributes: dict[str, str], reason: str, timeout_s: float = 10.0) -> str:
        self.published.append((data, attributes, reason))
        return str(len(self.published))

    def close(self) -> None:
        pass


@contextlib.asynccontextmanager
async def processor_client(app) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, behind an in-process async HTTP client (concurrent requests work)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://processor") as client:
            yield client


def run(coro):
    return asyncio.run(coro)


def make_app(s: ProcessorSettings, deadletter: Any = None):
    return create_app(s, deadletter=deadletter)
