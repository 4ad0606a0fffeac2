"""One push, apart from HTTP: envelope -> event -> rows durable (and the score), or the reason why not.

:meth:`Processor.handle` answers a push body with an HTTP status and a reason (``None`` for 204);
services/processor/routes.py turns that into the response. What each push gets is listed in
services/processor/app.py's docstring and docs/endpoint.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import UTC, datetime
from typing import Any

from services.common.diskfull import disk_full, refusal
from services.common.events import EventError, event_row, parse_event, purchase
from services.processor.deadletter import DeadLetter
from services.processor.endpoint_client import EndpointRejected, EndpointUnavailable, PredictBatcher
from services.processor.envelope import EnvelopeError, PushMessage, parse_envelope
from services.processor.ledger import SOURCE, TABLES, Ledger, LookupFailed
from services.processor.metrics import ProcessorMetrics
from services.processor.settings import ProcessorSettings
from services.processor.sink import WarehouseSink

log = logging.getLogger(__name__)


class Outcome(Exception):
    """Ends a push early with a status and a reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Processor:
    """The push handler's logic, apart from HTTP."""

    def __init__(
        self,
        settings: ProcessorSettings,
        endpoint: PredictBatcher,
        sink: WarehouseSink,
        ledger: Ledger,
        deadletter: DeadLetter | None,
        metrics: ProcessorMetrics,
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
        self.metrics = metrics
        self.outcomes = metrics.outcomes
        endpoint.on_call = metrics.endpoint_call

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
            full = disk_full(exc)  # a full disk: said as such; Pub/Sub pushes again until there is space
            if not self._failing:
                log.error("warehouse write failed", exc_info=full is None)
            reason = refusal("hyp processor", full) if full else f"warehouse write failed: {type(exc).__name__}: {exc}"
            raise Outcome(503, reason) from None

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
