"""Server-side aggregation of the message streams the console watches.

Pub/Sub callbacks (many threads, up to thousands of messages a second) call
:meth:`LiveAnomalies.record_event` and :meth:`LiveAnomalies.record_detection`;
each call is O(1) under one lock. The page never sees single messages, only a
:meth:`snapshot` built once per refresh, so its cost does not grow with the rate.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

MAX_ANOMALIES = 200
MAX_SERIES = 300


@dataclass
class AnomalyRow:
    key: str
    seen_at: float
    event_datetime: str | None = None
    user_id: str | None = None
    value: float | None = None
    tax: float | None = None
    shipping: float | None = None
    score: float | None = None
    model_version: str | None = None
    label: str | None = None  # "1", "0" or None (unlabelled)
    kind: str | None = None
    detected: bool = False
    message_id: str | None = None  # the event's Pub/Sub message id (what a publish answered)

    def status(self, now: float, miss_after_s: float) -> str:
        if self.detected:
            if self.label == "1":
                return "detected"
            if self.label == "0":
                return "false alarm"
            return "detected (unlabelled)"
        return "missed" if now - self.seen_at > miss_after_s else "injected"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _decode(data: bytes) -> dict[str, Any]:
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


class LiveAnomalies:
    """Counts and the latest anomalies, labelled (injected) or detected, since the console started."""

    def __init__(self, *, miss_after_s: float = 30.0, clock=time.time) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.miss_after_s = miss_after_s
        self._rows: OrderedDict[str, AnomalyRow] = OrderedDict()
        self.events_seen = 0
        self.labelled = 0
        self.detections = 0
        self.true_positives = 0
        self.false_positives = 0
        self.unlabelled_detections = 0
        self.undecodable = 0
        self.kinds: dict[str, int] = {}
        self._series: deque[dict[str, float | None]] = deque(maxlen=MAX_SERIES)
        self._last_point: tuple[float, int, int] | None = None

    # -- writers (Pub/Sub callback threads) ----------------------------------------------------------
    def record_event(self, attributes: Mapping[str, str], data: bytes, message_id: str | None = None) -> None:
        """A message of the events topic (``message_id``: its id); only labelled anomalies are decoded."""
        if attributes.get("anomaly") != "1":
            with self._lock:
                self.events_seen += 1
            return
        body = _decode(data)
        ecommerce = _mapping(body.get("ecommerce"))
        purchase = _mapping(ecommerce.get("purchase"))
        key = str(purchase.get("transaction_id") or attributes.get("transaction_id") or id(data))
        kind = attributes.get("anomaly_kind") or None
        now = self._clock()
        with self._lock:
            self.events_seen += 1
            self.labelled += 1
            if kind:
                self.kinds[kind] = self.kinds.get(kind, 0) + 1
            row = self._rows.get(key)
            if row is None:
                row = AnomalyRow(key=key, seen_at=now)
                self._put(row)
            row.label, row.kind = "1", kind or row.kind
            row.message_id = row.message_id or message_id
            row.event_datetime = row.event_datetime or _text(body.get("event_datetime"))
            row.user_id = row.user_id or _text(body.get("user_id"))
            for f in ("value", "tax", "shipping"):
                if getattr(row, f) is None:
                    setattr(row, f, _number(purchase.get(f)))

    def record_detection(self, attributes: Mapping[str, str], data: bytes) -> None:
        """A message of the detections topic (one anomaly the detector found)."""
        body = _decode(data)
        if not body:
            with self._lock:
                self.undecodable += 1
            return
        features = _mapping(body.get("features"))
        label = attributes.get("anomaly")
        label = label if label in {"0", "1"} else None
        key = str(body.get("transaction_id") or attributes.get("transaction_id") or id(data))
        now = self._clock()
        with self._lock:
            self.detections += 1
            if label == "1":
                self.true_positives += 1
            elif label == "0":
                self.false_positives += 1
            else:
                self.unlabelled_detections += 1
            row = self._rows.get(key)
            if row is None:
                row = AnomalyRow(key=key, seen_at=now)
                self._put(row)
            else:
                self._rows.move_to_end(key)
            row.detected = True
            row.label = label or row.label
            row.kind = attributes.get("anomaly_kind") or row.kind
            row.score = _number(body.get("score"))
            row.model_version = _text(body.get("model_version") or attributes.get("model_version"))
            row.message_id = _text(body.get("message_id")) or row.message_id  # the scored event's id
            row.event_datetime = row.event_datetime or _text(body.get("event_datetime"))
            row.user_id = row.user_id or _text(body.get("user_id"))
            for f in ("value", "tax", "shipping"):
                v = _number(body.get(f, features.get(f)))
                if v is not None:
                    setattr(row, f, v)

    def _put(self, row: AnomalyRow) -> None:
        self._rows[row.key] = row
        while len(self._rows) > MAX_ANOMALIES:
            self._rows.popitem(last=False)

    # -- readers (the refresh loop) ------------------------------------------------------------------
    def add_point(self, events_per_s: float | None, now: float | None = None) -> None:
        """Append one point to the time series; anomaly rates come from this object's own counters."""
        now = self._clock() if now is None else now
        with self._lock:
            detections, labelled = self.detections, self.labelled
            point: dict[str, float | None] = {"t": now, "events_per_s": events_per_s}
            if self._last_point is not None and now > self._last_point[0]:
                dt = now - self._last_point[0]
                point["detections_per_s"] = (detections - self._last_point[1]) / dt
                point["labelled_per_s"] = (labelled - self._last_point[2]) / dt
            else:
                point["detections_per_s"] = point["labelled_per_s"] = None
            self._last_point = (now, detections, labelled)
            self._series.append(point)

    def snapshot(self, limit: int = 100) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            rows = list(self._rows.values())[-limit:]
            tp, fp, labelled = self.true_positives, self.false_positives, self.labelled
            out = {
                "events_seen": self.events_seen,
                "labelled": labelled,
                "detections": self.detections,
                "true_positives": tp,
                "false_positives": fp,
                "unlabelled_detections": self.unlabelled_detections,
                "undecodable": self.undecodable,
                "kinds": dict(self.kinds),
                "series": list(self._series),
            }
        out["precision"] = tp / (tp + fp) if tp + fp else None
        out["recall"] = min(1.0, tp / labelled) if labelled else None
        out["anomalies"] = [dict(asdict(r), status=r.status(now, self.miss_after_s)) for r in reversed(rows)]
        return out


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
