"""The processor's HTTP side: ``POST /`` (the Pub/Sub push), ``/health`` and ``/metrics``.

The push route reads the body itself (bounded by ``HYP_PROCESSOR_MAX_BODY_BYTES``) and hands it to
:class:`services.processor.push.Processor`. :class:`PushFront` answers ``POST /`` with that same
route handler ahead of FastAPI (its routing, request handling and middleware cost more than the
push's own work): the server runs it as the app; in-process clients go through FastAPI's routing
to the same handler.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.common.deps import from_state
from services.processor.ledger import Ledger
from services.processor.metrics import ProcessorMetrics
from services.processor.push import Processor

JSON = "application/json"
PUSH_PATH = "/"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

ENVELOPE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["message"],
    "properties": {
        "message": {
            "type": "object",
            "required": ["data", "messageId"],
            "properties": {
                "data": {"type": "string", "description": "the event, base64"},
                "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
                "messageId": {"type": "string"},
                "publishTime": {"type": "string", "format": "date-time"},
            },
        },
        "subscription": {"type": "string"},
        "deliveryAttempt": {"type": "integer"},
    },
}


class Reply(Response):
    """A push's answer: 204 without a body, or ``{"status", "reason"}`` (503s with ``Retry-After``),
    its headers laid out once."""

    def __init__(self, status: int, reason: str | None = None) -> None:
        self.status_code = status
        self.background = None
        if status == 204:
            self.body, self.raw_headers = b"", []
            return
        self.body = json.dumps({"status": status, "reason": reason}).encode()
        self.raw_headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(self.body)).encode())]
        if status == 503:
            self.raw_headers.append((b"retry-after", b"1"))


# The running service's parts (``processor``, ``ledger``, ...; empty until the lifespan started them).
PartsDep = Annotated[dict[str, Any], Depends(from_state("parts"))]
MetricsDep = Annotated[ProcessorMetrics, Depends(from_state("metrics"))]


async def receive_push(processor: Processor, scope: Scope, receive: Receive) -> Response:
    """Read the body (413 past the limit: on Content-Length before reading, else once over) and handle it."""
    start = time.perf_counter()
    try:
        limit = processor.settings.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                return Reply(413, f"body: {int(value)} bytes is over the limit of {limit}")
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return Reply(400, "body: the client went away")  # nobody reads it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return Reply(413, f"body: over the limit of {limit} bytes")
            chunks.append(chunk)
            more = message.get("more_body", False)
        return Reply(*await processor.handle(chunks[0] if len(chunks) == 1 else b"".join(chunks)))
    finally:
        processor.metrics.latency.observe(time.perf_counter() - start)


router = APIRouter()


@router.post(
    PUSH_PATH,
    status_code=204,
    summary="Pub/Sub push endpoint",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": ENVELOPE_SCHEMA}}}},
    responses={
        204: {"description": "acked: rows durable, duplicate, or dead-lettered with its reason"},
        400: {"description": "not a push envelope; the reason says what is wrong"},
        413: {"description": "body too large"},
        503: {"description": "endpoint or warehouse unavailable: Pub/Sub retries"},
    },
)
async def push(request: Request, parts: PartsDep) -> Response:
    processor: Processor | None = parts.get("processor")
    if processor is None:
        return Reply(503, "starting")
    return await receive_push(processor, request.scope, request.receive)


@router.get("/health", summary="Health")
async def health(parts: PartsDep) -> Response:
    ledger: Ledger | None = parts.get("ledger")
    body: dict[str, Any] = {"status": "ok" if ledger is not None else "starting"}
    if ledger is not None:
        body.update(processed=ledger.written, ledger_ids=ledger.size(), lookups=ledger.lookups)
    return Response(json.dumps(body).encode(), status_code=200 if ledger else 503, media_type=JSON)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(m: MetricsDep) -> Response:
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST)


class PushFront:
    """``POST /`` straight to :func:`push` (its one dependency, the app's parts, supplied as FastAPI
    would); everything else, and the lifespan, to the FastAPI app."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PUSH_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        response = await push(Request(scope, receive), self.app.state.parts)
        await response(scope, receive, send)
