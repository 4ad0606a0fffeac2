"""The console's own Pub/Sub subscriptions: labelled anomalies from the events topic and
every detection, fed into :class:`services.console.live.LiveAnomalies`.

The console creates its subscriptions when it starts (a fresh view from now on) and
deletes them when it stops. The labels subscription carries the filter
``attributes.anomaly = "1"``, so at 10,000 events/s it receives only the injected
anomalies; where the Pub/Sub server refuses filters it subscribes unfiltered and
counts attributes only (cheap, but every event then crosses the wire).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from concurrent import futures
from typing import Any

from services.common.pubsub_clients import subscriber
from services.common.settings import DETECTIONS_TOPIC, EVENTS_TOPIC
from services.console.live import LiveAnomalies
from services.console.settings import ConsoleSettings

log = logging.getLogger(__name__)
LABEL_FILTER = 'attributes.anomaly = "1"'
ADMIN_TIMEOUT_S = 5.0
WATCH_S = 30.0  # the feed thread re-checks its stop flag at least this often


class Feeds:
    """Background streaming pulls; :attr:`status` says whether they run and why not."""

    def __init__(self, settings: ConsoleSettings, live: LiveAnomalies) -> None:
        self.settings = settings
        self.live = live
        self.status: dict[str, Any] = {"healthy": False, "error": "not started", "filtered": None}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._futures: list[Any] = []
        self._created: list[str] = []

    @property
    def names(self) -> dict[str, str]:
        p = self.settings.subscription_prefix
        return {"labels": f"{p}_labels", "detections": f"{p}_detections"}

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="console-feeds", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._cancel()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._client is not None:
            for name in self._created:
                try:
                    self._client.delete_subscription(request={"subscription": name}, timeout=2.0)
                except Exception as exc:  # the emulator may be gone already; nothing to clean then
                    log.debug("could not delete %s: %s", name, exc)
            self._client.close()
            self._client = None

    def _cancel(self) -> None:
        for future in self._futures:
            future.cancel()
        self._futures = []

    def _run(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            try:
                self._subscribe()
                backoff = 1.0
                while not self._stop.is_set():
                    # blocks until a stream ends (stop() cancels them, which ends them too): no polling
                    done, _ = futures.wait(self._futures, timeout=WATCH_S, return_when=futures.FIRST_COMPLETED)
                    if done and not self._stop.is_set():
                        next(iter(done)).result()  # raises the reason the stream ended
                        raise RuntimeError("a streaming pull ended")
            except Exception as exc:  # never let the feed thread die: report and retry
                if self._stop.is_set():
                    break
                self.status = {"healthy": False, "error": _reason(exc), "filtered": self.status.get("filtered")}
                log.warning("console feeds: %s (retrying in %.0f s)", self.status["error"], backoff)
                self._cancel()
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 10.0)

    def _subscribe(self) -> None:
        from google.api_core import exceptions

        s = self.settings
        if self._client is None:
            self._client = subscriber(s.pubsub_emulator_host)
        client = self._client
        filtered = True
        for key, topic in (("labels", EVENTS_TOPIC), ("detections", DETECTIONS_TOPIC)):
            path = s.subscription_path(self.names[key])
            with contextlib.suppress(exceptions.NotFound):
                client.delete_subscription(request={"subscription": path}, timeout=ADMIN_TIMEOUT_S)
            request = {"name": path, "topic": s.topic_path(topic), "ack_deadline_seconds": 30}
            if key == "labels":
                try:
                    client.create_subscription(request={**request, "filter": LABEL_FILTER}, timeout=ADMIN_TIMEOUT_S)
                except (exceptions.InvalidArgument, exceptions.MethodNotImplemented, exceptions.FailedPrecondition):
                    filtered = False
                    client.create_subscription(request=request, timeout=ADMIN_TIMEOUT_S)
            else:
                client.create_subscription(request=request, timeout=ADMIN_TIMEOUT_S)
            if path not in self._created:
                self._created.append(path)
        from google.cloud.pubsub_v1.types import FlowControl

        flow = FlowControl(max_messages=2000)
        self._futures = [
            client.subscribe(s.subscription_path(self.names["labels"]), self._on_event, flow_control=flow),
            client.subscribe(s.subscription_path(self.names["detections"]), self._on_detection, flow_control=flow),
        ]
        self.status = {"healthy": True, "error": None, "filtered": filtered}

    def _on_event(self, message: Any) -> None:
        try:
            self.live.record_event(message.attributes, message.data, message.message_id)
        finally:
            message.ack()

    def _on_detection(self, message: Any) -> None:
        try:
            self.live.record_detection(message.attributes, message.data)
        finally:
            message.ack()


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}"[:300]
