"""The Pub/Sub push envelope (what a Cloud Run service receives) -> PushMessage, or a reason why not.

``{"message": {"data": <base64>, "attributes": {...}, "messageId": "...", "publishTime": "..."},
"subscription": "projects/.../subscriptions/..."}``; the snake_case spellings real Pub/Sub also
sends (``message_id``, ``publish_time``) are accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


class EnvelopeError(ValueError):
    """Not a push envelope; the message says what is wrong (answered with 400)."""


@dataclass(frozen=True)
class PushMessage:
    data: bytes
    attributes: dict[str, str]
    message_id: str
    publish_time: datetime | None  # naive UTC, as the warehouse stores times
    subscription: str | None
    delivery_attempt: int | None


def parse_time(text: str) -> datetime:
    """RFC 3339 (``2026-11-22T08:00:00.123456789Z``) -> naive UTC datetime (to microseconds)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    if "." in value:  # Python parses at most 6 fractional digits; Pub/Sub sends up to 9
        head, _, rest = value.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        value = f"{head}.{rest[:digits][:6].ljust(6, '0')}{rest[digits:]}"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def parse_envelope(body: bytes) -> PushMessage:
    try:
        envelope = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise EnvelopeError(f"body: not JSON ({exc})") from None
    if not isinstance(envelope, dict):
        raise EnvelopeError("body: expected a push envelope object with a message")
    message = envelope.get("message")
    if not isinstance(message, dict):
        raise EnvelopeError("message: missing or not an object; no Pub/Sub message received")
    message_id = message.get("messageId", message.get("message_id"))
    if not isinstance(message_id, str) or not message_id:
        raise EnvelopeError("message.messageId: missing or not a non-empty string")
    data = message.get("data", "")
    if not isinstance(data, str):
        raise EnvelopeError("message.data: expected a base64 string")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("message.data: not valid base64") from None
    attributes: Any = message.get("attributes") or {}
    if not isinstance(attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        raise EnvelopeError("message.attributes: expected an object of string values")
    _check_attributes(attributes)
    published = message.get("publishTime", message.get("publish_time"))
    publish_time = None
    if published is not None:
        if not isinstance(published, str):
            raise EnvelopeError("message.publishTime: expected an RFC 3339 string")
        try:
            publish_time = parse_time(published)
        except ValueError:
            raise EnvelopeError(f"message.publishTime: not an RFC 3339 time: {published!r}") from None
    subscription = envelope.get("subscription")
    if subscription is not None and not isinstance(subscription, str):
        raise EnvelopeError("subscription: expected a string")
    attempt = envelope.get("deliveryAttempt")
    if attempt is not None and (isinstance(attempt, bool) or not isinstance(attempt, int)):
        raise EnvelopeError("deliveryAttempt: expected an integer")
    return PushMessage(raw, dict(attributes), message_id, publish_time, subscription, attempt)


# Pub/Sub's limits on what a publisher may attach (https://cloud.google.com/pubsub/quotas#resource_limits): a
# pushed message cannot break them, so an envelope that does is not from Pub/Sub (and its attributes could not
# be published to the dead-letter topic either).
MAX_ATTRIBUTES, MAX_KEY_BYTES, MAX_VALUE_BYTES = 100, 256, 1024


def _check_attributes(attributes: dict[str, str]) -> None:
    if len(attributes) > MAX_ATTRIBUTES:
        raise EnvelopeError(f"message.attributes: {len(attributes)} attributes, Pub/Sub allows {MAX_ATTRIBUTES}")
    for key, value in attributes.items():
        if not key:
            raise EnvelopeError("message.attributes: an attribute key is empty")
        if len(key.encode()) > MAX_KEY_BYTES:
            raise EnvelopeError(f"message.attributes: key {key[:40]!r}... is over {MAX_KEY_BYTES} bytes")
        if len(value.encode()) > MAX_VALUE_BYTES:
            raise EnvelopeError(f"message.attributes[{key[:40]!r}]: value is over {MAX_VALUE_BYTES} bytes")
