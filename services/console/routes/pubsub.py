"""Pub/Sub actions, all through the emulator's public REST API (the paths and JSON of
pubsub.googleapis.com/v1, ``HYP_CONSOLE_PUBSUB_URL``): topics and subscriptions created and deleted,
publish, peek (pull, then hand the messages back: nack, or hold them for a chosen time so some can be
acked or nacked), seek to a time, and the dead-lettered messages with their reasons, republished to the
topic they came from."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, field_validator

from services.common import names
from services.common.settings import DEADLETTER_TOPIC
from services.console.deps import HttpDep, SettingsDep
from services.console.settings import ConsoleSettings
from services.console.upstream import ActionError, call, view

router = APIRouter(prefix="/api/pubsub")

# Pub/Sub's resource ID rule: a letter, then 2-254 of letters, digits and - _ . ~ + % (the emulator refuses "goog")
RESOURCE_ID = r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$"
DEAD_LETTER_PREFIX = "CloudPubSubDeadLetter"  # the attributes Pub/Sub adds to a dead-lettered message
DEADLETTER_SUBSCRIPTION = "hyp_subscription_deadletter"
SUBS = "subscriptions"
ResourceId = Annotated[str, Field(pattern=RESOURCE_ID)]


class NewTopic(BaseModel):
    name: ResourceId


class NewSubscription(BaseModel):
    name: ResourceId
    topic: ResourceId
    filter: str = Field("", max_length=256)
    ack_deadline_s: int = Field(10, ge=10, le=600)
    dead_letter_topic: ResourceId | None = None
    max_delivery_attempts: int = Field(5, ge=5, le=100)


class Publish(BaseModel):
    topic: ResourceId
    data: str = Field("", max_length=1_000_000)
    attributes: dict[str, str] = Field(default_factory=dict)
    json_data: bool = Field(True, description="the data must parse as JSON")

    @field_validator("attributes")
    @classmethod
    def _keys(cls, attributes: dict[str, str]) -> dict[str, str]:
        for key in attributes:
            if not key or key.startswith("goog"):
                raise ValueError(f"attribute key {key!r}: must be non-empty and must not start with 'goog'")
        return attributes


class Peek(BaseModel):
    subscription: ResourceId
    max_messages: int = Field(10, ge=1, le=100)
    hold_s: int = Field(0, ge=0, le=600, description="0: hand them back at once; else keep them leased this long")


class AckIds(BaseModel):
    subscription: ResourceId
    ack_ids: list[str] = Field(min_length=1, max_length=1000)


class Seek(BaseModel):
    """A time or a snapshot, not both."""

    subscription: ResourceId
    time: datetime | None = None
    snapshot: ResourceId | None = None

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


class NewSnapshot(BaseModel):
    name: ResourceId
    subscription: ResourceId


class DeadLetter(BaseModel):
    ack_id: str
    data_b64: str
    attributes: dict[str, str]


class Republish(BaseModel):
    subscription: ResourceId = DEADLETTER_SUBSCRIPTION
    messages: list[DeadLetter] = Field(min_length=1, max_length=100)


def _url(settings: ConsoleSettings, name: str, verb: str = "") -> str:
    return names.rest_url(settings.pubsub_http_url, name) + verb


def _topic(settings: ConsoleSettings, name: str) -> str:
    return names.topic(settings.project, name)


def _sub(settings: ConsoleSettings, name: str) -> str:
    return names.subscription(settings.project, name)


@router.get("/resources")
async def resources(settings: SettingsDep, http: HttpDep) -> dict[str, Any]:
    """Topics and subscriptions (short names; a subscription with its topic), for the page's choices."""
    return await view(_resources(settings, http), {"topics": [], "subscriptions": [], "snapshots": []})


async def _resources(settings: ConsoleSettings, http: httpx.AsyncClient) -> dict[str, Any]:
    parent = names.rest_url(settings.pubsub_http_url, f"projects/{settings.project}")
    topics, subs, snaps = await asyncio.gather(
        call(http, "Pub/Sub topics.list", "GET", parent + "/topics"),
        call(http, "Pub/Sub subscriptions.list", "GET", parent + "/subscriptions"),
        call(http, "Pub/Sub snapshots.list", "GET", parent + "/snapshots"),
    )
    return {
        "snapshots": sorted(names.short(str(sn.get("name", ""))) for sn in snaps.get("snapshots", [])),
        "topics": sorted(names.short(t["name"]) for t in topics.get("topics", [])),
        "subscriptions": sorted(
            ({"name": names.short(s["name"]), "topic": names.short(s.get("topic", ""))} for s in subs.get(SUBS, [])),
            key=lambda s: s["name"],
        ),
    }


