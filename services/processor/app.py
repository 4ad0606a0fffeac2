"""The processor's FastAPI app: one push in, rows durable, then the answer (2xx acks, else Pub/Sub retries).

What each push gets:

* not a push envelope (bad JSON, no message, no messageId, bad base64): **400** with the reason;
  Pub/Sub retries and, after the subscription's attempts, dead-letters it;
* an event that fails the contract (services.common.events.parse_event) or that the endpoint
  refuses (4xx): published to the dead-letter topic with the reason in ``deadletter_reason``,
  then **204** (acked: retrying cannot fix it). Without a dead-letter topic: 400 with the reason;
* a good event: its ``cloud_run`` row; for purchases, the endpoint's answer and a
  ``cloud_run_anomaly`` row; **204** once both are durable;
* the endpoint down, slow or 5xx: the ``cloud_run`` row is still written, then **503** so the
  message comes back; the redelivery only scores (the ledger says the event row exists);
* a message already processed (redelivery, also after a restart): **204**, no new row.

POST / is served by a small ASGI handler in front of FastAPI (``_PushRoute``): the push is the
hot path, and FastAPI's routing and request objects cost more than the push's own work; the
route stays declared on the FastAPI app for the OpenAPI document.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from services.common.events import EventError, event_row, parse_event, purchase
from services.processor.deadletter import DeadLetter
from services.processor.endpoint_client import EndpointRejected, EndpointUnavailable, PredictBatcher, VertexClient
from services.processor.envelope import EnvelopeError, PushMessage, parse_envelope
from services.processor.ledger import SOURCE, TABLES, Ledger, LookupFailed, Lookups
from services.processor.settings import ProcessorSettings
from services.processor.sink import WarehouseSink

log = logging.getLogger(__name__)
JSON = "application/json"

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


class Outcome(Exception):
    """Ends a push early with a status and a reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _reply(status: int, reason: str | None = None) -> Response:
    if status == 204:
        return Response(status_code=204)
    body = json.dumps({"status": status, "reason": reason}).encode()
    headers = {"Retry-After": "1"} if status == 503 else None
    return Response(body, status_code=status, media_type=JSON, headers=headers)


