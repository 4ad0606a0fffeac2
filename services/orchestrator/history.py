"""Run history: one SQLite file in the data dir, safe across restarts.

Each run is one row holding its JSON record. On start, any run left ``running``
by a previous process is marked ``interrupted``: promotion is the last, single
alias move of a run, so an interrupted run never leaves a half-promoted model.
"""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FINAL = ("succeeded", "failed", "interrupted")


def _finite(value: Any) -> Any:
    """NaN and infinities (e.g. an undefined ROC-AUC) become null, so every record is valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RunHistory:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        with self._connect() as con:
            con.execute("PRAGMA journal_mode=WAL")
            con.execute(
                "CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, started_at TEXT NOT NULL,"
                " status TEXT NOT NULL, record TEXT NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10, isolation_level=None)

    def mark_interrupted(self) -> list[str]:
        """Mark runs a dead process left running; return their ids."""
        marked = []
        for record in self.list(status="running"):
            record["status"] = "interrupted"
            record["finished_at"] = now_iso()
            record["reason"] = "the orchestrator stopped during this run; the champion was not changed by it" + (
                "" if not record.get("promoted_version") else " after its promotion"
            )
            self.save(record)
            marked.append(record["id"])
        return marked

    def create(self, trigger: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
        record: dict[str, Any] = {
            "id": uuid.uuid4().hex[:12],
            "status": "running",
            "trigger": trigger,
            "params": dict(params),
            "started_at": now_iso(),
            "finished_at": None,
            "steps": [],
            "decision": None,
            "reason": None,
            "champion_before": None,
            "promoted_version": None,
            "consumers": {},
            "mlflow_run_id": None,
        }
        self.save(record)
        return record

    def save(self, record: dict[str, Any]) -> None:
        text = json.dumps(_finite(record), default=str)
        with self._lock, self._connect() as con:
            con.execute(
                "INSERT INTO runs (id, started_at, status, record) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE"
                " SET status = excluded.status, record = excluded.record",
                (record["id"], record["started_at"], record["status"], text),
            )

    def get(self, run_id: str) -> dict[str, Any] | None:
        with self._connect() as con:
            row = con.execute("SELECT record FROM runs WHERE id = ?", (run_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def list(self, *, status: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        sql = "SELECT record FROM runs" + (" WHERE status = ?" if status else "") + " ORDER BY started_at DESC LIMIT ?"
        args: tuple[Any, ...] = (status, limit) if status else (limit,)
        with self._connect() as con:
            return [json.loads(r[0]) for r in con.execute(sql, args).fetchall()]
