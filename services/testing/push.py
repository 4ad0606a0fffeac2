"""A push endpoint for tests: an HTTP server on a free 127.0.0.1 port that records what Pub/Sub pushes to it.

Pub/Sub push delivers a POST per message and counts 102, 200, 201, 202 and 204 as an acknowledgement
(services/pubsub/push.py's OK_STATUS); anything else, or no answer, is retried with backoff. ``answer``
decides the status of each request, so a test can fail deliveries on purpose or hold them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class PushRequest:
    headers: dict[str, str]
    body: bytes

    @property
    def wrapped(self) -> bool:
        """True for the JSON envelope ({"message": ..., "subscription": ...}); False for an unwrapped payload."""
        content_type = next((v for k, v in self.headers.items() if k.lower() == "content-type"), "")
        return content_type.split(";")[0].strip() == "application/json"

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def message_id(self) -> str:
        return str(self.json()["message"]["messageId"])


def acknowledge(_: PushRequest) -> int:
    return 204


class PushReceiver:
    """Records every request in ``requests`` (arrival order) and answers with ``answer(request)``.

    >>> with PushReceiver() as receiver:
    ...     subscriber.create_subscription(request={..., "push_config": {"push_endpoint": receiver.url}})
    """

    def __init__(self, answer: Callable[[PushRequest], int] = acknowledge, *, path: str = "/push") -> None:
        self.requests: list[PushRequest] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the emulator's client expects

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                request = PushRequest(dict(self.headers), self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.lock:
                    receiver.requests.append(request)
                status = answer(request)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(ThreadingHTTPServer):
            request_queue_size = 512
            daemon_threads = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}{path}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def count(self, message_id: str) -> int:
        """How many deliveries of one message (wrapped requests only) arrived so far."""
        with self.lock:
            return sum(1 for r in self.requests if r.wrapped and r.message_id == message_id)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> PushReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
