"""Sensors: each looks at the warehouse (or the clock) and may start a run.

- new data: at least N purchases newer than the champion's training window;
- drift: per-feature PSI and a two-sample KS test, champion's training window vs the newest purchases;
- schedule: a run every S seconds.

The reference window is the champion's ``hyp.window_start``/``hyp.window_end`` tags (set on versions
the orchestrator registers); a champion without them (trained by ``hyp train``) is compared
against the oldest purchases in the warehouse instead, and the trigger says so.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import datetime
from typing import Any

from services.orchestrator import drift, window
from services.orchestrator.params import RunParams
from services.orchestrator.recent import RecentWindow
from services.orchestrator.runner import Orchestrator

log = logging.getLogger(__name__)


def _parse(value: str | None) -> datetime | None:
    if not value or value == "None":
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=None)
    except ValueError:
        return None


class Sensors:
    def __init__(self, orchestrator: Orchestrator) -> None:
        self.orch = orchestrator
        self.settings = orchestrator.settings
        self.started = time.monotonic()
        self.last: dict[str, Any] = {}  # sensor -> its last reading, for /health and the console
        self._thread: threading.Thread | None = None
        self.recent = RecentWindow(
            self.settings.warehouse_dir, self.settings.drift_recent_rows, self.settings.events_table
        )
        self._reference: tuple[Any, Any, str] | None = None  # (champion window, frame, source), per champion
        self._drift: tuple[Any, dict[str, Any] | None] | None = None  # (inputs, trigger) of the last computation

    # ---- readings ------------------------------------------------------------------------------
    def champion_window(self) -> tuple[datetime | None, datetime | None]:
        tags = self.orch.ops.champion_tags()
        return _parse(tags.get("hyp.window_start")), _parse(tags.get("hyp.window_end"))

    def check_new_data(self) -> dict[str, Any] | None:
        s = self.settings
        if s.new_data_rows <= 0:
            return None
        _, end = self.champion_window()
        if end is None:
            end = self.orch.ops.champion_created()
        n = window.count_since(s.warehouse_dir, end, s.events_table)
        self.last["new_data"] = {"new_purchases": n, "since": str(end), "threshold": s.new_data_rows}
        if n >= s.new_data_rows:
            return {
                "kind": "new_data",
                "reason": f"{n} new purchases since {end} (>= {s.new_data_rows})",
                "new_rows": n,
            }
        return None

    def _reference_window(self, start: datetime | None, end: datetime | None):
        """The champion's reference rows: read once per champion window (and while fewer than wanted)."""
        s = self.settings
        key = (start, end)
        if self._reference is None or self._reference[0] != key or len(self._reference[1]) < s.drift_reference_rows:
            if start and end:
                frame = window.between(
                    s.warehouse_dir, start, end, max_rows=s.drift_reference_rows, table=s.events_table
                )
                source = f"champion training window {start}..{end}"
            else:
                frame = window.oldest(s.warehouse_dir, rows=s.drift_reference_rows, table=s.events_table)
                source = "oldest purchases in the warehouse (the champion has no training window tags)"
            self._reference = (key, frame, source)
        return self._reference[1], self._reference[2]

    def check_drift(self) -> dict[str, Any] | None:
        """Drift of the newest purchases against the champion's window; recomputed only when either changed."""
        s = self.settings
        if not s.drift_enabled:
            return None
        start, end = self.champion_window()
        if self.recent.rows != s.drift_recent_rows:
            self.recent = RecentWindow(s.warehouse_dir, s.drift_recent_rows, s.events_table)
        grew = self.recent.update()
        inputs = (start, end, s.drift_recent_rows, s.drift_reference_rows)
        if not grew and self._drift is not None and self._drift[0] == inputs:
            return self._drift[1]  # nothing new: the same answer, without reading anything
        fired = self._drift_of(start, end)
        self._drift = (inputs, fired)
        return fired

    def _drift_of(self, start: datetime | None, end: datetime | None) -> dict[str, Any] | None:
        s = self.settings
        reference, ref_source = self._reference_window(start, end)
        recent = self.recent.table
        n_recent = len(self.recent)
        if n_recent < s.drift_recent_rows or len(reference) < min(s.drift_reference_rows, s.drift_recent_rows):
            self.last["drift"] = {"status": "waiting for data", "recent": n_recent, "reference": len(reference)}
            return None
        assert recent is not None
        oldest_recent = recent.column("event_datetime")[n_recent - 1].as_py()
        if end is not None and oldest_recent <= end:
            self.last["drift"] = {"status": "recent window overlaps the training window", "recent": n_recent}
            return None
        results = {}
        drifted = []
        for feature in window.FEATURES:
            d = drift.feature_drift(feature, reference[feature].to_numpy(), recent.column(feature).to_numpy())
            self.orch.metrics.psi.labels(feature).set(d.psi)
            self.orch.metrics.ks.labels(feature).set(d.ks_statistic)
            self.orch.metrics.ks_p.labels(feature).set(d.ks_pvalue)
            results[feature] = {"psi": round(d.psi, 4), "ks": round(d.ks_statistic, 4), "ks_pvalue": d.ks_pvalue}
            if drift.is_drifted(
                d, psi_threshold=s.drift_psi_threshold, ks_pvalue=s.drift_ks_pvalue, ks_statistic=s.drift_ks_statistic
            ):
                drifted.append(feature)
        self.last["drift"] = {"features": results, "drifted": drifted, "reference": ref_source}
        if drifted:
            return {
                "kind": "drift",
                "reason": f"drift in {', '.join(drifted)} against the {ref_source}",
                "features": results,
                "since": str(oldest_recent),
            }
        return None

    def check_schedule(self) -> dict[str, Any] | None:
        s = self.settings
        if s.schedule_s <= 0:
            return None
        runs = self.orch.history.list(limit=1)
        since = self.started
        if runs:
            last = datetime.fromisoformat(runs[0]["started_at"])
            age = time.time() - last.timestamp()
            since = time.monotonic() - age
        if time.monotonic() - since >= s.schedule_s:
            return {"kind": "schedule", "reason": f"every {s.schedule_s:g} s"}
        return None

    # ---- the loop ------------------------------------------------------------------------------
    def cooling_down(self) -> bool:
        last = self.orch.last_finished
        return last is not None and time.monotonic() - last < self.settings.cooldown_s

    def tick(self) -> dict[str, Any] | None:
        """Check every sensor once; start (or join) a run on the first that fires; return its trigger."""
        if self.orch.active is not None or self.cooling_down():
            return None
        for name, check in (
            ("drift", self.check_drift),
            ("new_data", self.check_new_data),
            ("schedule", self.check_schedule),
        ):
            try:
                fired = check()
            except Exception as exc:  # a sensor never kills the loop
                log.warning("sensor %s failed: %s", name, exc)
                self.last[name] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            if fired:
                self.orch.metrics.sensor_fired.labels(name).inc()
                since = fired.get("since")  # a drift run trains on the new normal only
                params = self.orch.resolve(RunParams(since=since)) if since else self.orch.default_params()
                self.orch.trigger(fired, params)
                return fired
        return None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sensors", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self.orch.stop_event.wait(self.settings.sensor_interval_s):
            self.tick()

    def join(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