@router.get("/templates")
async def publish_templates() -> dict[str, Any]:
    """A message of each event type (and each injected anomaly kind), as the load generator makes them."""
    from services.console.templates import templates

    return await asyncio.to_thread(templates)


@router.put("/topics")
async def create_topic(body: NewTopic, settings: SettingsDep, http: HttpDep) -> dict[str, Any]:
    name = _topic(settings, body.name)
    return await call(http, "Pub/Sub topics.create", "PUT", _url(settings, name), json={})


@router.delete("/topics/{topic}")
async def delete_topic(topic: str, settings: SettingsDep, http: HttpDep) -> dict:
    return await call(http, "Pub/Sub topics.delete", "DELETE", _url(settings, _topic(settings, _checked(topic))))


@router.put("/subscriptions")
async def create_subscription(body: NewSubscription, settings: SettingsDep, http: HttpDep) -> dict[str, Any]:
    doc: dict[str, Any] = {"topic": _topic(settings, body.topic), "ackDeadlineSeconds": body.ack_deadline_s}
    if body.filter:
        doc["filter"] = body.filter
    if body.dead_letter_topic:
        doc["deadLetterPolicy"] = {
            "deadLetterTopic": _topic(settings, body.dead_letter_topic),
            "maxDeliveryAttempts": body.max_delivery_attempts,
        }
    name = _sub(settings, body.name)
    return await call(http, "Pub/Sub subscriptions.create", "PUT", _url(settings, name), json=doc)


@router.delete("/subscriptions/{subscription}")
async def delete_subscription(subscription: str, settings: SettingsDep, http: HttpDep) -> dict:
    name = _sub(settings, _checked(subscription))
    return await call(http, "Pub/Sub subscriptions.delete", "DELETE", _url(settings, name))


@router.post("/publish")
async def publish(body: Publish, settings: SettingsDep, http: HttpDep) -> dict[str, Any]:
    if not body.data and not body.attributes:
        raise ActionError(400, "publish: a message needs data or at least one attribute")
    if body.json_data and body.data:
        import json

        try:
            json.loads(body.data)
        except ValueError as exc:
            raise ActionError(400, f"publish: the data is not JSON ({exc}); untick 'JSON' to send it as text") from None
    message = {"data": base64.b64encode(body.data.encode()).decode(), "attributes": body.attributes}
    url = _url(settings, _topic(settings, body.topic), ":publish")
    answer = await call(http, "Pub/Sub publish", "POST", url, json={"messages": [message]})
    return {"message_ids": answer.get("messageIds", [])}


@router.post("/peek")
async def peek(body: Peek, settings: SettingsDep, http: HttpDep) -> dict[str, Any]:
    """Pull up to ``max_messages`` without acknowledging them. With ``hold_s`` 0 they are handed back at
    once (modifyAckDeadline 0: a nack), so other subscribers get them again right away; otherwise they stay
    leased for ``hold_s`` seconds, during which the page may ack or nack chosen ones. Either way a pull is
    a delivery attempt (it counts towards a dead-letter policy), as in Google Cloud's console."""
    name = _sub(settings, body.subscription)
    pulled = await call(
        http,
        "Pub/Sub pull",
        "POST",
        _url(settings, name, ":pull"),
        json={"maxMessages": body.max_messages, "returnImmediately": True},
    )
    received = pulled.get("receivedMessages", [])
    ack_ids = [r["ackId"] for r in received]
    if ack_ids:
        await _modify(settings, http, body.subscription, ack_ids, body.hold_s)
    held_until = datetime.now(UTC).timestamp() + body.hold_s if body.hold_s else None
    return {"messages": [_message(r) for r in received], "held_until": held_until}


@router.post("/ack")
async def ack(body: AckIds, settings: SettingsDep, http: HttpDep) -> dict[str, Any]:
    url = _url(settings, _sub(settings, body.subscription), ":acknowledge")
    await call(http, "Pub/Sub acknowledge", "POST", url, json={"ackIds": body.ack_ids})
    return {"acked": len(body.ack_ids)}


@router.post("/nack")
async def nack(body: AckIds, settings: SettingsDep, http: HttpDep) -> dict[str, Any]:
    await _modify(settings, http, body.subscription, body.ack_ids, 0)
    return {"nacked": len(body.ack_ids)}


@router.post("/seek")
async def seek(body: Seek, settings: SettingsDep, http: HttpDep) -> dict[str, Any]:
    """Seek a subscription to a time (messages published after it are unacked again, those before acked) or
    to a snapshot (its acknowledgement state when the snapshot was taken)."""
    if (body.time is None) == (body.snapshot is None):
        raise ActionError(400, "seek: give a time or a snapshot (one of them)")
    url = _url(settings, _sub(settings, body.subscription), ":seek")
    if body.snapshot is not None:
        snapshot = names.project_resource(settings.project, names.SNAPSHOTS, body.snapshot)
        await call(http, "Pub/Sub seek", "POST", url, json={"snapshot": snapshot})
        return {"snapshot": body.snapshot}
    assert body.time is not None
    when = body.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    await call(http, "Pub/Sub seek", "POST", url, json={"time": when})
    return {"time": when}


