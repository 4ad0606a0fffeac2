"""The stack as local processes for tests, no Docker: `hyp up --detach` on a private home and a free port offset.

The same addresses and clients as :class:`services.testing.stack.HypStack` (the compose stack), so a test can
use either; plus what only local processes allow: :meth:`LocalHypStack.kill` a service and
:meth:`LocalHypStack.wait_restarted` for `hyp up`'s supervision to bring it back.

>>> with LocalHypStack(["pubsub", "bigquery", "storage"]) as stack:
...     stack.bigquery_client().query("SELECT 1").result()
...     stack.publisher().publish(stack.topic_path("hyp-pubsub-topic"), b"{}").result()
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.common.processes import wait_for
from services.stack import definition as d
from services.stack import processes as p
from services.stack import supervise as sup
from services.stack.healthcheck import probe
from services.stack.up import port_in_use, select
from services.testing.addresses import StackAddresses
from services.testing.hyp import run_hyp
from services.testing.lifecycle import Started

OFFSETS = range(20000, 45000, 977)  # candidates: every moved port stays below 65536


def free_offset(services: list[str]) -> int:
    """A port offset under which every port of ``services`` (and what they depend on) is free now."""
    selected = select(services, [])
    ports = [port for s in selected for port in s.ports]
    if any(d.is_detector(s.name) for s in selected):  # the workers of HYP_UP_DETECTOR_WORKERS, whatever their number
        ports += d.DETECTOR_WORKER_PORTS
    for offset in OFFSETS:
        if not any(port_in_use(port + offset) for port in ports):
            return offset
    raise RuntimeError("no port offset leaves the stack's ports free")


class LocalHypStack(StackAddresses, Started):
    """``hyp up --detach --services ...`` in ``home`` (a temporary folder, removed at the end, when not given),
    its ports moved by a free offset (or ``port_offset``, when given); ``hyp down`` at the end. ``env``: more
    variables for the stack."""

    def __init__(
        self,
        services: list[str],
        *,
        home: Path | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 300.0,
        port_offset: int | None = None,
    ) -> None:
        unknown = sorted(set(services) - set(d.SERVICE_NAMES))
        if unknown:
            raise ValueError(f"unknown service(s) {', '.join(unknown)} (services: {', '.join(d.SERVICE_NAMES)})")
        self.services, self.timeout = list(services), timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if home is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="hyp-local-stack-")
            home = Path(self._tmp.name)
        self.home = home
        self.env = {**os.environ, **(env or {})}
        self.project = self.env.get("HYP_PROJECT", d.TUNABLES["HYP_PROJECT"])
        self.offset = 0
        self.port_offset = port_offset
        self.output = ""  # what `hyp up` printed

    # lifecycle
    def start(self) -> LocalHypStack:
        self.offset = free_offset(self.services) if self.port_offset is None else self.port_offset
        started = run_hyp(
            *("up", "--detach", "--services", ",".join(self.services)),
            *("--home", str(self.home), "--port-offset", str(self.offset)),
            env=self.env,
            timeout=self.timeout,
        )
        self.output = started.stdout + started.stderr
        if started.returncode != 0:
            raise RuntimeError(f"hyp up failed ({started.returncode}):\n{self.output[-3000:]}")
        return self

    def stop(self) -> None:
        try:
            run_hyp("down", "--home", str(self.home), env=self.env, timeout=120)
        finally:
            if self._tmp is not None:
                self._tmp.cleanup()

    # addresses
    def port(self, service: str, port: int) -> int:
        if port not in d.service(service).ports:
            raise RuntimeError(f"{service}:{port} is not one of its ports")
        return port + self.offset

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    # faults and supervision
    def pid(self, service: str) -> int:
        recorded = p.recorded(self.run_dir).get(service)
        if recorded is None or not p.pid_alive(*recorded):
            raise RuntimeError(f"{service} is not running in {self.run_dir}")
        return recorded[0]

    def kill(self, service: str, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` (SIGKILL: a crash) to the service's process group; its pid."""
        pid = self.pid(service)
        os.killpg(pid, sig)
        return pid

    def supervision(self) -> dict[str, dict[str, Any]]:
        """Restarts, last exit and state per service, as `hyp status` shows them."""
        return sup.read(self.run_dir)

    def wait_restarted(self, service: str, restarts: int = 1, timeout: float = 120.0) -> int:
        """Wait (bounded) until `hyp up` has restarted ``service`` ``restarts`` times and it is healthy; its pid."""
        health = d.service(service).health

        def back() -> int | None:
            state = self.supervision().get(service, {})
            if state.get("state") == "failed":
                raise RuntimeError(f"{service} was left down: {state.get('last_exit')}")
            if state.get("restarts", 0) < restarts or state.get("state") != "running":
                return None
            if health is not None and probe(health.url(port_offset=self.offset), health.expect, timeout=1.0):
                return None  # a reason: not healthy yet
            recorded = p.recorded(self.run_dir).get(service)
            return recorded[0] if recorded is not None and p.pid_alive(*recorded) else None

        return wait_for(back, timeout, f"{service} to be restarted {restarts} time(s) and healthy", interval=0.2)