class Processor:
    """The push handler's logic, apart from HTTP."""

    def __init__(
        self,
        settings: ProcessorSettings,
        endpoint: PredictBatcher,
        sink: WarehouseSink,
        ledger: Ledger,
        deadletter: DeadLetter | None,
        registry: CollectorRegistry,
    ) -> None:
        self.settings, self.endpoint, self.sink, self.ledger, self.deadletter = (
            settings,
            endpoint,
            sink,
            ledger,
            deadletter,
        )
        # message id -> [lock, deliveries holding or awaiting it]; an entry lives only while a delivery
        # of its message is in flight, so the map is bounded by the pushes in flight
        self._locks: dict[str, list[Any]] = {}
        self._failing = False  # the last push answered 503
        self.outcomes = Counter("hyp_processor_pushes", "Pushes by outcome", ["outcome"], registry=registry)
        self.latency = Histogram(
            "hyp_processor_push_seconds",
            "Push handling time, body to durable rows",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.endpoint_latency = Histogram(
            "hyp_processor_endpoint_seconds",
            "Endpoint predict call time",
            buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 5),
            registry=registry,
        )
        self.endpoint_instances = Histogram(
            "hyp_processor_endpoint_instances",
            "Instances per endpoint predict call (pushes batched together)",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
            registry=registry,
        )

        def on_call(instances: int, seconds: float) -> None:
            self.endpoint_latency.observe(seconds)
            self.endpoint_instances.observe(instances)

        endpoint.on_call = on_call

    async def handle(self, body: bytes) -> tuple[int, str | None]:
        try:
            message = parse_envelope(body)
        except EnvelopeError as exc:
            self.outcomes.labels("bad_envelope").inc()
            return 400, str(exc)
        # one delivery of a message at a time: a redelivery racing the first waits, then sees the ledger
        entry = self._locks.get(message.message_id)
        if entry is None:
            entry = self._locks[message.message_id] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                return await self._process(message)
        except Outcome as exc:
            self.outcomes.labels(f"http_{exc.status}").inc()
            if exc.status >= 500:
                fields = {"message_id": message.message_id, "reason": str(exc)}
                if not self._failing:  # a state change: log it once, not once per push
                    log.warning("pushes not acked (503) until this clears", extra={"fields": fields})
                self._failing = True
                log.debug("push not acked", extra={"fields": fields})
            return exc.status, str(exc)
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._locks[message.message_id]

    async def _process(self, message: PushMessage) -> tuple[int, str | None]:
        mid = message.message_id
        if mid in self.ledger.deadlettered:
            self.outcomes.labels("duplicate").inc()
            return 204, None
        try:
            event = parse_event(message.data)
        except EventError as exc:
            await self._dead_letter(message, f"unusable event: {exc}")
            return 204, None
        is_purchase = event["event"] == "purchase"
        row = event_row(event)
        published = message.publish_time.replace(tzinfo=UTC).timestamp() if message.publish_time else None
        moment = row.get("event_datetime")
        date = moment.date().isoformat() if isinstance(moment, datetime) else None
        try:
            needed = await self.ledger.needed(mid, published, date, list(TABLES if is_purchase else TABLES[:1]))
        except LookupFailed as exc:
            raise Outcome(503, str(exc)) from None
        need_event = "cloud_run" in needed
        need_score = "cloud_run_anomaly" in needed
        if not need_event and not need_score:
            self.outcomes.labels("duplicate").inc()
            return 204, None
        attributes = json.dumps(message.attributes, separators=(",", ":"), sort_keys=True)
        rows: dict[str, list[dict[str, Any]]] = {}
        if need_event:
            row_out = dict(row)
            row_out.update(
                message_id=mid,
                publish_time=message.publish_time,
                attributes=attributes,
                source=SOURCE,
                ingested_at=_now(),
            )
            rows["cloud_run"] = [row_out]
        failure: Outcome | None = None
        if need_score:
            try:
                rows["cloud_run_anomaly"] = [await self._score(event, row, mid, attributes)]
            except EndpointRejected as exc:
                if need_event:
                    await self._write(rows, (mid, published))
                await self._dead_letter(message, str(exc))
                return 204, None
            except EndpointUnavailable as exc:
                failure = Outcome(503, str(exc))
        await self._write(rows, (mid, published))
        if failure is not None:
            raise failure
        self.outcomes.labels("scored" if need_score else "stored").inc()
        if self._failing:
            self._failing = False
            log.info("pushes acked again")
        return 204, None

    async def _score(self, event: dict[str, Any], row: dict[str, Any], mid: str, attributes: str) -> dict[str, Any]:
        p = purchase(event)
        instance = {
            "tax": p["tax"],
            "shipping": p["shipping"],
            "value": p["value"],
            "items": row["items"],
            "items_count": row["items_count"],
        }
        scored = await self.endpoint.predict(instance)
        prediction = scored.prediction
        centroid = prediction.get("nearest_centroid_id")
        if isinstance(centroid, list):  # the Vertex shape: [id]
            centroid = centroid[0] if centroid else None
        return {
            "event_datetime": row["event_datetime"],
            "transaction_id": row["transaction_id"],
            "user_id": row["user_id"],
            "tax": float(p["tax"]),
            "shipping": float(p["shipping"]),
            "value": float(p["value"]),
            "anomaly": bool(prediction.get("is_anomaly")),
            "score": prediction.get("score"),
            "nearest_centroid_id": int(centroid) if isinstance(centroid, int | float) else None,
            "normalized_distance": prediction.get("normalized_distance"),
            "model_version": scored.model_version,
            "message_id": mid,
            "attributes": attributes,
            "source": SOURCE,
            "scored_at": _now(),
        }

    async def _write(self, rows: dict[str, list[dict[str, Any]]], tag: tuple[str, float | None]) -> None:
        if not rows:
            return
        try:
            await self.sink.write(rows, tag)
        except Exception as exc:
            if not self._failing:
                log.exception("warehouse write failed")
            raise Outcome(503, f"warehouse write failed: {type(exc).__name__}: {exc}") from None

    async def _dead_letter(self, message: PushMessage, reason: str) -> None:
        if self.deadletter is None:
            raise Outcome(400, reason)
        try:
            await self.deadletter.publish(message.data, message.attributes, reason)
        except Exception as exc:
            raise Outcome(503, f"{reason}; and the dead-letter publish failed: {type(exc).__name__}: {exc}") from None
        self.ledger.deadlettered.add(message.message_id)
        self.outcomes.labels("deadlettered").inc()
        log.debug("dead-lettered", extra={"fields": {"message_id": message.message_id, "reason": reason}})


