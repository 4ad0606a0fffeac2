"""``hyp`` commands as real subprocesses, for integration tests: :func:`run_hyp` runs one to completion,
:class:`HypProcess` keeps a server running on a 127.0.0.1 port.

A server runs in its own process group (so stopping it stops its workers too), writes its output to a log
file (appended across restarts), and is healthy when ``GET <health>`` answers 200. For the Pub/Sub
emulator, which picks its own ports, see :func:`services.testing.pubsub.start_emulator`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.common.processes import free_port, stop_group, wait_healthy

# The folder that holds the ``services`` package: the repository in a checkout, site-packages when installed.
REPO = Path(__file__).resolve().parents[2]


def run_hyp(
    *args: str, timeout: float = 300.0, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``hyp <args>`` to completion (bounded by ``timeout``), output captured as text; the caller checks the code."""
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=REPO,
        env=dict(env) if env is not None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class HypProcess:
    """``hyp <command> --port PORT <args>``; restartable (``stop()`` then ``start()`` again, same port).

    >>> with HypProcess("processor", log_path=tmp / "processor.log", env=env).start() as processor:
    ...     httpx.post(processor.url, ...)
    """

    def __init__(
        self,
        command: str,
        *args: str,
        log_path: Path,
        port: int | None = None,
        env: Mapping[str, str] | None = None,
        health: str = "/health",
    ) -> None:
        self.command, self.args, self.log_path, self.health = command, args, log_path, health
        self.port = port if port is not None else free_port()
        self.env = dict(env) if env is not None else None  # None: this process's environment
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0, *, wait: bool = True) -> HypProcess:
        """Start it; with ``wait``, poll (bounded) until it is healthy."""
        argv = [sys.executable, "-m", "services.cli", *self.command.split(), "--port", str(self.port), *self.args]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        if wait:
            try:
                self.wait_healthy(timeout)
            except BaseException:
                self.stop()
                raise
        return self

    def wait_healthy(self, timeout: float = 120.0) -> None:
        try:
            wait_healthy(self.url + self.health, timeout, process=self.process, what=f"hyp {self.command}")
        except (RuntimeError, TimeoutError) as exc:
            raise type(exc)(f"{exc}:\n{self.log()[-3000:]}") from None

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM to its process group, SIGKILL after ``timeout``; the exit code (None if never started)."""
        return stop_group(self.process, timeout) if self.process is not None else None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> HypProcess:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
