"""Readers of the stack's services. Every reader returns a dict and never raises: a source
that is down, slow or answering garbage is reported as unhealthy with the reason.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict, defaultdict
from pathlib import Path
from typing import Any

import httpx

from services.common import metric_names as m
from services.common import names, prometheus
from services.common.prometheus import Scrape
from services.common.settings import DEADLETTER_TOPIC, DETECTIONS_TOPIC, EVENTS_TOPIC


async def fetch(client: httpx.AsyncClient, url: str, *, expect: str | None = None) -> dict[str, Any]:
    """GET a URL: ``healthy`` is a 2xx answer (containing ``expect`` if given)."""
    started = time.perf_counter()
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        return {"healthy": False, "error": f"{type(exc).__name__}: {exc}".rstrip(": "), "text": None}
    ms = round((time.perf_counter() - started) * 1000, 1)
    healthy = response.is_success and (expect is None or expect in response.text)
    error = None if healthy else f"HTTP {response.status_code}"
    return {"healthy": healthy, "status": response.status_code, "ms": ms, "error": error, "text": response.text}


def label_rows(scrape: Scrape, label: str, *, without: str | None = None) -> dict[str, dict[str, float]]:
    """Every sample carrying ``label`` (and not ``without``), grouped by the label's short value."""
    rows: dict[str, dict[str, float]] = defaultdict(dict)
    for name, samples in scrape.samples.items():
        if name.endswith(("_bucket", "_created")):
            continue
        for s in samples:
            value = s.labels.get(label)
            if value is not None and (without is None or without not in s.labels):
                row = rows[names.short(value)]
                row[name] = row.get(name, 0.0) + s.value
    return dict(rows)


def rate(now: dict[str, float], before: dict[str, float] | None, name: str, dt: float) -> float | None:
    if name not in now or before is None or name not in before or dt <= 0:
        return None
    delta = now[name] - before[name]
    return max(delta, 0.0) / dt  # a restart resets counters: show 0, not a negative rate


def summarize_pubsub(scrape: Scrape, previous: Scrape | None, dt: float) -> dict[str, Any]:
    """Topics and subscriptions with counts and rates, from the emulator's metrics (services/pubsub/metrics.py)."""
    topics_now, subs_now = label_rows(scrape, m.TOPIC, without=m.SUBSCRIPTION), label_rows(scrape, m.SUBSCRIPTION)
    topics_before = label_rows(previous, m.TOPIC, without=m.SUBSCRIPTION) if previous else {}
    subs_before = label_rows(previous, m.SUBSCRIPTION) if previous else {}
    topics = []
    for name, row in sorted(topics_now.items()):
        topics.append(
            {
                "name": name,
                "published": row.get(m.PUBSUB_TOPIC_PUBLISHED),
                "publish_rate": rate(row, topics_before.get(name), m.PUBSUB_TOPIC_PUBLISHED, dt),
            }
        )
    subscriptions = []
    for name, row in sorted(subs_now.items()):
        before = subs_before.get(name)
        subscriptions.append(
            {
                "name": name,
                "backlog": row.get(m.PUBSUB_SUBSCRIPTION_BACKLOG),
                "oldest_unacked_s": row.get(m.PUBSUB_SUBSCRIPTION_OLDEST_UNACKED_AGE),
                "delivered": row.get(m.PUBSUB_SUBSCRIPTION_DELIVERED),
                "delivery_rate": rate(row, before, m.PUBSUB_SUBSCRIPTION_DELIVERED, dt),
                "acked": row.get(m.PUBSUB_SUBSCRIPTION_ACKED),
                "ack_rate": rate(row, before, m.PUBSUB_SUBSCRIPTION_ACKED, dt),
                "dead_lettered": row.get(m.PUBSUB_SUBSCRIPTION_DEAD_LETTERED),
            }
        )
    deadletter = next((t for t in topics if t["name"] == DEADLETTER_TOPIC), None)
    events = next((t for t in topics if t["name"] == EVENTS_TOPIC), None)
    detections = next((t for t in topics if t["name"] == DETECTIONS_TOPIC), None)
    return {
        "topics": topics,
        "subscriptions": subscriptions,
        "events_per_s": events["publish_rate"] if events else None,
        "detections_per_s": detections["publish_rate"] if detections else None,
        "dead_lettered": deadletter["published"] if deadletter else None,
    }


