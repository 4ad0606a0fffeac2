"""Scenarios: start and stop the console's one load-generator run (services/console/scenarios.py) and
read its progress: time elapsed of its duration, and the events the emulator counted on the events topic
since it started (the emulator's /metrics, as the rest of the page)."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from services.common.settings import EVENTS_TOPIC
from services.console.deps import CollectorDep, LoadRunsDep
from services.console.upstream import ActionError

router = APIRouter(prefix="/api/scenarios")


class Start(BaseModel):
    scenario: Literal["steady", "drift", "spike", "anomaly"] = "steady"
    rate: float = Field(
        50.0, gt=0, le=5000, description="events/s (steady and anomaly; drift and spike have their own)"
    )
    duration_s: int = Field(120, ge=1, le=3600, description="the run stops by itself after this long")
    anomaly_kind: str | None = None


def _published(collector: Any) -> float | None:
    topics = (collector.snapshot.get("pubsub") or {}).get("topics") or []
    return next((t.get("published") for t in topics if t.get("name") == EVENTS_TOPIC), None)


@router.get("")
async def status(runs: LoadRunsDep, collector: CollectorDep) -> dict[str, Any]:
    """The run (or the last one): elapsed, progress, events published since it started, its report at the end."""
    from loadgen.config import ANOMALY_KINDS

    answer = {**runs.status(), "anomaly_kinds": list(ANOMALY_KINDS)}
    run = answer["run"]
    if run is not None and run.get("published_before") is not None:
        now = _published(collector)
        run["published_since"] = None if now is None else max(0, int(now - run["published_before"]))
    return answer


@router.post("")
async def start(body: Start, runs: LoadRunsDep, collector: CollectorDep) -> dict[str, Any]:
    from loadgen.config import ANOMALY_KINDS

    if body.scenario == "anomaly" and body.anomaly_kind not in ANOMALY_KINDS:
        raise ActionError(422, f"anomaly_kind: expected one of {', '.join(ANOMALY_KINDS)}, got {body.anomaly_kind!r}")
    try:
        answer = await asyncio.to_thread(runs.start, body.scenario, body.rate, body.duration_s, body.anomaly_kind)
    except RuntimeError as exc:
        raise ActionError(409, f"load generator: {exc}") from None
    if runs.run is not None:
        runs.run["published_before"] = _published(collector)
    return answer


@router.post("/stop")
async def stop(runs: LoadRunsDep) -> dict[str, Any]:
    return await asyncio.to_thread(runs.stop)
