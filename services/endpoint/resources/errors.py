"""Google's error model for the resource routes: the HTTP body and the ``google.rpc.Status`` of a failed
operation, both naming the canonical code (the Vertex SDK maps either to a google.api_core exception)."""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response

from services.endpoint.responses import google_error

# canonical code -> (HTTP status, google.rpc.Code number)
CODES = {
    "CANCELLED": (499, 1),
    "INVALID_ARGUMENT": (400, 3),
    "FAILED_PRECONDITION": (400, 9),
    "NOT_FOUND": (404, 5),
    "ALREADY_EXISTS": (409, 6),
    "INTERNAL": (500, 13),
    "UNAVAILABLE": (503, 14),
}


class ApiError(Exception):
    """A request Vertex would refuse: ``status`` is the canonical code, the message names what is wrong."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        if status not in CODES:
            raise ValueError(f"unknown canonical code {status}")
        self.status = status
        self.message = message

    @property
    def http_status(self) -> int:
        return CODES[self.status][0]

    def rpc_status(self) -> dict[str, Any]:
        """The ``error`` of a failed Operation."""
        return {"code": CODES[self.status][1], "message": self.message}

    def response(self) -> Response:
        return google_error(self.http_status, self.message, self.status)


def not_found(kind: str, name: str) -> ApiError:
    return ApiError("NOT_FOUND", f"{kind} `{name}` not found.")


def invalid(message: str) -> ApiError:
    return ApiError("INVALID_ARGUMENT", message)