def summarize_detector(scrape: Scrape, previous: Scrape | None, dt: float) -> dict[str, Any]:
    """Events/s, anomalies/s, dead letters, latency percentiles, batch sizes and model version
    (the detector's metrics, services/detector/metrics.py)."""

    def per_s(name: str) -> float | None:
        now, before = scrape.total(name), previous.total(name) if previous is not None else None
        if now is None or before is None or dt <= 0:
            return None
        return max(now - before, 0.0) / dt

    out: dict[str, Any] = {
        "events": scrape.total(m.DETECTOR_EVENTS),
        "events_per_s": per_s(m.DETECTOR_EVENTS),
        "anomalies": scrape.total(m.DETECTOR_ANOMALIES),
        "anomalies_per_s": per_s(m.DETECTOR_ANOMALIES),
        "dead_lettered": scrape.total(m.DETECTOR_DEADLETTERED),
    }
    for key, base in (("latency", m.DETECTOR_LATENCY), ("batch", m.DETECTOR_BATCH_SIZE)):
        buckets = scrape.histogram(base)
        if not buckets:
            continue
        if previous is not None:
            interval = prometheus.bucket_delta(buckets, previous.histogram(base))
            if interval and interval[-1][1] > 0:
                buckets = interval
        for q in (0.5, 0.95, 0.99):
            out[f"{key}_p{int(q * 100)}"] = prometheus.quantile(buckets, q)
        out[f"{key}_mean"] = prometheus.mean(scrape.total(base + "_sum"), scrape.total(base + "_count"))
    out["model_version"] = model_version(scrape)
    return out


def model_version(scrape: Scrape) -> str | None:
    """The version the detector scores with: the ``model_version`` label of its live version gauge."""
    samples = scrape.samples.get(m.DETECTOR_MODEL_VERSION, [])
    for s in [s for s in samples if s.value] or samples:
        if s.labels.get(m.MODEL_VERSION):
            return s.labels[m.MODEL_VERSION]
    return None


class WarehouseCounter:
    """Row counts per table from Parquet footers, incrementally.

    Files are immutable, so each footer is read once (the cache holds the live files only).
    A table is listed again (``services.warehouse.live.live_files``: the live files) only when a
    folder of it changed: its own folder's or a ``date=*`` folder's modification time, which a
    committed (renamed-in) or deleted file changes. A folder modified within ``RACY_S`` of the
    listing may change again within the same timestamp tick, so that listing is not trusted
    next time. An unchanged warehouse costs a few ``stat`` calls a table, whatever its size.
    """

    RACY_S = 2.0

    def __init__(self) -> None:
        self._rows: dict[Path, int] = {}
        self._listed: dict[str, tuple[tuple[tuple[str, int], ...], list[Path]]] = {}
        self.listings = 0  # tables listed (for tests and the benchmark)
        self.footers = 0  # footers read

    def counts(self, warehouse_dir: Path) -> dict[str, Any]:
        from services.warehouse.tables import TABLES

        root = Path(warehouse_dir)
        if not root.exists():  # a fresh stack: the first writer creates it
            self._rows.clear()
            self._listed.clear()
            return {"healthy": True, "error": None, "note": "empty", "tables": dict.fromkeys(TABLES, 0)}
        if not root.is_dir():
            return {"healthy": False, "error": f"warehouse: {root} is not a folder", "tables": {}}
        tables: dict[str, int] = {}
        seen: set[Path] = set()
        errors: list[str] = []
        for name in TABLES:
            total = 0
            for path in self._live(root, name):
                seen.add(path)
                if path not in self._rows:
                    try:
                        self._rows[path] = self._footer_rows(path)
                    except (OSError, ValueError) as exc:  # a file removed by compaction meanwhile, or torn
                        errors.append(f"{path.name}: {exc}")
                        self._listed.pop(name, None)  # list again next time
                        continue
                total += self._rows[path]
            tables[name] = total
        for gone in set(self._rows) - seen:
            del self._rows[gone]
        return {"healthy": True, "error": "; ".join(errors[:3]) or None, "tables": tables}

    def _footer_rows(self, path: Path) -> int:
        import pyarrow.parquet as pq

        self.footers += 1
        return int(pq.read_metadata(path).num_rows)

    def _live(self, root: Path, table: str) -> list[Path]:
        from services.warehouse.live import live_files as files  # query.files' list, without importing DuckDB

        started = time.time()
        signature = _folder_times(root / table)
        cached = self._listed.get(table)
        if cached is not None and cached[0] == signature:
            return cached[1]
        self.listings += 1
        live = files(root, table)
        racy = any(started - ns / 1e9 < self.RACY_S for _, ns in signature)
        if racy:
            self._listed.pop(table, None)
        else:
            self._listed[table] = (signature, live)
        return live


def _folder_times(table_dir: Path) -> tuple[tuple[str, int], ...]:
    """(name, mtime_ns) of a table's folder and of each of its ``date=*`` folders."""
    try:
        out = [("", table_dir.stat().st_mtime_ns)]
        with os.scandir(table_dir) as entries:
            for e in entries:
                if e.name.startswith("date=") and e.is_dir():
                    out.append((e.name, e.stat().st_mtime_ns))
    except (FileNotFoundError, NotADirectoryError):
        return ()
    return tuple(sorted(out))


