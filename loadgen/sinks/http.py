"""The workshop's pubsub-proxy contract: ``POST <url>`` (path ``/json``) with the event as the JSON body.

Labels cannot travel in the body (detectors must not see them), so each
attribute goes in an ``X-Hyp-Attr-<name>`` header; a proxy that forwards to
Pub/Sub copies them into message attributes, and one that ignores them loses
nothing the detector may read.
"""

from __future__ import annotations

import pyarrow.compute as pc

from loadgen.core import Batch
from loadgen.render import attribute_index, attribute_templates, payloads
from loadgen.sinks import SinkError

ATTRIBUTE_HEADER_PREFIX = "X-Hyp-Attr-"


class HttpSink:
    def __init__(self, url: str, n_users: int, run_id: str, timeout_s: float = 10.0, client=None) -> None:
        import httpx

        self.url, self.n_users, self.run_id = url, n_users, run_id
        self._httpx = httpx
        self._client = client or httpx.Client(timeout=timeout_s)
        self.sent = 0

    def send(self, batch: Batch, now: float) -> None:
        if not len(batch):
            return
        data = pc.cast(payloads(batch, self.n_users, now), "binary").to_pylist()
        headers = [
            {"Content-Type": "application/json", **{ATTRIBUTE_HEADER_PREFIX + k: v for k, v in t.items()}}
            for t in attribute_templates(self.run_id, int(now * 1000))
        ]
        for body, i in zip(data, attribute_index(batch).tolist(), strict=True):
            try:
                response = self._client.post(self.url, content=body, headers=headers[i])
            except self._httpx.HTTPError as exc:
                raise SinkError(f"--url: cannot POST to {self.url}: {exc}") from None
            if response.status_code >= 300:
                raise SinkError(f"--url: {self.url} answered {response.status_code}: {response.text[:200]!r}")
            self.sent += 1

    def close(self) -> None:
        self._client.close()
