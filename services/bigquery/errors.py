"""BigQuery's JSON error shape, so Google's client raises the exception class it raises against GCP.

``{"error": {"code": 404, "message": "...", "errors": [{"message", "domain", "reason"}], "status"}}``;
the client picks NotFound / Conflict / BadRequest ... from the HTTP status and shows the message.
"""

from __future__ import annotations

from typing import Any

STATUS = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    413: "INVALID_ARGUMENT",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


class BigQueryError(Exception):
    """An API error: HTTP ``code``, BigQuery ``reason`` (notFound, duplicate, invalid ...) and message."""

    def __init__(self, code: int, reason: str, message: str, location: str | None = None) -> None:
        super().__init__(message)
        self.code, self.reason, self.message, self.location = code, reason, message, location

    def body(self) -> dict[str, Any]:
        detail: dict[str, Any] = {"message": self.message, "domain": "global", "reason": self.reason}
        if self.location:
            detail["location"] = self.location
            detail["locationType"] = "other"
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [detail],
                "status": STATUS.get(self.code, "UNKNOWN"),
            }
        }


def not_found(what: str) -> BigQueryError:
    return BigQueryError(404, "notFound", f"Not found: {what}")


def duplicate(what: str) -> BigQueryError:
    return BigQueryError(409, "duplicate", f"Already Exists: {what}")


def invalid(message: str, location: str | None = None) -> BigQueryError:
    return BigQueryError(400, "invalid", message, location)


def from_exception(exc: BaseException) -> BigQueryError:
    """The API error for a failure: itself if it is one; a write the disk refused is 503 ``backendError`` (BigQuery's
    retryable server error: google-cloud-bigquery retries it), anything else 500 ``internalError``."""
    from services.common.diskfull import disk_full, refusal

    if isinstance(exc, BigQueryError):
        return exc
    full = disk_full(exc)
    if full is not None:
        return BigQueryError(503, "backendError", refusal("hyp bigquery", full))
    return BigQueryError(500, "internalError", str(exc))
