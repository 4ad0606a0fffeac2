"""An ASGI app served by uvicorn on a free 127.0.0.1 port in a thread, for tests that need a real HTTP server
in-process (a real socket, the app's lifespan run) without starting a process."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import Any

from services.common.processes import wait_for


@contextlib.contextmanager
def serve_in_thread(app: Any, timeout_s: float = 20.0) -> Iterator[str]:
    """Run ``app`` under uvicorn in a daemon thread; yield its base URL; stop it (bounded) on exit."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))  # uvicorn serves this very socket: no gap in which another process takes the port
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()

    def started() -> bool:
        if not thread.is_alive():
            raise RuntimeError("uvicorn stopped before it started serving")
        return bool(server.started)

    try:
        wait_for(started, timeout_s, "uvicorn to start", interval=0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=timeout_s)
        sock.close()
