"""Publishing unusable events to the dead-letter topic, with the reason, before acking them."""

from __future__ import annotations

import asyncio
from typing import Any

REASON_ATTRIBUTE = "deadletter_reason"
SOURCE_ATTRIBUTE = "deadletter_source"


class DeadLetter:
    """Publishes to one topic through google-cloud-pubsub (the emulator when its host is set)."""

    def __init__(self, emulator_host: str | None, topic_path: str) -> None:
        from services.common.pubsub_clients import publisher

        self.topic_path = topic_path
        self.client: Any = publisher(emulator_host)

    async def publish(self, data: bytes, attributes: dict[str, str], reason: str, timeout_s: float = 10.0) -> str:
        attrs = dict(attributes)
        attrs[REASON_ATTRIBUTE] = reason.encode()[:1024].decode(errors="ignore")  # Pub/Sub caps values at 1 KiB
        attrs[SOURCE_ATTRIBUTE] = "processor"
        future = self.client.publish(self.topic_path, data, **attrs)
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)

    def close(self) -> None:
        self.client.stop()
