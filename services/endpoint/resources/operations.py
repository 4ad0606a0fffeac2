"""Long-running operations as Vertex returns them (``google.longrunning.Operation`` in JSON).

Every change here completes before its request answers, so each operation comes back ``done``
(Vertex allows that); the SDK's ``operation.result()`` then needs no poll, and ``GET`` on the
operation's name answers the same body for clients that poll anyway. Finished operations are kept
(the last :data:`KEEP`) so a poll after the answer still finds them.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from typing import Any

from services.common import names
from services.endpoint.resources.errors import ApiError

TYPE = "type.googleapis.com/google.cloud.aiplatform.v1."
KEEP = 1000


def rfc3339(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}Z"


def new_id() -> str:
    """A numeric id as Vertex gives endpoints, deployed models and operations (never 0-led)."""
    return str(secrets.randbelow(9 * 10**17) + 10**17)


class Operations:
    """The operations of one server, by name."""

    def __init__(self) -> None:
        self._done: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def finish(
        self,
        project: str,
        location: str,
        metadata_type: str,
        *,
        response_type: str | None = None,
        response: dict[str, Any] | None = None,
        error: ApiError | None = None,
    ) -> dict[str, Any]:
        """A done operation with ``response`` (typed ``response_type``) or ``error``; kept for GET."""
        now = rfc3339(time.time())
        name = f"{names.location(project, location)}/operations/{new_id()}"
        op: dict[str, Any] = {
            "name": name,
            "metadata": {"@type": TYPE + metadata_type, "genericMetadata": {"createTime": now, "updateTime": now}},
            "done": True,
        }
        if error is not None:
            op["error"] = error.rpc_status()
        else:
            op["response"] = {"@type": TYPE + (response_type or "Empty"), **(response or {})}
            if response_type is None:
                op["response"]["@type"] = "type.googleapis.com/google.protobuf.Empty"
        with self._lock:
            self._done[name] = op
            while len(self._done) > KEEP:
                self._done.popitem(last=False)
        return op

    def get(self, name: str) -> dict[str, Any]:
        with self._lock:
            op = self._done.get(name)
        if op is None:
            raise ApiError("NOT_FOUND", f"Operation `{name}` not found.")
        return op
