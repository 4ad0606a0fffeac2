"""The endpoint's response bodies: predictions laid out without re-encoding, Google's and MLflow's errors."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import Response

JSON = "application/json"
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    413: "INVALID_ARGUMENT",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
MLFLOW_CODE = {400: "BAD_REQUEST", 413: "BAD_REQUEST", 503: "TEMPORARILY_UNAVAILABLE"}


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def tail(rest: dict[str, Any] | None = None) -> bytes:
    """What follows the predictions in ``{"predictions": [...], **rest}``, encoded."""
    return b"," + orjson.dumps(rest)[1:] if rest else b"}"


def with_predictions(predictions: bytes, rest: bytes = b"}") -> bytes:
    """``{"predictions": <already encoded>`` + ``rest`` (a :func:`tail`), the predictions never decoded."""
    return b'{"predictions":' + predictions + rest


def raw_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    """Headers as ASGI sends them (lower-case latin-1 names and values)."""
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class JsonBytes(Response):
    """An already-encoded JSON body with its headers laid out once (Starlette's Response rebuilds
    and re-checks the header list on every construction: a measurable share of a tiny request)."""

    media_type = JSON

    def __init__(self, body: bytes, status_code: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        """``headers``: more headers, as :func:`raw_headers` lays them out."""
        self.status_code = status_code
        self.body = body
        self.background = None
        raw = [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]
        if headers:
            raw += headers
        self.raw_headers = raw


def google_error(status: int, message: str, code: str | None = None) -> Response:
    """Google APIs' error body, which the Vertex SDK turns into google.api_core exceptions; ``code`` is the
    canonical code (``FAILED_PRECONDITION``), else the one of the HTTP status."""
    body = {"error": {"code": status, "message": message, "status": code or GOOGLE_STATUS.get(status, "UNKNOWN")}}
    return JsonBytes(dumps(body), status)


def mlflow_error(status: int, message: str, code: str | None = None) -> Response:
    """MLflow scoring server's error body (its own codes: ``code`` is not one of them)."""
    code = MLFLOW_CODE.get(status, "INTERNAL_ERROR")
    return JsonBytes(dumps({"error_code": code, "message": message}), status)