@router.put("/snapshots")
async def create_snapshot(body: NewSnapshot, settings: SettingsDep, http: HttpDep) -> dict[str, Any]:
    """A snapshot of a subscription's acknowledgement state, to seek back to."""
    name = names.project_resource(settings.project, names.SNAPSHOTS, body.name)
    doc = {"subscription": _sub(settings, body.subscription)}
    return await call(http, "Pub/Sub snapshots.create", "PUT", _url(settings, name), json=doc)


@router.get("/dead-letters")
async def dead_letters(
    settings: SettingsDep,
    http: HttpDep,
    subscription: Annotated[str, Query(pattern=RESOURCE_ID)] = DEADLETTER_SUBSCRIPTION,
    max_messages: Annotated[int, Query(ge=1, le=100)] = 20,
    hold_s: Annotated[int, Query(ge=0, le=600)] = 60,
) -> dict[str, Any]:
    """Dead-lettered messages (a subscription on the dead-letter topic, by default the stack's), each with its
    reason from the attributes Pub/Sub adds; held ``hold_s`` seconds so they can be republished."""
    answer = await peek(Peek(subscription=subscription, max_messages=max_messages, hold_s=hold_s), settings, http)
    for message in answer["messages"]:
        message["reason"] = dead_letter_reason(message["attributes"])
    return {**answer, "dead_letter_topic": DEADLETTER_TOPIC}


@router.post("/republish")
async def republish(body: Republish, settings: SettingsDep, http: HttpDep) -> dict[str, Any]:
    """Publish each dead-lettered message again to the topic of the subscription it failed on (Pub/Sub's
    dead-letter attributes removed), then acknowledge it on the dead-letter subscription."""
    published: list[str] = []
    topics: dict[str, str] = {}
    for item in body.messages:
        source = item.attributes.get(f"{DEAD_LETTER_PREFIX}SourceSubscription")
        if not source:
            raise ActionError(400, f"republish: no {DEAD_LETTER_PREFIX}SourceSubscription: not a dead-lettered message")
        if source not in topics:
            doc = await call(http, "Pub/Sub subscriptions.get", "GET", _url(settings, _sub(settings, _checked(source))))
            topics[source] = doc["topic"]
        attributes = {k: v for k, v in item.attributes.items() if not k.startswith(DEAD_LETTER_PREFIX)}
        message = {"data": item.data_b64, "attributes": attributes}
        url = _url(settings, topics[source], ":publish")
        answer = await call(http, "Pub/Sub publish", "POST", url, json={"messages": [message]})
        published += answer.get("messageIds", [])
    url = _url(settings, _sub(settings, body.subscription), ":acknowledge")
    await call(http, "Pub/Sub acknowledge", "POST", url, json={"ackIds": [m.ack_id for m in body.messages]})
    return {"republished": len(published), "to": sorted({names.short(t) for t in topics.values()})}


def dead_letter_reason(attributes: dict[str, str]) -> str | None:
    """Why a message was dead-lettered, from Pub/Sub's attributes; None when it carries none."""
    source = attributes.get(f"{DEAD_LETTER_PREFIX}SourceSubscription")
    if not source:
        return None
    count = attributes.get(f"{DEAD_LETTER_PREFIX}SourceDeliveryCount", "?")
    return f"not acknowledged after {count} delivery attempts on {source}"


async def _modify(settings: ConsoleSettings, http: Any, subscription: str, ack_ids: list[str], seconds: int) -> None:
    url = _url(settings, _sub(settings, subscription), ":modifyAckDeadline")
    await call(http, "Pub/Sub modifyAckDeadline", "POST", url, json={"ackIds": ack_ids, "ackDeadlineSeconds": seconds})


def _message(received: dict[str, Any]) -> dict[str, Any]:
    m = received.get("message", {})
    raw = base64.b64decode(m.get("data", "") or "")
    return {
        "ack_id": received["ackId"],
        "message_id": m.get("messageId"),
        "publish_time": m.get("publishTime"),
        "data": raw.decode("utf-8", "replace"),
        "data_b64": m.get("data", ""),
        "attributes": m.get("attributes", {}),
        "delivery_attempt": received.get("deliveryAttempt"),
    }


def _checked(resource_id: str) -> str:
    import re

    if not re.fullmatch(RESOURCE_ID, resource_id):
        rule = "a letter, then 2-254 of A-Z a-z 0-9 - _ . ~ + %"
        raise ActionError(400, f"{resource_id!r} is not a Pub/Sub resource ID ({rule})")
    return resource_id