async def read_models(client: httpx.AsyncClient, base: str, name: str, alias: str, metrics_cache: dict) -> dict:
    """Versions of the registered model, their aliases, run metrics and tags, from MLflow's REST API.

    ``metrics_cache`` (run id -> (time, metrics)) should be bounded: a :class:`BoundedCache`.
    """
    base = base.rstrip("/")
    try:
        got = await client.get(f"{base}/api/2.0/mlflow/registered-models/get", params={"name": name})
        if got.status_code == 404 or (got.status_code == 400 and "RESOURCE_DOES_NOT_EXIST" in got.text):
            return {"healthy": True, "error": f"no registered model {name!r} yet", "versions": [], "champion": None}
        got.raise_for_status()
        registered = got.json().get("registered_model", {})
        found = await client.get(
            f"{base}/api/2.0/mlflow/model-versions/search",
            params={"filter": f"name='{name}'", "max_results": 200, "order_by": "version_number DESC"},
        )
        found.raise_for_status()
        versions = found.json().get("model_versions", [])
    except (httpx.HTTPError, ValueError) as exc:
        return {"healthy": False, "error": f"MLflow: {type(exc).__name__}: {exc}", "versions": [], "champion": None}
    aliases: dict[str, list[str]] = defaultdict(list)
    for a in registered.get("aliases", []):
        aliases[str(a.get("version"))].append(a.get("alias"))
    versions.sort(key=lambda v: int(v.get("version", 0)), reverse=True)
    rows = []
    for v in versions[:20]:
        run_id = v.get("run_id")
        metrics = await _run_metrics(client, base, run_id, metrics_cache) if run_id else {}
        tags = {t.get("key"): t.get("value") for t in v.get("tags", [])}
        rows.append(
            {
                "version": str(v.get("version")),
                "created": (v.get("creation_timestamp") or 0) / 1000,
                "aliases": aliases.get(str(v.get("version")), []),
                "status": v.get("status"),
                "run_id": run_id,
                "metrics": metrics,
                "tags": {k: val for k, val in tags.items() if not k.startswith("mlflow.")},
            }
        )
    champion = next((r["version"] for r in rows if alias in r["aliases"]), None)
    return {"healthy": True, "error": None, "versions": rows, "champion": champion, "alias": alias}


RUN_METRICS_TTL_S = 300.0


class BoundedCache(OrderedDict):
    """A dict that forgets its oldest-written entries beyond ``maxsize``."""

    def __init__(self, maxsize: int) -> None:
        super().__init__()
        self.maxsize = maxsize

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.maxsize:
            self.popitem(last=False)


async def _run_metrics(client: httpx.AsyncClient, base: str, run_id: str, cache: dict) -> dict[str, float]:
    """A run's metrics, cached ``RUN_METRICS_TTL_S`` (a finished run's metrics rarely change)."""
    cached = cache.get(run_id)
    if cached is not None and time.monotonic() - cached[0] < RUN_METRICS_TTL_S:
        return cached[1]
    try:
        got = await client.get(f"{base}/api/2.0/mlflow/runs/get", params={"run_id": run_id})
        got.raise_for_status()
        metrics = {m["key"]: m["value"] for m in got.json().get("run", {}).get("data", {}).get("metrics", [])}
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        metrics = {}
    cache[run_id] = (time.monotonic(), metrics)
    return metrics


async def read_orchestrator(client: httpx.AsyncClient, base: str) -> dict[str, Any]:
    got = await fetch(client, base.rstrip("/") + "/runs")
    if not got["healthy"]:
        return {"healthy": False, "error": got["error"], "runs": []}
    try:
        body = httpx.Response(200, text=got["text"]).json()
    except ValueError:
        return {"healthy": False, "error": "orchestrator: /runs is not JSON", "runs": []}
    runs = body.get("runs", []) if isinstance(body, dict) else body
    if not isinstance(runs, list):
        return {"healthy": False, "error": "orchestrator: /runs has no list of runs", "runs": []}
    return {"healthy": True, "error": None, "runs": [r for r in runs if isinstance(r, dict)][:20]}


def merge(scrapes: list[Scrape]) -> Scrape:
    """Several /metrics pages as one (the detector's workers: sums over them are the whole job)."""
    merged: dict[str, list[prometheus.Sample]] = defaultdict(list)
    for scrape in scrapes:
        for name, samples in scrape.samples.items():
            merged[name].extend(samples)
    return Scrape(dict(merged))


def by_worker(scrape: Scrape) -> dict[str, Scrape]:
    """The samples of each ``worker_id`` (samples without the label under ``""``)."""
    out: dict[str, dict[str, list[prometheus.Sample]]] = defaultdict(lambda: defaultdict(list))
    for name, samples in scrape.samples.items():
        for s in samples:
            out[s.labels.get(m.WORKER_ID, "")][name].append(s)
    return {worker: Scrape(dict(samples)) for worker, samples in out.items()}


def summarize_workers(scrape: Scrape, previous: Scrape | None, dt: float) -> list[dict[str, Any]]:
    """One row per detector worker (events/s, anomalies/s, latency, batch, model version), by ``worker_id``;
    empty when the samples carry no worker label (one detector)."""
    now = by_worker(scrape)
    before = by_worker(previous) if previous is not None else {}
    if set(now) <= {""}:
        return []
    return [
        {"worker": worker, **summarize_detector(now[worker], before.get(worker), dt)}
        for worker in sorted(now)
        if worker
    ]
