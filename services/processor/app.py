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

The push's logic is services/processor/push.py (no HTTP in it); its routes (``POST /``, ``/health``,
``/metrics``) are services/processor/routes.py, and ``app.state.front`` answers ``POST /`` with the
same route handler ahead of FastAPI (the push is the hot path). This module wires the parts
(ledger, warehouse sink, endpoint batcher, dead-letter publisher, compactor) into the app's lifespan.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from services.processor.deadletter import DeadLetter
from services.processor.endpoint_client import PredictBatcher, VertexClient
from services.processor.ledger import Ledger, Lookups
from services.processor.metrics import ProcessorMetrics
from services.processor.push import Processor
from services.processor.routes import PushFront, router
from services.processor.settings import ProcessorSettings
from services.processor.sink import WarehouseSink

log = logging.getLogger(__name__)


def _dead_letter(settings: ProcessorSettings, deadletter: Any) -> DeadLetter | None:
    if deadletter is True:
        if settings.deadletter_topic:
            return DeadLetter(settings.pubsub_emulator_host, settings.topic_path(settings.deadletter_topic))
        return None
    return deadletter or None  # anything with DeadLetter's publish/close


def lifespan_of(
    settings: ProcessorSettings, parts: dict[str, Any], metrics: ProcessorMetrics, endpoint: Any, deadletter: Any
) -> Any:
    """Starts the parts into ``parts`` (the processor last, so a push never sees half of them) and
    stops them in reverse, the queued rows committed."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        s = settings
        lookups = Lookups(s.warehouse_dir)
        ledger = Ledger(lookups, max_ids=s.ledger_max_ids, max_age_s=s.ledger_max_age_s)
        client = endpoint or VertexClient(s.endpoint_url, s.project, s.location, s.endpoint_id, s.endpoint_timeout_s)
        batcher = PredictBatcher(client, linger_s=s.predict_linger_s, max_instances=s.predict_max_instances)
        dl = _dead_letter(s, deadletter)

        def written(table: str, tags: list[tuple[str, float | None]]) -> None:
            ledger.add(table, tags)

        sink = WarehouseSink(s.warehouse_dir, s.max_batch_rows, s.commit_interval_s, on_written=written)
        sink.start()
        compactor = _compactor(s)
        # first compaction a little after start: the service answers /health first (the first run of a
        # long-running warehouse merges thousands of files)
        starting = asyncio.get_running_loop().call_later(5.0, compactor.start) if compactor else None
        warm = asyncio.create_task(asyncio.to_thread(_warm_up), name="warm-up")  # not awaited: /health at once
        parts.update(ledger=ledger, lookups=lookups, sink=sink, batcher=batcher, compactor=compactor)
        parts["processor"] = Processor(settings, batcher, sink, ledger, dl, metrics)
        try:
            yield
        finally:
            parts.pop("processor", None)
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

    return lifespan


def create_app(
    settings: ProcessorSettings,
    *,
    endpoint: VertexClient | None = None,
    deadletter: Any = True,
) -> FastAPI:
    """The processor app; ``app.state.front`` is what the server runs (``POST /`` ahead of FastAPI).

    ``deadletter``: True publishes unusable events to ``settings.deadletter_topic`` (through the
    emulator when PUBSUB_EMULATOR_HOST is set); None/False answers 400 instead; or an object with
    DeadLetter's ``publish``/``close``.
    """
    metrics = ProcessorMetrics()
    parts: dict[str, Any] = {}
    app = FastAPI(
        title="hyp processor",
        description="The Cloud Run inference processing service: receives Pub/Sub pushes, scores purchases on "
        "the Vertex-AI-compatible endpoint, writes cloud_run and cloud_run_anomaly rows.",
        version="1",
        lifespan=lifespan_of(settings, parts, metrics, endpoint, deadletter),
    )
    app.state.metrics = metrics
    app.state.registry = metrics.registry
    app.state.parts = parts
    app.state.settings = settings
    app.include_router(router)
    app.state.front = PushFront(app)
    return app


def _warm_up() -> None:
    """Import what the first commit and the first lookup need, so the first pushes do not wait on it
    (the lookups read with pyarrow, as the writer writes: no DuckDB in the processor)."""
    import pyarrow.parquet  # noqa: F401

    from services.warehouse.writer import to_arrow

    # pyarrow looks for pandas on its first conversion (hyp processor refuses it: services/common/without_pandas.py)
    to_arrow("cloud_run", [])


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
