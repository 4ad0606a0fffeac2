"""Push delivery: POST each message of a push subscription to its endpoint.

A 2xx (102, 200, 201, 202, 204 on the real service) acks; anything else (or no answer within the
ack deadline) nacks, and the message comes back after the retry policy's exponential backoff
(0.1 s doubling to 60 s without one, a local choice), then goes to the dead-letter topic after
``max_delivery_attempts``. The body is the Cloud Run envelope; ``no_wrapper`` sends the raw data
(attributes as ``x-goog-pubsub-*`` headers when ``write_metadata`` is set).

All push subscriptions share one asyncio event-loop thread and one pool of keep-alive connections
(:mod:`services.pubsub.http_client`, at most ``max_connections`` requests in flight). Each
subscription keeps up to ``max_outstanding`` requests in flight (the real service keeps many pushes
outstanding); like the real service's push flow control, its window halves on each failure and
grows by one on each success (a slow start back up to the maximum), so a failing endpoint is not
hammered: at a window of one, failures also pause the subscription's pushes (100 ms doubling to
10 s; GCP documents 100 ms to 60 s of push backoff). A subscription's task sleeps until the
broker wakes it (messages ready, a nack's backoff over, a request done): no polling.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from collections import Counter, defaultdict
from typing import Any

from services.pubsub.broker import Broker
from services.pubsub.http_client import HttpError, PostClient
from services.pubsub.subscription import SubState
from services.pubsub.topic import PubsubMessage

log = logging.getLogger("hyp.pubsub.push")
OK_STATUS = frozenset((102, 200, 201, 202, 204))
PUSH_BACKOFF_MIN_S = 0.1
PUSH_BACKOFF_MAX_S = 10.0  # GCP: up to 60 s; shorter here so a restarted processor gets pushes soon


def envelope(sub: SubState, msg: Any, attempt: int) -> tuple[bytes, dict[str, str]]:
    """The request body and headers for one delivery."""
    cfg = sub.pb.push_config
    publish_time = msg.publish_time.ToJsonString()
    if cfg.HasField("no_wrapper"):
        headers = {"content-type": "application/octet-stream"}
        if cfg.no_wrapper.write_metadata:
            headers.update({f"x-goog-pubsub-{k}": v for k, v in msg.attributes.items()})
            headers["x-goog-pubsub-message-id"] = msg.message_id
            headers["x-goog-pubsub-publish-time"] = publish_time
            headers["x-goog-pubsub-subscription-name"] = sub.name
        return msg.data, headers
    message: dict[str, Any] = {
        "data": base64.b64encode(msg.data).decode(),
        "attributes": dict(msg.attributes),
        "messageId": msg.message_id,
        "message_id": msg.message_id,
        "publishTime": publish_time,
        "publish_time": publish_time,
    }
    if msg.ordering_key:
        message["orderingKey"] = msg.ordering_key
    body: dict[str, Any] = {"message": message, "subscription": sub.name}
    if sub.pb.HasField("dead_letter_policy"):
        body["deliveryAttempt"] = attempt
    return json.dumps(body).encode(), {"content-type": "application/json"}


class _Window:
    """One subscription's push flow control: requests in flight, the window, the push backoff."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.size = maximum
        self.inflight = 0
        self.pause = 0.0  # the current push backoff, seconds
        self.resume_at = 0.0  # loop time before which nothing is sent
        self.wake = asyncio.Event()
        self.scheduled = False  # a wake is queued on the loop (set from another thread)

    def free(self) -> int:
        return max(0, self.size - self.inflight)

    def done(self, ok: bool, now: float) -> None:
        self.inflight -= 1
        if ok:
            self.size = min(self.maximum, self.size + 1)
            self.pause = 0.0
        else:
            self.size = max(1, self.size // 2)
            # Push backoff (GCP: delivery stops for 100 ms to 60 s after failures): grows only with failures of
            # requests sent after the last pause, so one burst of failures costs one short pause.
            if self.size == 1 and now >= self.resume_at:
                self.pause = min(PUSH_BACKOFF_MAX_S, self.pause * 2 or PUSH_BACKOFF_MIN_S)
                self.resume_at = now + self.pause
        self.wake.set()


class PushDelivery:
    """Delivers every push subscription from one event-loop thread."""

    def __init__(
        self, broker: Broker, max_outstanding: int = 2000, timeout_s: float = 30.0, max_connections: int = 2000
    ) -> None:
        self.b = broker
        self.max_outstanding = max_outstanding
        self.timeout_s = timeout_s
        self.max_connections = max_connections
        self.loop: asyncio.AbstractEventLoop | None = None
        self.client: PostClient | None = None
        self.thread: threading.Thread | None = None
        self.stopping = False
        self.tasks: dict[int, asyncio.Task[None]] = {}  # subscription uid -> its dispatcher
        self.posts: set[asyncio.Task[None]] = set()
        self.windows: dict[int, _Window] = {}
        self.outcomes: dict[str, Counter[str]] = defaultdict(Counter)

    def _start(self) -> asyncio.AbstractEventLoop:
        """Start the event-loop thread on first use. Broker lock held."""
        if self.loop is None:
            self.loop = asyncio.new_event_loop()
            self.thread = threading.Thread(target=self.loop.run_forever, name="pubsub-push", daemon=True)
            self.thread.start()
        return self.loop

    def watch(self, sub: SubState) -> None:
        """Deliver this push subscription (idempotent); called from any thread."""
        with self.b.lock:
            if self.stopping:
                return
            self._start().call_soon_threadsafe(self._watch, sub)

    def _watch(self, sub: SubState) -> None:
        task = self.tasks.get(sub.uid)
        if task is not None and not task.done():
            self.windows[sub.uid].wake.set()
            return
        window = self.windows.get(sub.uid) or _Window(self.max_outstanding)
        self.windows[sub.uid] = window
        assert self.loop is not None
        loop = self.loop

        def waker() -> None:  # broker lock held, any thread
            if not window.scheduled:
                window.scheduled = True
                loop.call_soon_threadsafe(self._wake, window)

        with self.b.lock:
            sub.waker = waker
        self.tasks[sub.uid] = loop.create_task(self._run(sub, window))

    @staticmethod
    def _wake(window: _Window) -> None:
        window.scheduled = False
        window.wake.set()

    async def _run(self, sub: SubState, window: _Window) -> None:
        b = self.b
        loop = asyncio.get_running_loop()
        while not self.stopping:
            wait = window.resume_at - loop.time()
            if wait > 0:  # push backoff after failures
                await asyncio.sleep(wait)
                continue
            window.wake.clear()
            with b.lock:
                if b.subs.get(sub.name) is not sub or not sub.pb.push_config.push_endpoint or sub.pb.detached:
                    if sub.waker is not None:
                        sub.waker = None
                    break
                track: dict[int, int] = {}
                free = window.free()
                if free > 0:
                    sub.take(free, sub.pb.ack_deadline_seconds, track=track)
                attempts = sub.attempts
                blobs = sub.topic.blobs(list(track))
                jobs = [
                    (seq, gen, blob, attempts.get(seq, 1))
                    for (seq, gen), blob in zip(track.items(), blobs, strict=True)
                ]
                window.inflight += len(jobs)
                endpoint = sub.pb.push_config.push_endpoint
                timeout = min(self.timeout_s, float(sub.pb.ack_deadline_seconds))
            for job in jobs:
                post = asyncio.create_task(self._post(sub, window, endpoint, timeout, *job))
                self.posts.add(post)
                post.add_done_callback(self.posts.discard)
            if not jobs:
                await window.wake.wait()
            else:
                await asyncio.sleep(0)  # let the requests start before taking more
        self.tasks.pop(sub.uid, None)
        if window.inflight == 0:
            self.windows.pop(sub.uid, None)

    async def _post(
        self,
        sub: SubState,
        window: _Window,
        endpoint: str,
        timeout: float,
        seq: int,
        gen: int,
        blob: bytes,
        attempt: int,
    ) -> None:
        ok = False
        outcome = "error"
        if self.client is None:
            self.client = PostClient(self.max_connections)
        try:
            body, headers = envelope(sub, PubsubMessage.FromString(blob), attempt)
            async with asyncio.timeout(timeout):
                status = await self.client.post(endpoint, body, headers)
            ok = status in OK_STATUS
            outcome = "ack" if ok else f"http_{status}"
        except (HttpError, OSError, TimeoutError) as exc:
            outcome = type(exc).__name__
        except Exception:
            log.exception("push delivery failed", extra={"fields": {"subscription": sub.name}})
        window.done(ok, asyncio.get_running_loop().time())
        if window.inflight == 0 and sub.uid not in self.tasks:  # the subscription is gone
            self.windows.pop(sub.uid, None)
        with self.b.lock:
            self.outcomes[sub.name]["ack" if ok else "nack"] += 1
            if ok:
                sub.ack([(seq, gen)])
            else:
                log.debug("push nacked", extra={"fields": {"subscription": sub.name, "outcome": outcome}})
                sub.nack(seq, gen, push=True)

    def close(self) -> None:
        with self.b.lock:
            self.stopping = True
            loop = self.loop
        if loop is None or self.thread is None:
            return

        async def shutdown() -> None:
            for task in [*self.tasks.values(), *self.posts]:
                task.cancel()
            await asyncio.gather(*self.tasks.values(), *self.posts, return_exceptions=True)
            if self.client is not None:
                await self.client.aclose()

        try:
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(timeout=5)
        except Exception:  # a slow shutdown must not keep the process up
            log.warning("push shutdown incomplete")
        loop.call_soon_threadsafe(loop.stop)
        self.thread.join(timeout=2)
