"""The data types that flow through the detector: one element is a whole batch of messages.

Carrying batches as elements (not one event per element) is what lets the local runner reach
thousands of events per second: Beam's per-element cost is paid once per batch, and every stage
works on columns. Each stage returns a new :class:`Batch` (``dataclasses.replace``); the
``ack_ids`` ride along to the last stage, which acknowledges them only after the writes are done.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Message:
    """One Pub/Sub (or Kafka) message as received: payload bytes untouched, for the dead-letter topic."""

    data: bytes
    attributes: dict[str, str]
    message_id: str
    publish_time_us: int  # microseconds since the epoch (UTC)
    ack_id: str | None = None  # None where the source acknowledges by itself (Dataflow, Kafka)


@dataclass(frozen=True)
class Rejected:
    """A message that cannot be used, with the reason that goes into the dead-letter attribute."""

    message: Message
    reason: str


@dataclass(frozen=True)
class Batch:
    """A batch of messages and what the stages have made of it so far."""

    messages: tuple[Message, ...]
    received_at: float = 0.0  # time.time() when the read handed the batch to the pipeline
    # transform: parse
    events: tuple[dict[str, Any], ...] = ()  # valid events, in message order
    event_messages: tuple[Message, ...] = ()  # the message of each valid event
    rejected: tuple[Rejected, ...] = ()
    # transform: score (purchases only; indexes into ``events``)
    purchase_index: tuple[int, ...] = ()
    verdicts: tuple[dict[str, Any], ...] = ()  # one per purchase: score, is_anomaly, ..., model_version
    model_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ack_ids(self) -> list[str]:
        return [m.ack_id for m in self.messages if m.ack_id is not None]

    def replace(self, **changes: Any) -> Batch:
        return dataclasses.replace(self, **changes)

    def __len__(self) -> int:
        return len(self.messages)
