"""Optional Slack-compatible webhook (``{"text": ...}``) on promotion and on failure; never fails a run."""

from __future__ import annotations

import logging
from typing import Any

import httpx

log = logging.getLogger(__name__)


def message(record: dict[str, Any]) -> str:
    if record.get("decision") == "promote" and record.get("status") == "succeeded":
        head = f":rocket: hyp orchestrator run {record['id']} promoted version {record.get('promoted_version')}"
    else:
        head = f":x: hyp orchestrator run {record['id']} {record.get('status')}"
    return f"{head}: {record.get('reason')} (trigger: {(record.get('trigger') or {}).get('kind')})"


def notify(url: str | None, record: dict[str, Any], *, timeout: float = 5.0) -> bool:
    """POST the run's summary; return whether the hook accepted it (False when no hook is set)."""
    if not url:
        return False
    try:
        response = httpx.post(url, json={"text": message(record), "run": record}, timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("webhook failed: %s", exc)
        return False
    return True
