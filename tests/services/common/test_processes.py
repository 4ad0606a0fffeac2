"""The shared process helpers (services/common/processes.py) on real processes and a real HTTP server."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from services.common.processes import free_port, stop_group, wait_for, wait_healthy

pytestmark = pytest.mark.local_only("the test kit's own helpers")
# A child that ignores SIGTERM and starts a grandchild in its own process group, then reports ready.
STUBBORN = (
    "import signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(600)\n"
)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_wait_for_returns_the_value_and_times_out_naming_what() -> None:
    calls = iter([None, 0, "ready"])
    assert wait_for(lambda: next(calls), 5, "a value", interval=0.01) == "ready"
    with pytest.raises(TimeoutError, match="waiting for nothing"):
        wait_for(lambda: None, 0.05, "nothing", interval=0.01)


def test_stop_group_escalates_to_sigkill_and_reaches_the_whole_group() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stdout is not None
    grandchild = int(process.stdout.readline())
    assert stop_group(process, timeout=0.5) == -signal.SIGKILL  # SIGTERM ignored, then killed
    wait_for(lambda: not alive(grandchild), 10, "the grandchild to be gone", interval=0.05)


def test_stop_group_can_kill_first() -> None:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    assert stop_group(process, first=signal.SIGKILL) == -signal.SIGKILL


@pytest.fixture
def health_server() -> Iterator[str]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 503)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_wait_healthy_on_a_server(health_server: str) -> None:
    wait_healthy(f"{health_server}/health", 5)
    with pytest.raises(TimeoutError, match="not-ready to answer 200"):
        wait_healthy(f"{health_server}/busy", 0.3, what="not-ready")


def test_wait_healthy_stops_when_the_server_exits() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(RuntimeError, match="exited with 3"):
        wait_healthy(f"http://127.0.0.1:{free_port()}/health", 30, process=process, what="a server")
