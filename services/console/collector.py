"""One refresh loop reads every source and keeps the latest snapshot the page is sent.

Sources are read concurrently with short timeouts, so one slow or dead service
delays nothing else; each refresh costs the same whatever the event rate.

The loop reads every ``refresh_s`` only while someone watches (an open page's SSE
stream, see :meth:`Collector.watching`) and every ``idle_refresh_s`` otherwise: every
read also costs CPU in the service read, so an unwatched console stays quiet. A page
that opens gets a fresh snapshot at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from services.common.prometheus import Scrape, parse
from services.console import sources
from services.console.live import LiveAnomalies
from services.console.settings import ConsoleSettings

log = logging.getLogger(__name__)
MAX_CHAMPIONS = 20
MAX_RUN_METRICS = 64  # runs whose metrics are cached (the page shows 20 versions)


class Collector:
    def __init__(
        self,
        settings: ConsoleSettings,
        live: LiveAnomalies,
        feeds_status: Callable[[], dict[str, Any] | None] = lambda: None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.live = live
        self.feeds_status = feeds_status
        self.clock = clock
        self.client = httpx.AsyncClient(timeout=settings.probe_timeout_s, trust_env=False)
        self.snapshot: dict[str, Any] = {}
        self.version = 0  # bumped on every refresh; the SSE stream waits on it
        self.changed = asyncio.Condition()
        self.watchers = 0  # open SSE streams
        self.refreshed_at: float | None = None  # clock() when the last refresh started
        self._wake = asyncio.Event()
        self._refreshing = asyncio.Lock()
        self._previous: dict[str, tuple[float, Scrape]] = {}
        self._models: dict[str, Any] = {"healthy": False, "error": "not read yet", "versions": []}
        self._models_at: float | None = None
        self._metrics_cache = sources.BoundedCache(MAX_RUN_METRICS)
        self._champions: list[dict[str, Any]] = []
        self._warehouse: dict[str, Any] = {"healthy": False, "error": "not read yet", "tables": {}}
        self._warehouse_at: float | None = None
        self._counter = sources.WarehouseCounter()

    async def close(self) -> None:
        await self.client.aclose()

    @property
    def interval_s(self) -> float:
        """Seconds between refreshes now: ``refresh_s`` while watched, ``idle_refresh_s`` otherwise."""
        return self.settings.refresh_s if self.watchers else self.settings.idle_refresh_s

    def due_in(self) -> float:
        """Seconds until the next refresh is due (0 or less: now)."""
        if self.refreshed_at is None:
            return 0.0
        return self.refreshed_at + self.interval_s - self.clock()

    @contextlib.contextmanager
    def watching(self) -> Iterator[None]:
        """Count one watcher (an open page) for the block; the first one wakes the loop at once."""
        self.watchers += 1
        self._wake.set()
        try:
            yield
        finally:
            self.watchers -= 1

    async def run(self) -> None:
        """Refresh whenever one is due; a new watcher re-evaluates the wait at once."""
        while True:
            delay = self.due_in()
            if delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            await self.refresh_safely()

    async def refresh_safely(self) -> None:
        try:
            await self.refresh()
        except Exception:  # a bug in one refresh must not stop the console
            log.exception("console refresh failed")

    async def fresh(self) -> dict[str, Any]:
        """The snapshot, refreshed first when older than ``refresh_s`` (a one-off reader, e.g. /api/snapshot)."""
        if self.refreshed_at is None or self.clock() - self.refreshed_at >= self.settings.refresh_s:
            async with self._refreshing:  # readers arriving together share one refresh
                if self.refreshed_at is None or self.clock() - self.refreshed_at >= self.settings.refresh_s:
                    await self._refresh_locked()
        return self.snapshot

    async def _scrape(self, key: str, url: str) -> tuple[dict[str, Any], Scrape | None, Scrape | None, float]:
        got = await sources.fetch(self.client, url)
        now = self.clock()
        if not got["healthy"]:
            return got, None, None, 0.0
        try:
            scrape = parse(got["text"])
        except ValueError as exc:
            return {**got, "healthy": False, "error": str(exc)}, None, None, 0.0
        before = self._previous.get(key)
        self._previous[key] = (now, scrape)
        return got, scrape, before[1] if before else None, now - before[0] if before else 0.0

    async def _scrape_workers(self, urls: str) -> tuple[dict[str, Any], Scrape | None, Scrape | None, float]:
        """The detector's /metrics: one URL, or a comma list (one per worker), merged into one scrape.
        Healthy when any answers; a worker that does not is listed in ``down`` with its reason."""
        targets = [u.strip() for u in urls.split(",") if u.strip()]
        if len(targets) == 1:
            return await self._scrape("detector", targets[0])
        got = await asyncio.gather(*(self._scrape(f"detector {u}", u) for u in targets))
        up = [g for g in got if g[1] is not None]
        pairs = zip(targets, got, strict=True)
        down = [{"worker": u, "healthy": False, "error": g[0].get("error")} for u, g in pairs if g[1] is None]
        if not up:
            return {**got[0][0], "down": down}, None, None, 0.0
        now = sources.merge([g[1] for g in up if g[1] is not None])
        before = [g[2] for g in up if g[2] is not None]
        previous = sources.merge(before) if len(before) == len(up) else None
        dt = max(g[3] for g in up)
        return {"healthy": True, "error": None, "down": down}, now, previous, dt

    async def refresh(self) -> dict[str, Any]:
        async with self._refreshing:
            return await self._refresh_locked()

    async def _refresh_locked(self) -> dict[str, Any]:
        s = self.settings
        pubsub_base = s.pubsub_http_url.rstrip("/")
        now = self.refreshed_at = self.clock()
        tasks: dict[str, Any] = {
            "pubsub": sources.fetch(self.client, pubsub_base + "/", expect="Ok."),
            "pubsub_metrics": self._scrape("pubsub", pubsub_base + "/metrics"),
            "detector": self._scrape_workers(s.detector_metrics_url),
            "mlflow": sources.fetch(self.client, s.mlflow_tracking_uri.rstrip("/") + "/health"),
            "endpoint": sources.fetch(self.client, s.endpoint_url.rstrip("/") + "/health"),
            "processor": sources.fetch(self.client, s.processor_url.rstrip("/") + "/health"),
            "orchestrator": sources.read_orchestrator(self.client, s.orchestrator_url),
        }
        if self._models_at is None or now - self._models_at >= s.models_refresh_s:
            self._models_at = now
            tasks["models"] = sources.read_models(
                self.client, s.mlflow_tracking_uri, s.model_name, s.model_alias, self._metrics_cache
            )
        if self._warehouse_at is None or now - self._warehouse_at >= s.warehouse_refresh_s:
            self._warehouse_at = now
            tasks["warehouse"] = asyncio.to_thread(self._counter.counts, Path(s.warehouse_dir))
        gathered = await asyncio.gather(*tasks.values(), return_exceptions=True)
        results: dict[str, Any] = {}
        for key, value in zip(tasks, gathered, strict=True):
            if isinstance(value, BaseException):  # readers do not raise; this is a safety net
                value = {"healthy": False, "error": f"{type(value).__name__}: {value}"}
            results[key] = value

        pubsub_probe, (pm_got, pm_scrape, pm_before, pm_dt) = results["pubsub"], _tuple(results["pubsub_metrics"])
        empty: dict[str, Any] = {"topics": [], "subscriptions": []}
        pubsub = sources.summarize_pubsub(pm_scrape, pm_before, pm_dt) if pm_scrape else empty
        pubsub.update(healthy=bool(pubsub_probe.get("healthy")), error=pubsub_probe.get("error") or pm_got.get("error"))

        det_got, det_scrape, det_before, det_dt = _tuple(results["detector"])
        detector = sources.summarize_detector(det_scrape, det_before, det_dt) if det_scrape else {}
        detector.update(healthy=bool(det_got.get("healthy")), error=det_got.get("error"))
        workers = sources.summarize_workers(det_scrape, det_before, det_dt) if det_scrape else []
        detector["workers"] = workers + det_got.get("down", [])

        if "models" in results:
            self._models = results["models"]
            self._track_champion(self._models.get("champion"))
        if "warehouse" in results:
            self._warehouse = results["warehouse"]
        orchestrator = results["orchestrator"]

        events_per_s = pubsub.get("events_per_s")
        if events_per_s is None:
            events_per_s = detector.get("events_per_s")
        self.live.add_point(events_per_s)

        services = [
            _service("pubsub", "Pub/Sub emulator", pubsub_probe, None),
            _service("detector", "Beam detector", det_got, None),
            _service("mlflow", "MLflow registry", results["mlflow"], s.mlflow_link),
            _service("endpoint", "Vertex AI endpoint", results["endpoint"], s.endpoint_docs_link),
            _service("processor", "Cloud Run processor", results["processor"], None),
            _service("orchestrator", "Orchestrator", orchestrator, None),
            _service("warehouse", "Warehouse (Parquet)", self._warehouse, None),
            _service("console", "Console", {"healthy": True}, None),
        ]
        feeds = self.feeds_status() or {"healthy": False, "error": "live feeds off"}
        snapshot = {
            "t": time.time(),
            "refresh_s": self.interval_s,
            "watchers": self.watchers,  # open pages (SSE streams)
            "project": s.project,
            "links": {"mlflow": s.mlflow_link, "endpoint_docs": s.endpoint_docs_link},
            "services": services,
            "pubsub": pubsub,
            "detector": detector,
            "live": {**self.live.snapshot(), "feeds": feeds},
            "models": {**self._models, "champion_history": list(self._champions)},
            "orchestrator": orchestrator,
            "warehouse": self._warehouse,
        }
        self.snapshot = snapshot
        async with self.changed:
            self.version += 1
            self.changed.notify_all()
        return snapshot

    def models_changed(self) -> None:
        """An action changed the registry: read MLflow at the next refresh, which starts now."""
        self._models_at = None
        self._wake.set()

    @property
    def champion_history(self) -> list[dict[str, Any]]:
        """The champions seen while running, oldest first (``{"version", "since"}``)."""
        return list(self._champions)

    def _track_champion(self, version: str | None) -> None:
        """Champion history as the console saw it (MLflow keeps only the current alias)."""
        if version is None or (self._champions and self._champions[-1]["version"] == version):
            return
        self._champions.append({"version": version, "since": time.time()})
        del self._champions[:-MAX_CHAMPIONS]


def _tuple(value: Any) -> tuple[dict[str, Any], Scrape | None, Scrape | None, float]:
    if isinstance(value, tuple):
        return value
    return value, None, None, 0.0


def _service(key: str, label: str, probe: dict[str, Any], link: str | None) -> dict[str, Any]:
    healthy = bool(probe.get("healthy"))
    return {"key": key, "label": label, "healthy": healthy, "error": probe.get("error"), "link": link}