class _PushRoute:
    """POST / straight to the Processor (pure ASGI); everything else goes on to FastAPI."""

    def __init__(self, app: Any, state: dict[str, Any], max_body_bytes: int) -> None:
        self.app, self.state, self.max_body_bytes = app, state, max_body_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != "/" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        processor: Processor | None = self.state.get("processor")
        if processor is None:
            await _send(send, 503, "starting")
            return
        start = time.perf_counter()
        try:
            limit = self.max_body_bytes
            for name, value in scope["headers"]:
                if name == b"content-length" and value.isdigit() and int(value) > limit:
                    await _send(send, 413, f"body: {int(value)} bytes is over the limit of {limit}")
                    return
            chunks, size, more = [], 0, True
            while more:
                message = await receive()
                if message["type"] == "http.disconnect":
                    return
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    await _send(send, 413, f"body: over the limit of {limit} bytes")
                    return
                chunks.append(chunk)
                more = message.get("more_body", False)
            status, reason = await processor.handle(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            await _send(send, status, reason)
        finally:
            processor.latency.observe(time.perf_counter() - start)


async def _send(send: Any, status: int, reason: str | None) -> None:
    if status == 204:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    body = json.dumps({"status": status, "reason": reason}).encode()
    headers = [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]
    if status == 503:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def create_app(
    settings: ProcessorSettings,
    *,
    endpoint: VertexClient | None = None,
    deadletter: Any = True,
) -> FastAPI:
    """The processor app.

    ``deadletter``: True publishes unusable events to ``settings.deadletter_topic`` (through the
    emulator when PUBSUB_EMULATOR_HOST is set); None/False answers 400 instead; or an object with
    DeadLetter's ``publish``/``close``.
    """
    registry = CollectorRegistry(auto_describe=True)
    state: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings
        lookups = Lookups(s.warehouse_dir)
        ledger = Ledger(lookups, max_ids=s.ledger_max_ids, max_age_s=s.ledger_max_age_s)
        client = endpoint or VertexClient(s.endpoint_url, s.project, s.location, s.endpoint_id, s.endpoint_timeout_s)
        batcher = PredictBatcher(client, linger_s=s.predict_linger_s, max_instances=s.predict_max_instances)
        dl: DeadLetter | None = None
        if deadletter is True:
            if settings.deadletter_topic:
                dl = DeadLetter(settings.pubsub_emulator_host, settings.topic_path(settings.deadletter_topic))
        elif deadletter:
            dl = deadletter  # anything with DeadLetter's publish/close

        def written(table: str, tags: list[tuple[str, float | None]]) -> None:
            ledger.add(table, tags)

        sink = WarehouseSink(s.warehouse_dir, s.max_batch_rows, s.commit_interval_s, on_written=written)
        sink.start()
        compactor = _compactor(s)
        # first compaction a little after start: the service answers /health first (the first run of a
        # long-running warehouse merges thousands of files)
        starting = asyncio.get_running_loop().call_later(5.0, compactor.start) if compactor else None
        warm = asyncio.create_task(asyncio.to_thread(_warm_up), name="warm-up")  # not awaited: /health at once
        state.update(ledger=ledger, lookups=lookups, sink=sink, batcher=batcher, compactor=compactor)
        state["processor"] = Processor(settings, batcher, sink, ledger, dl, registry)
        try:
            yield
        finally:
            state.pop("processor", None)
            await warm
            await sink.stop()
            await batcher.aclose()
            if dl is not None:
                await asyncio.to_thread(dl.close)
            if starting is not None:
                starting.cancel()
            if compactor is not None:
                stopped = await asyncio.to_thread(compactor.stop)
                if inspect.isawaitable(stopped):
                    await stopped

    app = FastAPI(
        title="hyp processor",
        description="The Cloud Run inference processing service: receives Pub/Sub pushes, scores purchases on "
        "the Vertex-AI-compatible endpoint, writes cloud_run and cloud_run_anomaly rows.",
        version="1",
        lifespan=lifespan,
    )
    app.state.registry = registry
    app.state.parts = state
    # in-process clients (tests) go through FastAPI's middleware stack; the server runs app.state.front,
    # which takes POST / before FastAPI and its middleware see it
    app.add_middleware(cast(Any, _PushRoute), state=state, max_body_bytes=settings.max_body_bytes)
    app.state.front = _PushRoute(app, state, settings.max_body_bytes)

    @app.post(
        "/",
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
    async def push(request: Request) -> Response:  # served by _PushRoute; declared for the OpenAPI document
        return _reply(503, "push route not mounted")

    @app.get("/health", summary="Health")
    async def health() -> Response:
        ledger: Ledger | None = state.get("ledger")
        body: dict[str, Any] = {"status": "ok" if ledger is not None else "starting"}
        if ledger is not None:
            body.update(processed=ledger.written, ledger_ids=ledger.size(), lookups=ledger.lookups)
        return Response(json.dumps(body).encode(), status_code=200 if ledger else 503, media_type=JSON)

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _warm_up() -> None:
    """Import what the first commit and the first lookup need, so the first pushes do not wait on it."""
    import duckdb  # noqa: F401

    from services.warehouse.writer import to_arrow

    to_arrow("cloud_run", [])  # pyarrow loads its pandas shim on the first conversion: seconds of CPU


def _compactor(settings: ProcessorSettings) -> Any:
    """The warehouse compactor, when enabled (one owner across processes, by file lock)."""
    if settings.compact_interval_s <= 0:
        return None
    try:
        from services.warehouse.compaction import Compactor  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        log.info("warehouse compactor not available; not compacting")
        return None
    return Compactor(settings.warehouse_dir, interval_s=settings.compact_interval_s)
