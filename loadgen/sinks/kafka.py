"""Kafka (kafka-python): the event as the value, keyed by user_id, attributes as record headers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow.compute as pc

from loadgen.core import Batch
from loadgen.render import attribute_index, attribute_templates, columns, payloads
from loadgen.sinks import SinkError


def _producer(bootstrap: str) -> Any:
    from kafka import KafkaProducer
    from kafka.errors import KafkaError

    try:
        return KafkaProducer(bootstrap_servers=bootstrap.split(","), linger_ms=5, acks=1, client_id="hyp-loadgen")
    except KafkaError as exc:
        raise SinkError(f"--bootstrap: cannot reach Kafka at {bootstrap}: {exc}") from None


class KafkaSink:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        n_users: int,
        run_id: str,
        producer_factory: Callable[[str], Any] = _producer,
        timeout_s: float = 30.0,
    ) -> None:
        self.topic, self.n_users, self.run_id, self.timeout_s = topic, n_users, run_id, timeout_s
        self._producer = producer_factory(bootstrap)
        self.sent = 0

    def send(self, batch: Batch, now: float) -> None:
        if not len(batch):
            return
        data = pc.cast(payloads(batch, self.n_users, now), "binary").to_pylist()
        keys = pc.cast(columns(batch, self.n_users, now)["user_id"], "binary").to_pylist()
        headers = [[(k, v.encode()) for k, v in t.items()] for t in attribute_templates(self.run_id, int(now * 1000))]
        for value, key, i in zip(data, keys, attribute_index(batch).tolist(), strict=True):
            self._producer.send(self.topic, value=value, key=key, headers=headers[i])
            self.sent += 1

    def close(self) -> None:
        try:
            self._producer.flush(timeout=self.timeout_s)
        except Exception as exc:
            raise SinkError(f"kafka: could not deliver every event: {exc}") from None
        finally:
            self._producer.close(timeout=self.timeout_s)
