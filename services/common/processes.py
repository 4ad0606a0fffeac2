"""Small helpers for starting, waiting on and stopping local processes (tests, benchmarks, labs)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, all threads) a running process has used so far, from /proc/<pid>/stat;
    OSError when there is no such process (benchmarks' CPU shares are deltas of this)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def stop_group(process: subprocess.Popen[Any], timeout: float = 15.0, *, first: int = signal.SIGTERM) -> int | None:
    """Send ``first`` (SIGTERM; SIGINT or SIGKILL where a test wants that), then SIGKILL after ``timeout``;
    return the exit code.

    A process started with ``start_new_session=True`` leads its own group, and the whole group is
    signalled (servers' workers, Beam's threads); any other process is signalled alone.
    """

    def send(sig: int) -> None:
        try:
            if os.getpgid(process.pid) == process.pid:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)
        except ProcessLookupError:
            pass

    if process.poll() is None:
        send(first)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            process.wait(timeout=5)
    return process.returncode


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.25) -> T:
    """Poll ``predicate`` until it returns something truthy; TimeoutError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def wait_healthy(url: str, timeout: float, *, process: subprocess.Popen[Any] | None = None, what: str = "") -> None:
    """Poll ``GET url`` until it answers 200; RuntimeError as soon as ``process`` (the server) exits,
    TimeoutError after ``timeout``."""
    import httpx

    def healthy() -> bool:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what or url}: the process exited with {process.returncode} before answering")
        try:
            return httpx.get(url, timeout=2.0, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout, f"{what or url} to answer 200")
