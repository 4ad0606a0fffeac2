"""Pub/Sub notifications for Cloud Storage: ``notificationConfigs`` on a bucket, messages to the local emulator.

A configuration names a topic (``//pubsub.googleapis.com/projects/P/topics/T``), optionally the event
types and an object name prefix it is for, custom attributes and a payload format (``JSON_API_V1``: the
object resource as the message data; ``NONE``: no data). Each committed change of an object publishes
one message per matching configuration with the attributes Cloud Storage documents
(cloud.google.com/storage/docs/pubsub-notifications): ``notificationConfig``, ``eventType``,
``payloadFormat``, ``bucketId``, ``objectId``, ``objectGeneration``, ``eventTime``, and on a replaced
object ``overwroteGeneration`` (the new one's finalize) / ``overwrittenByGeneration`` (the old one's
delete). Configurations are kept in ``buckets/<bucket>/notifications.json`` (written atomically) and
go with their bucket.

Messages go through Google's Pub/Sub client to ``PUBSUB_EMULATOR_HOST`` (the client batches and
retries). Local-only: pending messages are held in memory, bounded (``max_pending``); a message that
cannot be queued or published is counted and logged, never retried forever, and a process killed
before a message was published loses that message (Cloud Storage delivers at least once).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from services.storage import errors, resources

log = logging.getLogger(__name__)

EVENT_TYPES = ("OBJECT_FINALIZE", "OBJECT_METADATA_UPDATE", "OBJECT_DELETE", "OBJECT_ARCHIVE")
PAYLOAD_FORMATS = ("JSON_API_V1", "NONE")
MAX_PER_BUCKET = 100  # Cloud Storage's limits: 100 configurations per bucket,
MAX_PER_EVENT = 10  # at most 10 of them triggered by one event type
TOPIC = re.compile(r"//pubsub\.googleapis\.com/projects/([^/]+)/topics/([^/]+)")
WRITABLE = ("topic", "payload_format", "event_types", "custom_attributes", "object_name_prefix")

Config = dict[str, Any]


def check(body: dict[str, Any], existing: list[Config]) -> Config:
    """The stored form of a new configuration, or the JSON API's error naming what is wrong."""
    topic = body.get("topic")
    if not isinstance(topic, str) or not TOPIC.fullmatch(topic):
        raise errors.invalid(
            "Invalid Google Cloud Pub/Sub topic. It should look like '//pubsub.googleapis.com/projects/*/topics/*'."
        )
    payload = body.get("payload_format") or "JSON_API_V1"
    if payload not in PAYLOAD_FORMATS:
        raise errors.invalid(f"Invalid payload_format '{payload}': must be one of {', '.join(PAYLOAD_FORMATS)}.")
    events = body.get("event_types") or []
    if not isinstance(events, list) or any(e not in EVENT_TYPES for e in events):
        raise errors.invalid(f"Invalid event_types {events!r}: each must be one of {', '.join(EVENT_TYPES)}.")
    attributes = body.get("custom_attributes") or {}
    if not isinstance(attributes, dict) or not all(isinstance(v, str) for v in attributes.values()):
        raise errors.invalid("Invalid custom_attributes: must be an object of string values.")
    prefix = body.get("object_name_prefix") or ""
    if not isinstance(prefix, str):
        raise errors.invalid("Invalid object_name_prefix: must be a string.")
    if len(existing) >= MAX_PER_BUCKET:
        raise errors.invalid(f"A bucket can have at most {MAX_PER_BUCKET} notification configurations.")
    for event in events or EVENT_TYPES:
        if sum(1 for c in existing if event in (c.get("event_types") or EVENT_TYPES)) >= MAX_PER_EVENT:
            raise errors.invalid(f"At most {MAX_PER_EVENT} notification configurations can trigger on {event}.")
    ids = [int(c["id"]) for c in existing]
    config: Config = {"id": str(max(ids, default=0) + 1), "topic": topic, "payload_format": payload}
    if events:
        config["event_types"] = list(dict.fromkeys(events))
    if attributes:
        config["custom_attributes"] = {str(k): v for k, v in attributes.items()}
    if prefix:
        config["object_name_prefix"] = prefix
    return config


