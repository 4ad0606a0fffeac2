"""Push delivery: POST each message of a push subscription to its endpoint.

A 2xx (102, 200, 201, 202, 204 on the real service) acks; anything else (or no answer before
the timeout) nacks, and the message comes back after the retry policy's exponential backoff
(0.1 s doubling to 60 s without one, a local choice), then goes to the dead-letter topic after
``max_delivery_attempts``. The body is the Cloud Run envelope; ``no_wrapper`` sends the raw data
(attributes as ``x-goog-pubsub-*`` headers when ``write_metadata`` is set).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from services.pubsub.broker import Broker, PubsubMessage, SubState

log = logging.getLogger("hyp.pubsub.push")


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


class PushDelivery:
    """One dispatcher thread per push subscription; POSTs run on a shared thread pool."""

    def __init__(self, broker: Broker, concurrency: int = 8, timeout_s: float = 30.0) -> None:
        self.b = broker
        self.concurrency = concurrency
        self.client = httpx.Client(timeout=timeout_s, trust_env=False)
        self.pool = ThreadPoolExecutor(max_workers=concurrency * 2, thread_name_prefix="push")
        self.stop = threading.Event()
        self.threads: dict[str, threading.Thread] = {}
        self.inflight: Counter[str] = Counter()
        self.outcomes: dict[str, Counter[str]] = defaultdict(Counter)

    def watch(self, sub: SubState) -> None:
        with self.b.lock:
            thread = self.threads.get(sub.name)
            if thread is not None and thread.is_alive():
                return
            thread = threading.Thread(target=self._loop, args=(sub,), name=f"push-{sub.name}", daemon=True)
            self.threads[sub.name] = thread
            thread.start()

    def _loop(self, sub: SubState) -> None:
        b = self.b
        while not self.stop.is_set():
            with b.lock:
                if b.subs.get(sub.name) is not sub or not sub.pb.push_config.push_endpoint or sub.pb.detached:
                    self.threads.pop(sub.name, None)
                    return
                free = self.concurrency - self.inflight[sub.name]
                track: dict[int, int] = {}
                if free > 0:
                    b.take(sub, free, sub.pb.ack_deadline_seconds, track=track)
                if not track:
                    sub.cond.wait(0.5)
                    continue
                jobs = [
                    (seq, gen, sub.topic.data[seq - sub.topic.base], sub.attempts.get(seq, 1))
                    for seq, gen in track.items()
                ]
                self.inflight[sub.name] += len(jobs)
            for job in jobs:
                self.pool.submit(self._post, sub, *job)

    def _post(self, sub: SubState, seq: int, gen: int, blob: bytes, attempt: int) -> None:
        ok = False
        outcome = "error"
        try:
            body, headers = envelope(sub, PubsubMessage.FromString(blob), attempt)
            resp = self.client.post(sub.pb.push_config.push_endpoint, content=body, headers=headers)
            ok = resp.status_code in (102, 200, 201, 202, 204)
            outcome = "ack" if ok else f"http_{resp.status_code}"
        except httpx.HTTPError as exc:
            outcome = type(exc).__name__
        except Exception:
            log.exception("push delivery failed", extra={"fields": {"subscription": sub.name}})
        with self.b.lock:
            self.inflight[sub.name] -= 1
            self.outcomes[sub.name]["ack" if ok else "nack"] += 1
            if ok:
                self.b._ack(sub, [(seq, gen)])
            else:
                log.debug("push nacked", extra={"fields": {"subscription": sub.name, "outcome": outcome}})
            sub.cond.notify_all()
        if not ok:
            self.b.nack(sub, seq, gen, push=True)

    def close(self) -> None:
        self.stop.set()
        with self.b.lock:
            for sub in self.b.subs.values():
                sub.cond.notify_all()
        for thread in list(self.threads.values()):
            thread.join(timeout=2)
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
