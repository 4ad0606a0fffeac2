"""API errors with the status codes the real Pub/Sub service returns."""

from __future__ import annotations

from typing import Any

import grpc
from google.rpc import error_details_pb2

# gRPC status -> (HTTP status, google.rpc status name) as Google's REST gateway maps them.
_HTTP: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
}


class ApiError(Exception):
    """An error the caller caused (or a state it asked about); carries its gRPC status code."""

    def __init__(self, code: grpc.StatusCode, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []  # google.rpc detail messages (ErrorInfo), sent as grpc-status-details-bin

    @property
    def http_status(self) -> int:
        return _HTTP.get(self.code, 500)

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.http_status, "message": self.message, "status": self.code.name}
        if self.details:
            from google.protobuf import json_format

            error["details"] = [
                {"@type": f"type.googleapis.com/{d.DESCRIPTOR.full_name}", **json_format.MessageToDict(d)}
                for d in self.details
            ]
        return {"error": error}


def invalid(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.NOT_FOUND, message)


def already_exists(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.ALREADY_EXISTS, message)


def failed_precondition(message: str) -> ApiError:
    return ApiError(grpc.StatusCode.FAILED_PRECONDITION, message)


# Exactly-once delivery: the real service fails an Acknowledge or ModifyAckDeadline that names an
# expired, superseded, already used or malformed ack id with INVALID_ARGUMENT and an ErrorInfo whose
# metadata maps each failed ack id to its reason; client libraries read it per ack id.
EXACTLY_ONCE_REASON = "EXACTLY_ONCE_ACKID_FAILURE"
INVALID_ACK_ID = "PERMANENT_FAILURE_INVALID_ACK_ID"
INVALID_ACK_IDS_MESSAGE = (
    "Some acknowledgement ids in the request were invalid. This could be because the acknowledgement ids "
    "have expired or the acknowledgement ids were malformed."
)
# gRPC clients refuse trailing metadata past 8 KiB by default: list failed ack ids up to this size.
_MAX_DETAIL_BYTES = 6_000


def invalid_ack_ids(ack_ids: list[str]) -> ApiError:
    """INVALID_ARGUMENT with the ErrorInfo the real service sends for failed exactly-once acks/modacks."""
    info = error_details_pb2.ErrorInfo(reason=EXACTLY_ONCE_REASON, domain="pubsub.googleapis.com")
    size = 0
    for ack_id in ack_ids:
        size += len(ack_id) + len(INVALID_ACK_ID) + 8
        if size > _MAX_DETAIL_BYTES:
            break  # the rest still fail; clients report them without the per-id reason
        info.metadata[ack_id] = INVALID_ACK_ID
    return ApiError(grpc.StatusCode.INVALID_ARGUMENT, INVALID_ACK_IDS_MESSAGE, [info])


class TopologyError(ValueError):
    """The topology file is unreadable or names something invalid (here, so `hyp pubsub` can catch it
    without importing the topology loader)."""
