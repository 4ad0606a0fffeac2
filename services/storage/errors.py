"""Errors in the JSON API's shape, so Google's client raises what it raises against Cloud Storage.

The body is ``{"error": {"code": N, "message": M, "errors": [{"domain": "global", "reason": R,
"message": M}]}}`` (cloud.google.com/storage/docs/json_api/v1/status-codes); google-api-core maps the
status to ``BadRequest`` (400), ``NotFound`` (404), ``Conflict`` (409), ``PreconditionFailed`` (412).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failed request: HTTP ``code``, the API's ``reason`` and a message naming what is wrong."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "code": self.code,
                "message": self.message,
                "errors": [{"domain": "global", "reason": self.reason, "message": self.message}],
            }
        }


def invalid(message: str) -> ApiError:
    return ApiError(400, "invalid", message)


def required(message: str) -> ApiError:
    return ApiError(400, "required", message)


def no_bucket(bucket: str) -> ApiError:
    return ApiError(404, "notFound", "The specified bucket does not exist.")


def no_object(bucket: str, name: str, generation: int | None = None) -> ApiError:
    suffix = f"/{generation}" if generation is not None else ""
    return ApiError(404, "notFound", f"No such object: {bucket}/{name}{suffix}")


def conflict(message: str) -> ApiError:
    return ApiError(409, "conflict", message)


def precondition_failed() -> ApiError:
    return ApiError(412, "conditionNotMet", "At least one of the pre-conditions you specified did not hold.")


def not_modified() -> ApiError:
    """304, sent without a body (the client raises ``NotModified``)."""
    return ApiError(304, "notModified", "Not Modified")


def disk_full(exc: OSError) -> ApiError:
    """A write the disk refused: 503 ``backendError``, Cloud Storage's retryable server error (google-cloud-storage
    retries it where the call is idempotent), naming the cause. A full disk itself is local-only."""
    from services.common.diskfull import refusal

    return ApiError(503, "backendError", refusal("hyp storage", exc))
