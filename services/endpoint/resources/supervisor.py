"""A deployed custom container kept serving after its deploy: checked, restarted when it dies, refused while down.

Vertex checks a running container's health route and restarts a container that stops (Kubernetes
underneath: a crashing one is restarted with a growing delay). Here a watcher thread per deployment
does the same: every ``interval_s`` it asks whether the server still runs and what its health route
answers. A server that exited is started again (same spec, same ``AIP_*`` variables, a new port) after
:data:`FIRST_DELAY_S`, doubling up to :data:`MAX_DELAY_S` while restarts keep failing; one whose health
route stops answering 200 is taken out of service until it answers again. Meanwhile ``:predict`` on
that deployment is answered at once with ``UNAVAILABLE`` naming why (never a request left hanging on a
dead port), and the DeployedModel's ``status`` says the same (``availableReplicaCount`` 0).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from services.endpoint.resources.errors import ApiError
from services.endpoint.resources.operations import rfc3339

log = logging.getLogger(__name__)

FIRST_DELAY_S = 1.0  # before the first restart of a server that exited
MAX_DELAY_S = 30.0  # the delay doubles up to this while restarts fail


class Container(Protocol):
    def check(self) -> tuple[str | None, bool]:
        """(why it is not serving, or None; whether it exited)."""

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
    ) -> None:
        self.container = container
        self.relaunch = relaunch
        self.interval_s = interval_s
        self.name = name
        self.restarts = 0
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
        while not self._stop.wait(self.interval_s):
            try:
                problem, exited = self.container.check()
            except Exception as exc:  # a check that breaks must not end the watch
                problem, exited = f"the health check failed: {type(exc).__name__}: {exc}", False
            if exited and problem:
                self._restart(problem)
            elif problem:
                self._set(False, f"{problem}; taken out of service until it answers 200")
            elif not self.ready:
                self._set(True, "the model server is running again")

    def _restart(self, why: str) -> None:
        """Start the server again, the delay doubling while attempts fail, until one is healthy or close()."""
        delay = FIRST_DELAY_S
        attempt = 1
        failure = ""
        while True:
            note = f"; the last restart failed: {failure}" if failure else ""
            self._set(False, f"{why}; restart {attempt} in {delay:g} s{note}")
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
                attempt += 1
                delay = min(delay * 2, MAX_DELAY_S)
                continue
            with self._lock:
                if self._stop.is_set():
                    fresh.close()
                    return
                self.container = fresh
                self.restarts += 1
            self._set(True, f"the model server is running (restarted {self.restarts}x; it had: {why})")
            return
