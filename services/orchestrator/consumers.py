"""Which model version the consumers report: the endpoint (Vertex Endpoint resource) and the detector (Prometheus).

A consumer whose address is not configured is skipped, and the run record says so.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import httpx

_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][\w:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def endpoint_version(base_url: str, endpoint_name: str, *, timeout: float = 5.0) -> str | None:
    """``modelVersionId`` of the first deployed model of the Endpoint resource (Vertex REST GET)."""
    response = httpx.get(f"{base_url.rstrip('/')}/v1/{endpoint_name}", timeout=timeout)
    response.raise_for_status()
    deployed = response.json().get("deployedModels") or []
    version = deployed[0].get("modelVersionId") if deployed else None
    return str(version) if version not in (None, "") else None


def detector_version(metrics_url: str, *, timeout: float = 5.0) -> str | None:
    """The model version a Prometheus text page reports.

    Accepted shapes: an info-style gauge with a ``model_version`` label (or a ``*model_version*`` gauge
    with a ``version`` label, as the endpoint's) and a non-zero value, or a gauge whose name ends in
    ``model_version`` and whose value is the version number.
    """
    response = httpx.get(metrics_url, timeout=timeout)
    response.raise_for_status()
    return version_from_metrics(response.text)


def version_from_metrics(text: str) -> str | None:
    by_label: str | None = None
    by_value: str | None = None
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or "model_version" not in match["name"] + (match["labels"] or ""):
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        labels = dict(_LABEL.findall(match["labels"] or ""))
        label = labels.get("model_version") or (labels.get("version") if "model_version" in match["name"] else None)
        if label and value != 0:
            by_label = label
        elif match["name"].endswith("model_version") and value > 0 and value.is_integer():
            by_value = str(int(value))
    return by_label or by_value


def wait_for_version(
    probe: Callable[[], str | None], want: str, *, timeout_s: float, interval_s: float = 0.5
) -> dict[str, Any]:
    """Poll ``probe`` until it reports ``want`` or ``timeout_s`` passes; return what was seen."""
    start = time.monotonic()
    seen: str | None = None
    error: str | None = None
    while True:
        try:
            seen = probe()
            error = None
        except (httpx.HTTPError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        elapsed = time.monotonic() - start
        if seen == want:
            return {"status": "confirmed", "version": seen, "seconds": round(elapsed, 3)}
        if elapsed >= timeout_s:
            return {"status": "timeout", "version": seen, "seconds": round(elapsed, 3), "error": error}
        time.sleep(interval_s)
