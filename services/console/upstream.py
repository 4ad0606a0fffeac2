"""Calls the console's actions make to the stack's public APIs (the emulator's REST API, BigQuery's,
MLflow's, the orchestrator's), and the one error they raise.

An action never reaches a service through a side door: every state change is an HTTP call a user's
code could make. A failed call becomes :class:`ActionError` with the service's own reason (Google's
``{"error": {"message"}}``, MLflow's ``{"message"}``, FastAPI's ``{"detail"}``), which the app answers
as ``{"error": "..."}`` with the service's status, so the page can show why.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import httpx

ACTION_TIMEOUT_S = 15.0


class ActionError(Exception):
    """A refused or failed action: ``status`` for the HTTP answer, ``message`` for the page (one line)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def client() -> httpx.AsyncClient:
    """The client the actions share (one per app, closed by its lifespan); never a proxy."""
    return httpx.AsyncClient(timeout=ACTION_TIMEOUT_S, trust_env=False)


async def call(
    http: httpx.AsyncClient, what: str, method: str, url: str, *, json: Any = None, params: Any = None
) -> Any:
    """``method url`` and its JSON answer ({} when empty); ActionError naming ``what`` on any failure."""
    try:
        response = await http.request(method, url, json=json, params=params)
    except httpx.HTTPError as exc:
        raise ActionError(502, f"{what}: {type(exc).__name__}: {exc}".rstrip(": ")) from None
    if not response.is_success:
        status = response.status_code if 400 <= response.status_code < 500 else 502
        raise ActionError(status, f"{what}: {reason(response)}")
    if not response.content:
        return {}
    try:
        return response.json()
    except ValueError:
        return {"text": response.text}


def reason(response: httpx.Response) -> str:
    """The one-line reason a service gave for a failed call, in whichever shape it uses."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().splitlines()
        return f"HTTP {response.status_code}" + (f": {text[0][:300]}" if text else "")
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
        for key in ("message", "detail", "error"):
            if isinstance(body.get(key), str):
                return str(body[key])
        if body.get("detail") is not None:
            return str(body["detail"])[:300]
    return f"HTTP {response.status_code}"


async def view(read: Awaitable[dict[str, Any]], empty: dict[str, Any]) -> dict[str, Any]:
    """A read-only view for the page: ``read``'s answer, or ``empty`` with ``unavailable`` (the reason) when the
    service cannot be reached or fails (502), so a stopped service shows as a reason, not an HTTP error."""
    try:
        return await read
    except ActionError as exc:
        if exc.status != 502:
            raise
        return {**empty, "unavailable": exc.message}
