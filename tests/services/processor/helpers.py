"""Events, push envelopes and an in-process processor for the processor tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from services.processor.app import create_app
from services.processor.settings import ProcessorSettings
from services.testing import events
from services.testing.hyp import HypProcess

ROOT = Path(__file__).resolve().parents[3]


def purchase_event(value: float = 50.0, tax: float = 4.0, shipping: float = 5.0, user: str = "u1") -> dict[str, Any]:
    """A purchase happening now (the processor's rows land in today's partition)."""
    return events.purchase(
        value,
        tax=tax,
        shipping=shipping,
        user_id=user,
        transaction_id=f"t-{user}-{value}",
        event_datetime=events.now(),
        affiliation="store",
        item_name="mug",
    )


def view_event(user: str = "u1") -> dict[str, Any]:
    return events.view_item(user, event_datetime=events.now())


def envelope(
    event: Any, message_id: str, attributes: dict[str, str] | None = None, *, raw: bytes | None = None
) -> dict[str, Any]:
    data = raw if raw is not None else json.dumps(event).encode()
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": attributes or {"anomaly": "0", "event": "purchase"},
            "messageId": message_id,
            "publishTime": "2026-11-22T08:00:00.123456789Z",
        },
        "subscription": "projects/hyp-local/subscriptions/hyp_subscription_cloud_run",
    }


def settings(warehouse_dir, endpoint_url: str, **env: Any) -> ProcessorSettings:
    values = {
        "HYP_WAREHOUSE_DIR": str(warehouse_dir),
        "HYP_ENDPOINT_URL": endpoint_url,
        "HYP_PROCESSOR_ENDPOINT_TIMEOUT_S": "2",
        "HYP_PROCESSOR_COMMIT_INTERVAL_S": "0.05",  # sequential test pushes need not wait the default 0.5 s
        "HYP_PROCESSOR_COMPACT_INTERVAL_S": "0",
        **env,
    }
    return ProcessorSettings(**{k: str(v) for k, v in values.items()})  # type: ignore[arg-type]  # env names


class RecordingDeadLetter:
    """Stands in for the dead-letter publisher in fast tests (the integration tests use the emulator)."""

    def __init__(self) -> None:
        self.published: list[tuple[bytes, dict[str, str], str]] = []

    async def publish(self, data: bytes, attributes: dict[str, str], reason: str, timeout_s: float = 10.0) -> str:
        self.published.append((data, attributes, reason))
        return str(len(self.published))

    def close(self) -> None:
        pass


@contextlib.asynccontextmanager
async def processor_client(app) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan run, behind an in-process async HTTP client (concurrent requests work)."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://processor") as client:
            yield client


def run(coro):
    return asyncio.run(coro)


def make_app(s: ProcessorSettings, deadletter: Any = None):
    return create_app(s, deadletter=deadletter)


class Service(HypProcess):
    """One `hyp <command>` subprocess on a fixed port, restartable (the kit's HypProcess)."""

    def __init__(self, command: str, port: int, env: dict[str, str], log: Path, health: str = "/health") -> None:
        super().__init__(command, log_path=log, port=port, env=env, health=health)


def fill_warehouse(
    warehouse: Path, commits: int, rows_per_commit: int = 2, prefix: str = "old"
) -> list[tuple[str, dict]]:
    """What hours of running leave: ``commits`` small files per table of processor rows, one per commit.

    Returns (message_id, event) of every message written (purchases, in both tables, except the
    last message of every tenth commit, which has only its cloud_run row: a crash between the appends).
    Files are laid out as services.warehouse.append writes them, without the fsync (it only adds time).
    """
    import pyarrow.parquet as pq

    from services.common.events import event_row, parse_event
    from services.warehouse.writer import to_arrow

    written = []
    stamp = datetime.now(UTC).replace(tzinfo=None)
    rows: dict[str, list[dict]] = {"cloud_run": [], "cloud_run_anomaly": []}
    bounds: dict[str, list[int]] = {"cloud_run": [0], "cloud_run_anomaly": [0]}
    for c in range(commits):
        for r in range(rows_per_commit):
            mid = f"{prefix}-{c}-{r}"
            event = purchase_event(20.0 + r, user=f"{prefix}{c}")
            row = event_row(parse_event(json.dumps(event).encode()))
            row.update(message_id=mid, publish_time=stamp, attributes="{}", source="processor", ingested_at=stamp)
            rows["cloud_run"].append(row)
            if not (c % 10 == 0 and r == rows_per_commit - 1):
                score = {k: row[k] for k in ("event_datetime", "transaction_id", "user_id", "tax", "shipping", "value")}
                score.update(anomaly=False, score=1.0, model_version="0", message_id=mid, attributes="{}")
                rows["cloud_run_anomaly"].append({**score, "source": "processor", "scored_at": stamp})
            written.append((mid, event))
        for table in rows:
            bounds[table].append(len(rows[table]))
    for table, table_rows in rows.items():
        data = to_arrow(table, table_rows)
        for c in range(commits):
            lo, hi = bounds[table][c], bounds[table][c + 1]
            folder = warehouse / table / f"date={table_rows[lo]['event_datetime']:%Y-%m-%d}"
            folder.mkdir(parents=True, exist_ok=True)
            pq.write_table(data.slice(lo, hi - lo), folder / f"part-fill-{prefix}-{c:06d}.parquet", compression="zstd")
    return written


def push_envelope(event: dict, message_id: str, published: datetime) -> bytes:
    """A push body as the emulator sends it, with this publish time."""
    body = envelope(event, message_id)
    body["message"]["publishTime"] = published.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return json.dumps(body).encode()
