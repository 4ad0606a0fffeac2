"""A deployed custom container kept serving after its deploy: checked, restarted when it dies or hangs, refused
while down, given up on when it keeps failing.

Vertex checks a running container's health route and restarts a container that stops (Kubernetes
underneath: a crashing one is restarted with a growing delay; a liveness probe that fails ``failureThreshold``
times in a row, 3 by default, restarts it). Here a watcher thread per deployment does the same: every
``interval_s`` it asks whether the server still runs and what its health route answers within
``probe_timeout_s``.

* A server that exited is started again (same spec, same ``AIP_*`` variables, a new port).
* One whose health route does not answer at all (alive but hung: the request times out, or the connection is
  refused) is taken out of service at once and, after ``liveness_failures`` such checks in a row, stopped and
  started again.
* One that answers anything but 200 is taken out of service until it answers 200 again; it is not restarted
  (a readiness failure: the server is alive and says it is not ready).

Restarts wait :data:`FIRST_DELAY_S`, doubling up to :data:`MAX_DELAY_S`, for each restart of a streak (a
streak ends when the server has answered 200 for ``stable_checks`` checks in a row). A streak that needs
more than ``max_restarts`` restarts (the restarts fail, or the restarted server dies or hangs again) is given
up: the server is stopped, the watch ends and the deployment is reported failed (local-only: Kubernetes
would keep restarting it at a 5-minute pace). Meanwhile ``:predict`` on that deployment is answered at once
with ``UNAVAILABLE`` naming why (never a request left hanging on a dead port), and the DeployedModel's
``status`` says the same (``availableReplicaCount`` 0).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from services.endpoint.resources.containers import Problem
from services.endpoint.resources.errors import ApiError
from services.endpoint.resources.operations import rfc3339

log = logging.getLogger(__name__)

FIRST_DELAY_S = 1.0  # before the first restart of a server that exited
MAX_DELAY_S = 30.0  # the delay doubles up to this while restarts fail


class Container(Protocol):
    def check(self, timeout: float = ...) -> tuple[str | None, Problem | None]:
        """(why it is not serving, or None; what kind of problem: exited, no-answer or unhealthy)."""

    def predict_json(self, instances: Sequence[Any]) -> bytes: ...

    def close(self) -> None: ...


class Supervised:
    """``container`` (started and healthy) watched from a thread of its own; ``relaunch`` starts a fresh one
    and waits until it is healthy (raising ApiError when it does not get there)."""

    def __init__(
        self,
        container: Container,
        relaunch: Callable[[], Container],
        interval_s: float,
        name: str = "container",
        *,
        probe_timeout_s: float = 5.0,
        liveness_failures: int = 3,
        max_restarts: int = 5,
        stable_checks: int = 10,
    ) -> None:
        self.container = container
        self.relaunch = relaunch
        self.interval_s = interval_s
        self.name = name
        self.probe_timeout_s = probe_timeout_s
        self.liveness_failures = liveness_failures
        self.max_restarts = max_restarts
        self.stable_checks = stable_checks
        self.restarts = 0  # successful restarts, ever
        self.streak = 0  # restarts (tried) since the server was last stable
        self.misses = 0  # health checks in a row that got no answer
        self.healthy = 0  # health checks in a row that got 200
        self.failed = False  # given up: stopped, no longer watched
        self.ready = True
        self.message = "the model server is running"
        self.updated = time.time()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"watch-{name}", daemon=True)
        self._thread.start()

    def predict_json(self, instances: Sequence[Any]) -> bytes:
        if not self.ready:
            raise ApiError("UNAVAILABLE", f"Deployed model `{self.name}` is not serving: {self.message}.")
        return self.container.predict_json(instances)

    def status(self) -> dict[str, Any]:
        """Vertex's ``DeployedModel.status``."""
        return {
            "message": self.message,
            "lastUpdateTime": rfc3339(self.updated),
            "availableReplicaCount": 1 if self.ready else 0,
        }

    def close(self) -> None:
        """Stop watching and stop the server (a restart under way stops what it starts)."""
        with self._lock:
            self._stop.set()
            self.container.close()

    def _set(self, ready: bool, message: str) -> None:
        if (ready, message) != (self.ready, self.message):
            level = logging.INFO if ready else logging.WARNING
            log.log(level, "deployed model status", extra={"fields": {"deployed": self.name, "status": message}})
        self.ready, self.message, self.updated = ready, message, time.time()

    def _watch(self) -> None:
        while not self.failed and not self._stop.wait(self.interval_s):
            try:
                problem, kind = self.container.check(self.probe_timeout_s)
            except Exception as exc:  # a check that breaks must not end the watch
                problem, kind = f"the health check failed: {type(exc).__name__}: {exc}", "unhealthy"
            if problem is None or kind is None:
                self.misses = 0
                self.healthy += 1
                if self.healthy >= self.stable_checks:
                    self.streak = 0  # stable again: the next incident starts from the first delay
                if not self.ready:
                    self._set(True, "the model server is running again")
                continue
            self.healthy = 0
            if kind == "exited":
                self._restart(problem)
            elif kind == "no-answer":
                self.misses += 1
                if self.misses >= self.liveness_failures:
                    self._restart(f"{problem}, {self.misses} checks in a row (alive but not answering)")
                else:
                    after = f"restarted after {self.liveness_failures} such checks in a row"
                    self._set(False, f"{problem}; taken out of service, {after}")
            else:
                self.misses = 0
                self._set(False, f"{problem}; taken out of service until it answers 200")

    def _restart(self, why: str) -> None:
        """Start the server again, the delay doubling with each restart of the streak, until one is healthy,
        close(), or the streak passes ``max_restarts`` (then the deployment is given up)."""
        failure = ""
        while True:
            self.streak += 1
            note = f"; the last restart failed: {failure}" if failure else ""
            if self.streak > self.max_restarts:
                self._give_up(f"{why}{note}")
                return
            delay = min(FIRST_DELAY_S * 2 ** (self.streak - 1), MAX_DELAY_S)
            self._set(False, f"{why}; restart {self.streak} in {delay:g} s{note}")
            if self._stop.wait(delay):
                return
            with self._lock:
                if self._stop.is_set():
                    return
                self.container.close()
            try:
                fresh = self.relaunch()
            except Exception as exc:
                failure = exc.message if isinstance(exc, ApiError) else f"{type(exc).__name__}: {exc}"
                failure = " / ".join(line.strip() for line in failure.splitlines() if line.strip())[-500:]
                continue
            with self._lock:
                if self._stop.is_set():
                    fresh.close()
                    return
                self.container = fresh
                self.restarts += 1
            self.misses = self.healthy = 0
            self._set(True, f"the model server is running (restarted {self.restarts}x; it had: {why})")
            return

    def _give_up(self, why: str) -> None:
        """The server keeps failing: stop it and report the deployment failed, rather than restart it forever."""
        with self._lock:
            if self._stop.is_set():
                return
            self.container.close()
            self.failed = True
        self._set(
            False,
            f"the deployment failed: the model server kept failing ({self.max_restarts} restarts without "
            f"{self.stable_checks} healthy checks in a row) and was stopped; the last problem: {why}. "
            "Undeploy it and deploy a fixed model",
        )
