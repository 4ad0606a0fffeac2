"""One refresh loop reads every source and keeps the latest snapshot the page is sent.

Sources are read concurrently with short timeouts, so one slow or dead service
delays nothing else; each refresh costs the same whatever the event rate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import httpx

from services.console import sources
from services.console.live import LiveAnomalies
from services.console.prometheus import Scrape, parse
from services.console.settings import ConsoleSettings

log = logging.getLogger(__name__)
WAREHOUSE_REFRESH_S = 3.0


class Collector:
    def __init__(self, settings: ConsoleSettings, live: LiveAnomalies, feeds_status=lambda: None) -> None:
        self.settings = settings
        self.live = live
        self.feeds_status = feeds_status
        self.client = httpx.AsyncClient(timeout=settings.probe_timeout_s, trust_env=False)
        self.snapshot: dict[str, Any] = {}
        self.version = 0  # bumped on every refresh; the SSE stream waits on it
        self.changed = asyncio.Condition()
        self._previous: dict[str, tuple[float, Scrape]] = {}
        self._models: dict[str, Any] = {"healthy": False, "error": "not read yet", "versions": []}
        self._models_at = 0.0
        self._metrics_cache: dict[str, Any] = {}
        self._champions: list[dict[str, Any]] = []
        self._warehouse: dict[str, Any] = {"healthy": False, "error": "not read yet", "tables": {}}
        self._warehouse_at = 0.0
        self._counter = sources.WarehouseCounter()

    async def close(self) -> None:
        await self.client.aclose()

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.refresh()
            except Exception:  # a bug in one refresh must not stop the console
                log.exception("console refresh failed")
            await asyncio.sleep(max(0.05, self.settings.refresh_s - (time.monotonic() - started)))

    async def _scrape(self, key: str, url: str) -> tuple[dict[str, Any], Scrape | None, Scrape | None, float]:
        got = await sources.fetch(self.client, url)
        now = time.monotonic()
        if not got["healthy"]:
            return got, None, None, 0.0
        try:
            scrape = parse(got["text"])
        except ValueError as exc:
            return {**got, "healthy": False, "error": str(exc)}, None, None, 0.0
        before = self._previous.get(key)
        self._previous[key] = (now, scrape)
        return got, scrape, before[1] if before else None, now - before[0] if before else 0.0

    async def refresh(self) -> dict[str, Any]:
        s = self.settings
        pubsub_base = s.pubsub_http_url.rstrip("/")
        now = time.monotonic()
        tasks: dict[str, Any] = {
            "pubsub": sources.fetch(self.client, pubsub_base + "/", expect="Ok."),
            "pubsub_metrics": self._scrape("pubsub", pubsub_base + "/metrics"),
            "detector": self._scrape("detector", s.detector_metrics_url),
            "mlflow": sources.fetch(self.client, s.mlflow_tracking_uri.rstrip("/") + "/health"),
            "endpoint": sources.fetch(self.client, s.endpoint_url.rstrip("/") + "/health"),
            "processor": sources.fetch(self.client, s.processor_url.rstrip("/") + "/health"),
            "orchestrator": sources.read_orchestrator(self.client, s.orchestrator_url),
        }
        if now - self._models_at >= s.models_refresh_s:
            self._models_at = now
            tasks["models"] = sources.read_models(
                self.client, s.mlflow_tracking_uri, s.model_name, s.model_alias, self._metrics_cache
            )
        if now - self._warehouse_at >= WAREHOUSE_REFRESH_S:
            self._warehouse_at = now
            tasks["warehouse"] = asyncio.to_thread(self._counter.counts, Path(s.warehouse_dir))
        results = dict(zip(tasks, await asyncio.gather(*tasks.values(), return_exceptions=True), strict=True))
        for key, value in results.items():
            if isinstance(value, BaseException):  # readers do not raise; this is a safety net
                results[key] = {"healthy": False, "error": f"{type(value).__name__}: {value}"}

        pubsub_probe, (pm_got, pm_scrape, pm_before, pm_dt) = results["pubsub"], _tuple(results["pubsub_metrics"])
        empty: dict[str, Any] = {"topics": [], "subscriptions": []}
        pubsub = sources.summarize_pubsub(pm_scrape, pm_before, pm_dt) if pm_scrape else empty
        pubsub.update(healthy=bool(pubsub_probe.get("healthy")), error=pubsub_probe.get("error") or pm_got.get("error"))

        det_got, det_scrape, det_before, det_dt = _tuple(results["detector"])
        detector = sources.summarize_detector(det_scrape, det_before, det_dt) if det_scrape else {}
        detector.update(healthy=bool(det_got.get("healthy")), error=det_got.get("error"))

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
            "refresh_s": s.refresh_s,
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

    def _track_champion(self, version: str | None) -> None:
        """Champion history as the console saw it (MLflow keeps only the current alias)."""
        if version is None or (self._champions and self._champions[-1]["version"] == version):
            return
        self._champions.append({"version": version, "since": time.time()})
        del self._champions[:-20]


def _tuple(value: Any) -> tuple[dict[str, Any], Scrape | None, Scrape | None, float]:
    if isinstance(value, tuple):
        return value
    return value, None, None, 0.0


def _service(key: str, label: str, probe: dict[str, Any], link: str | None) -> dict[str, Any]:
    healthy = bool(probe.get("healthy"))
    return {"key": key, "label": label, "healthy": healthy, "error": probe.get("error"), "link": link}
