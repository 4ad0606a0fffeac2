"""Publishing unusable events to the dead-letter topic, with the reason, before acking them."""

from __future__ import annotations

import asyncio
from typing import Any

REASON_ATTRIBUTE = "deadletter_reason"
SOURCE_ATTRIBUTE = "deadletter_source"


class DeadLetter:
    """Publishes to one topic through google-cloud-pubsub (the emulator when its host is set).

    The client is made on the first dead letter, not at start: google-cloud-pubsub and gRPC cost the
    processor about 38 MiB of RSS, and a stack fed only good events never dead-letters one. A client
    that cannot be made fails that publish (the push then answers 503 and Pub/Sub retries it).
    """

    def __init__(self, emulator_host: str | None, topic_path: str) -> None:
        self.emulator_host, self.topic_path = emulator_host, topic_path
        self.client: Any = None
        self._making = asyncio.Lock()

    async def _client(self) -> Any:
        async with self._making:
            if self.client is None:
                from services.common.pubsub_clients import publisher

                # the import and the channel take a second the first time: off the event loop
                self.client = await asyncio.to_thread(publisher, self.emulator_host)
        return self.client

    async def publish(self, data: bytes, attributes: dict[str, str], reason: str, timeout_s: float = 10.0) -> str:
        attrs = dict(attributes)
        attrs[REASON_ATTRIBUTE] = reason.encode()[:1024].decode(errors="ignore")  # Pub/Sub caps values at 1 KiB
        attrs[SOURCE_ATTRIBUTE] = "processor"
        client = await asyncio.wait_for(self._client(), timeout_s)
        future = client.publish(self.topic_path, data, **attrs)
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)

    def close(self) -> None:
        if self.client is not None:
            self.client.stop()
