"""The live summary of a running stack: events/s, anomalies, dead-lettered, model version, precision/recall.

Sources: the services' Prometheus ``/metrics`` (emulator and detector) and the warehouse (DuckDB over the
Parquet tables; labels come from the ``attributes`` column, never from the payload). Every source is
optional: what cannot be read yet shows as ``-``.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.common import metric_names as m
from services.common import prometheus
from services.common.names import ANOMALY_KIND_SQL, LABEL_SQL
from services.common.settings import DEADLETTER_TOPIC, DETECTIONS_TOPIC, EVENTS_TOPIC


def parse_metrics(text: str) -> prometheus.Scrape:
    """A Prometheus text page parsed; an empty scrape for a page that is not one (nothing made up)."""
    try:
        return prometheus.parse(text)
    except ValueError:
        return prometheus.Scrape()


def scrape(url: str, timeout: float = 1.0) -> prometheus.Scrape:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return parse_metrics(response.read().decode("utf-8", "replace"))
    except OSError:
        return prometheus.Scrape()


def value(scraped: prometheus.Scrape, name: str, **labels: str) -> float | None:
    """Sum of the samples named exactly ``name`` (services.common.metric_names) that carry ``labels``, a short
    resource name matching its full path; None when there is none."""
    found = scraped.matching(name, short_names=True, **labels)
    return sum(sample.value for sample in found) if found else None


@dataclass
class WarehouseStats:
    events: int = 0
    scored: int = 0
    flagged: int = 0
    true_positives: int = 0
    labelled_anomalies: int = 0
    model_version: str | None = None
    latest: list[dict[str, Any]] = field(default_factory=list)

    @property
    def precision(self) -> float | None:
        return self.true_positives / self.flagged if self.flagged else None

    @property
    def recall(self) -> float | None:
        return self.true_positives / self.labelled_anomalies if self.labelled_anomalies else None


_COUNTS = f"""
    SELECT filename, count(*) AS scored, count(*) FILTER (WHERE anomaly) AS flagged,
           count(*) FILTER (WHERE anomaly AND {LABEL_SQL}) AS tp, count(*) FILTER (WHERE {LABEL_SQL}) AS labelled,
           max(model_version) AS model_version
    FROM read_parquet(?, union_by_name=true, filename=true) GROUP BY filename
"""
_LATEST = f"""
    SELECT transaction_id, value, tax, shipping, score, model_version, source, epoch(scored_at) AS at,
           {ANOMALY_KIND_SQL} AS kind, {LABEL_SQL} AS labelled
    FROM read_parquet(?, union_by_name=true) WHERE anomaly AND epoch(scored_at) > ? ORDER BY scored_at DESC LIMIT 5
