"""hyp-local's emulators as subprocesses of the ``hyp`` command, on free 127.0.0.1 ports.

``hyp`` is installed apart from the tests (``uv tool install``, pipx, a container's venv), so nothing of
hyp-local is imported into the test process: this module only runs the command and waits (bounded) until
the emulator answers.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from hyp_local_pytest import clients

ENV_HYP = "HYP_LOCAL_HYP"  # the hyp command: a path, or a command line (``uv tool run --from ... hyp``)
EMULATOR_VARIABLES = ("PUBSUB_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")
START_TIMEOUT_S = 60.0
T = TypeVar("T")


class HypNotFound(RuntimeError):
    """No ``hyp`` command: neither ``HYP_LOCAL_HYP`` nor ``--hyp-local-hyp`` nor ``PATH`` names one."""


def find_hyp(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> list[str]:
    """The ``hyp`` command line: ``explicit`` (``--hyp-local-hyp``), else ``$HYP_LOCAL_HYP``, else ``hyp`` on PATH."""
    environ = os.environ if environ is None else environ
    given = explicit or environ.get(ENV_HYP)
    if given:
        return shlex.split(given)
    found = shutil.which("hyp", path=environ.get("PATH"))
    if found is None:
        raise HypNotFound(
            "no `hyp` command: install hyp-local apart (`uv tool install hyp-local[warehouse,serve]` from its wheel) "
            f"or point {ENV_HYP} (or --hyp-local-hyp) at it"
        )
    return [found]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.02) -> T:
    """Call ``predicate`` until it returns something other than None (or raises), at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not ready after {timeout:.0f} s")
        time.sleep(interval)


@dataclass
class _Process:
    """A ``hyp`` subprocess in its own process group, its output in ``log_path``."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def answers(self, url: str, expect: str | None = None) -> bool | None:
        """True once GET ``url`` answers 200 (and ``expect`` when given); raises if the process exited."""
        if self.process.poll() is not None:
            raise RuntimeError(f"hyp {self.name} exited with {self.process.returncode}:\n{self.log()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                body = response.read().decode(errors="replace")
        except (urllib.error.URLError, OSError):
            return None
        return True if expect is None or body.strip() == expect else None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM to its process group, SIGKILL after ``timeout``; the exit code."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout)
        return self.process.returncode


@dataclass
class PubSubEmulator:
    """``hyp pubsub`` running: ``host`` is what PUBSUB_EMULATOR_HOST would be (``127.0.0.1:PORT``)."""

    host: str
    rest_url: str  # health (GET / answers "Ok."), REST, /metrics
    project: str
    proc: _Process = field(repr=False)

    def topic_path(self, topic: str) -> str:
        return f"projects/{self.project}/topics/{topic}"

    def subscription_path(self, subscription: str) -> str:
        return f"projects/{self.project}/subscriptions/{subscription}"

    def publisher_client(self, **kwargs: Any) -> Any:
        return clients.publisher(self.host, **kwargs)

    def subscriber_client(self, **kwargs: Any) -> Any:
        return clients.subscriber(self.host, **kwargs)

    def env(self) -> dict[str, str]:
        """The variables Google's clients (and gcloud's env-init) use for this emulator."""
        return {"PUBSUB_EMULATOR_HOST": self.host, "PUBSUB_PROJECT_ID": self.project}

    def stop(self) -> int | None:
        return self.proc.stop()


@dataclass
class HttpEmulator:
    """``hyp bigquery`` or ``hyp storage`` running at ``url`` (``http://127.0.0.1:PORT``)."""

    name: str
    url: str
    project: str
    proc: _Process = field(repr=False)

    def client(self) -> Any:
        """Google's client for this service (google-cloud-bigquery or google-cloud-storage)."""
        return (
            clients.bigquery(self.url, self.project)
            if self.name == "bigquery"
            else clients.storage(self.url, self.project)
        )

    def env(self) -> dict[str, str]:
        return {f"{self.name.upper()}_EMULATOR_HOST": self.url}

    def stop(self) -> int | None:
        return self.proc.stop()


class HypLocal:
    """The ``hyp`` command and a work folder: starts emulators on free ports.

    >>> hyp = HypLocal(find_hyp(), Path("/tmp/work"), project="test-project")
    >>> pubsub = hyp.start_pubsub()
    >>> pubsub.publisher_client().create_topic(name=pubsub.topic_path("orders"))
    >>> pubsub.stop()
    """

    def __init__(
        self, command: Sequence[str], workdir: Path, *, project: str = "test-project", timeout: float = START_TIMEOUT_S
    ) -> None:
        self.command, self.workdir, self.project, self.timeout = list(command), workdir, project, timeout

    def _spawn(self, name: str, args: Sequence[str], env: Mapping[str, str] | None = None) -> _Process:
        self.workdir.mkdir(parents=True, exist_ok=True)
        log_path = self.workdir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        child_env = {k: v for k, v in os.environ.items() if k not in EMULATOR_VARIABLES}
        child_env.update({"HYP_PROJECT": self.project, "PYTHONUNBUFFERED": "1", **(env or {})})
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [*self.command, name, *args],
                cwd=self.workdir,
                env=child_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return _Process(name, process, log_path)

    def _ready(self, proc: _Process, url: str, expect: str | None) -> None:
        try:
            wait_for(lambda: proc.answers(url, expect), self.timeout, f"hyp {proc.name} at {url}")
        except TimeoutError as exc:
            proc.stop()
            raise TimeoutError(f"{exc}:\n{proc.log()[-3000:]}") from None
        except BaseException:
            proc.stop()
            raise

    def start_pubsub(self, *, data_dir: Path | None = None) -> PubSubEmulator:
        """``hyp pubsub`` with no topics (``--topology none``), messages in memory unless ``data_dir``."""
        port, rest = free_port(), free_port()
        args = ["--host", "127.0.0.1", "--port", str(port), "--rest-port", str(rest), "--topology", "none"]
        if data_dir is not None:
            args += ["--data-dir", str(data_dir)]
        proc = self._spawn("pubsub", args)
        self._ready(proc, f"http://127.0.0.1:{rest}/", "Ok.")
        return PubSubEmulator(f"127.0.0.1:{port}", f"http://127.0.0.1:{rest}", self.project, proc)

    def start_bigquery(self) -> HttpEmulator:
        """``hyp bigquery`` over a warehouse folder of its own."""
        return self._start_http("bigquery", ["--warehouse-dir", str(self._folder("warehouse"))])

    def start_storage(self) -> HttpEmulator:
        """``hyp storage`` over a bucket folder of its own."""
        return self._start_http("storage", ["--data-dir", str(self._folder("storage"))])

    def _folder(self, kind: str) -> Path:
        path = self.workdir / f"{kind}-{uuid.uuid4().hex[:6]}"
        path.mkdir(parents=True)
        return path

    def _start_http(self, name: str, args: list[str]) -> HttpEmulator:
        port = free_port()
        proc = self._spawn(name, ["--host", "127.0.0.1", "--port", str(port), *args])
        url = f"http://127.0.0.1:{port}"
        self._ready(proc, f"{url}/health", None)
        return HttpEmulator(name, url, self.project, proc)