def notification_json(bucket: str, config: Config, base_url: str) -> dict[str, Any]:
    return {
        "kind": "storage#notification",
        "selfLink": f"{base_url}/storage/v1/b/{bucket}/notificationConfigs/{config['id']}",
        "etag": config["id"],
        **config,
    }


def topic_path(config: Config) -> str:
    match = TOPIC.fullmatch(config["topic"])
    assert match is not None  # checked when stored
    return f"projects/{match[1]}/topics/{match[2]}"


def matches(config: Config, event: str, name: str) -> bool:
    return event in (config.get("event_types") or EVENT_TYPES) and name.startswith(
        config.get("object_name_prefix") or ""
    )


def message(
    bucket: str, config: Config, event: str, stored: dict[str, Any], extra: dict[str, str], base_url: str
) -> tuple[bytes, dict[str, str]]:
    """(data, attributes) of the message ``config`` publishes for ``event`` on ``stored``."""
    attributes = {
        **(config.get("custom_attributes") or {}),
        "notificationConfig": f"projects/_/buckets/{bucket}/notificationConfigs/{config['id']}",
        "eventType": event,
        "payloadFormat": config["payload_format"],
        "bucketId": bucket,
        "objectId": stored["name"],
        "objectGeneration": str(stored["generation"]),
        "eventTime": resources.now(),
        **extra,
    }
    data = b""
    if config["payload_format"] == "JSON_API_V1":
        data = json.dumps(resources.object_json(stored, base_url)).encode()
    return data, attributes


class Publisher:
    """Publishes notification messages to the Pub/Sub emulator at ``host`` through Google's client,
    created on first use (a stack without notifications never loads it)."""

    def __init__(self, host: str | None, max_pending: int = 10_000) -> None:
        self.host = host
        self.max_pending = max_pending
        self.published = 0
        self.failed = 0
        self._lock = threading.Lock()
        self._client: Any = None

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                if not self.host:
                    raise errors.invalid("Notifications need a Pub/Sub emulator: PUBSUB_EMULATOR_HOST is not set.")
                from google.cloud import pubsub_v1

                from services.common.pubsub_clients import publisher

                flow = pubsub_v1.types.PublishFlowControl(
                    message_limit=self.max_pending,
                    limit_exceeded_behavior=pubsub_v1.types.LimitExceededBehavior.ERROR,
                )
                options = pubsub_v1.types.PublisherOptions(flow_control=flow)
                self._client = publisher(self.host, publisher_options=options)
            return self._client

    def check_topic(self, topic: str) -> None:
        """The topic exists on the emulator (Cloud Storage checks the destination when a configuration is made)."""
        from google.api_core import exceptions

        try:
            self.client().get_topic(topic=topic, timeout=10)
        except exceptions.NotFound:
            raise errors.invalid(f"The Cloud Pub/Sub topic '{topic}' does not exist.") from None
        except exceptions.GoogleAPICallError as exc:
            raise errors.ApiError(
                503, "backendError", f"The Pub/Sub emulator at {self.host} did not answer: {exc.message}"
            ) from None

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> None:
        try:
            future = self.client().publish(topic, data, **attributes)
        except Exception as exc:  # flow control full, client closed: counted, the object change stands
            self._failed(topic, exc)
            return
        future.add_done_callback(self._done(topic))

    def _done(self, topic: str) -> Callable[[Any], None]:
        def done(future: Any) -> None:
            exc = future.exception()
            if exc is None:
                self.published += 1
            else:
                self._failed(topic, exc)

        return done

    def _failed(self, topic: str, exc: BaseException) -> None:
        self.failed += 1
        log.warning("storage notification to %s not published: %s", topic, exc)

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.stop()  # publishes what is batched, then stops
                self._client = None


def listener(notifications: dict[str, list[Config]], publisher: Publisher, base_url: str) -> Any:
    """The store's listener: one message per configuration of the object's bucket that matches the event."""

    def on_change(event: str, stored: dict[str, Any], extra: dict[str, str]) -> None:
        bucket = stored["bucket"]
        for config in notifications.get(bucket, ()):
            if matches(config, event, stored["name"]):
                data, attributes = message(bucket, config, event, stored, extra, base_url)
                publisher.publish(topic_path(config), data, attributes)

    return on_change