"""


class _Tally:
    """Counts per live file, so a refresh reads only the files added since the last one.

    Totals are sums over the files live now: a compacted file replaces its sources' counts, never adds to them.
    """

    def __init__(self, warehouse_dir: Path) -> None:
        self.warehouse_dir = warehouse_dir
        self.events: dict[str, int] = {}  # event table file (cloud_run, dataflow) -> rows (from the Parquet footer)
        self.verdicts: dict[
            str, dict[str, Any]
        ] = {}  # verdict table file (cloud_run_anomaly, dataflow_anomaly) -> counts

    def _per_table(self, counted: dict[str, Any], tables: tuple[str, ...]) -> dict[str, list[Any]]:
        return {t: [v for f, v in counted.items() if Path(f).is_relative_to(self.warehouse_dir / t)] for t in tables}

    def update(self, latest_after: float | None) -> WarehouseStats:
        import duckdb
        import pyarrow.parquet as pq

        from services.warehouse.query import files
        from services.warehouse.tables import EVENT_TABLES, VERDICT_TABLES

        live = [str(f) for table in EVENT_TABLES for f in files(self.warehouse_dir, table)]
        self.events = {f: self.events[f] if f in self.events else pq.read_metadata(f).num_rows for f in live}
        live = [str(f) for table in VERDICT_TABLES for f in files(self.warehouse_dir, table)]
        new = [f for f in live if f not in self.verdicts]
        self.verdicts = {f: self.verdicts[f] for f in live if f in self.verdicts}
        latest: list[dict[str, Any]] = []
        if new:
            con = duckdb.connect(":memory:")
            try:
                for row in con.sql(_COUNTS, params=[new]).to_arrow_table().to_pylist():
                    self.verdicts[row.pop("filename")] = row
                after = -1.0 if latest_after is None else latest_after
                latest = con.sql(_LATEST, params=[new, after]).to_arrow_table().to_pylist()
            finally:
                con.close()
        # each event table (the processor's cloud_run, the detector's dataflow) holds each event once, and each
        # verdict table (cloud_run_anomaly, dataflow_anomaly) each scored purchase once: the fuller one counts,
        # whichever part of the stack runs
        events = max(sum(n) for n in self._per_table(self.events, EVENT_TABLES).values())
        counts = max(self._per_table(self.verdicts, VERDICT_TABLES).values(), key=lambda c: sum(x["scored"] for x in c))
        versions = [c["model_version"] for c in counts if c["model_version"] is not None]
        return WarehouseStats(
            events=events,
            scored=sum(c["scored"] for c in counts),
            flagged=sum(c["flagged"] for c in counts),
            true_positives=sum(c["tp"] for c in counts),
            labelled_anomalies=sum(c["labelled"] for c in counts),
            model_version=max(versions) if versions else None,
            latest=list(reversed(latest)),
        )


_TALLIES: dict[Path, _Tally] = {}  # one per warehouse, filled on first use (the live summary's process only)


def warehouse_stats(warehouse_dir: Path, latest_after: float | None = None) -> WarehouseStats | None:
    """Counts from the warehouse, or None when it cannot be read (yet); reads only files new since the last call."""
    tally = _TALLIES.setdefault(Path(warehouse_dir), _Tally(Path(warehouse_dir)))
    try:
        return tally.update(latest_after)
    except Exception:  # the warehouse may be empty, half-created or missing: the summary shows '-'
        return None


@dataclass
class Snapshot:
    at: float
    published: float | None  # events published into hyp-pubsub-topic (emulator metric)
    detector_events: float | None
    anomalies: float | None
    deadlettered: float | None
    model_version: str | None
    warehouse: WarehouseStats | None


def take(
    emulator_metrics: str | None, detector_metrics: str | None, warehouse_dir: Path, latest_after: float | None = None
) -> Snapshot:
    em = scrape(emulator_metrics) if emulator_metrics else prometheus.Scrape()
    det = scrape(detector_metrics) if detector_metrics else prometheus.Scrape()
    return from_samples(em, det, warehouse_stats(warehouse_dir, latest_after))


def from_samples(
    em: prometheus.Scrape,
    det: prometheus.Scrape,
    wh: WarehouseStats | None,
    at: float | None = None,
) -> Snapshot:
    """A snapshot from the emulator's and the detector's samples and warehouse counts already read."""
    published = value(em, m.PUBSUB_TOPIC_PUBLISHED, topic=EVENTS_TOPIC)
    deadletter = value(em, m.PUBSUB_TOPIC_PUBLISHED, topic=DEADLETTER_TOPIC)
    if deadletter is None:
        deadletter = value(det, m.DETECTOR_DEADLETTERED)
    anomalies = value(em, m.PUBSUB_TOPIC_PUBLISHED, topic=DETECTIONS_TOPIC)
    if anomalies is None:
        anomalies = value(det, m.DETECTOR_ANOMALIES)
    if anomalies is None and wh is not None:
        anomalies = float(wh.flagged)
    return Snapshot(
        at=time.monotonic() if at is None else at,
        published=published,
        detector_events=value(det, m.DETECTOR_EVENTS),
        anomalies=anomalies,
        deadlettered=deadletter,
        model_version=det.label(m.DETECTOR_MODEL_VERSION, m.MODEL_VERSION) or (wh.model_version if wh else None),
        warehouse=wh,
    )


def _num(v: float | int | None) -> str:
    return "-" if v is None else f"{v:,.0f}"


def _ratio(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def line(now: Snapshot, before: Snapshot | None) -> str:
    rate = None
    if before is not None and now.published is not None and before.published is not None and now.at > before.at:
        rate = (now.published - before.published) / (now.at - before.at)
    wh = now.warehouse
    return (
        f"events/s {_num(rate)} | published {_num(now.published)} | in warehouse {_num(wh.events if wh else None)}"
        f" | anomalies {_num(now.anomalies)} | dead-lettered {_num(now.deadlettered)}"
        f" | model v{now.model_version or '-'}"
        f" | precision {_ratio(wh.precision if wh else None)} recall {_ratio(wh.recall if wh else None)}"
    )


def detection_line(row: dict[str, Any]) -> str:
    truth = "labelled anomaly" if row.get("labelled") else "not labelled"
    kind = f" ({row['kind']})" if row.get("kind") else ""
    return (
        f"  ANOMALY tx={row.get('transaction_id')} value={row.get('value')} tax={row.get('tax')} "
        f"shipping={row.get('shipping')} score={row.get('score') or 0:.3g} by {row.get('source') or '?'} "
        f"model v{row.get('model_version')} -> {truth}{kind}"
    )


def as_json(s: Snapshot, services: dict[str, dict[str, Any]] | None = None) -> str:
    """One JSON object per refresh; ``services``: the supervision state (restarts, last exit) per service."""
    wh = s.warehouse
    extra = {} if services is None else {"services": services}
    return json.dumps(
        {
            "published": s.published,
            "anomalies": s.anomalies,
            "deadlettered": s.deadlettered,
            "model_version": s.model_version,
            "warehouse_events": wh.events if wh else None,
            "flagged": wh.flagged if wh else None,
            "precision": wh.precision if wh else None,
            "recall": wh.recall if wh else None,
            **extra,
        }
    )
