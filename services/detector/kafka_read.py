"""A Python-only Kafka read for portable runners (Flink): ``PeriodicImpulse`` ticks, a DoFn polls Kafka.

Why not Beam's ``ReadFromKafka``: it is a cross-language transform, expanded by a Java expansion service
while the pipeline is *built*, so `hyp detector --source kafka` could not even be constructed without
that service (Beam would download its jar from Maven Central). This read is plain Python, so the
pipeline is built offline, its runner-API proto holds only transforms the portable Flink runner runs
(impulse, ParDo, flatten: tested in tests/services/detector/test_flink.py), and the SDK harness needs
nothing but our image.

Delivery: the consumer does not auto-commit; offsets are committed in ``finish_bundle``, after the fused
stage's downstream steps (parse, score, load: publish and warehouse files) processed the bundle's
records. A worker that dies before the commit replays from the last committed offset: at least once,
like the Pub/Sub paths. ``message_id`` is ``topic/partition/offset``, so duplicates are countable.
The ticks come from one ``PeriodicImpulse`` (one consumer, parallelism 1); Kafka's group protocol would
spread partitions over more consumers if the job were scaled out.
"""

from __future__ import annotations

import logging
from typing import Any

import apache_beam as beam
from apache_beam.transforms.periodicsequence import PeriodicImpulse

from services.detector.batch import Message

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.2  # how often the impulse fires: the most a record waits before it is polled, when idle
MAX_RECORDS = 5000  # per poll


def kafka_message(record: Any) -> Message:
    """A Kafka consumer record -> Message; headers become attributes, ``topic/partition/offset`` its id."""
    headers = {}
    for header in getattr(record, "headers", None) or []:
        key, value = (header.key, header.value) if hasattr(header, "key") else header
        headers[str(key)] = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    message_id = f"{record.topic}/{record.partition}/{record.offset}"
    return Message(record.value or b"", headers, message_id, int(record.timestamp) * 1000)


class PollKafka(beam.DoFn):
    """Each tick: poll up to ``max_records`` records; commit the offsets when the bundle finishes."""

    def __init__(self, bootstrap_servers: str, topic: str, group: str, max_records: int = MAX_RECORDS) -> None:
        self.bootstrap_servers, self.topic, self.group, self.max_records = bootstrap_servers, topic, group, max_records
        self._consumer: Any = None
        self._polled = False

    def setup(self) -> None:
        from kafka import KafkaConsumer

        self._consumer = KafkaConsumer(
            self.topic,
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.group,
            enable_auto_commit=False,  # committed after the bundle (finish_bundle), never before
            auto_offset_reset="earliest",
        )

    def process(self, _tick: Any) -> Any:
        polled = self._consumer.poll(timeout_ms=int(POLL_INTERVAL_S * 1000), max_records=self.max_records)
        for records in polled.values():
            for record in records:
                self._polled = True
                yield kafka_message(record)

    def finish_bundle(self) -> None:
        if self._polled:
            self._consumer.commit()
            self._polled = False

    def teardown(self) -> None:
        if self._consumer is not None:
            self._consumer.close()


class ReadKafka(beam.PTransform):
    """Messages from a Kafka topic, unbounded (ticks of a ``PeriodicImpulse`` drive the polls)."""

    def __init__(self, bootstrap_servers: str, topic: str, group: str, interval_s: float = POLL_INTERVAL_S) -> None:
        super().__init__()
        self.bootstrap_servers, self.topic, self.group, self.interval_s = bootstrap_servers, topic, group, interval_s

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return (
            pbegin
            | "Tick" >> PeriodicImpulse(fire_interval=self.interval_s)
            | "Poll" >> beam.ParDo(PollKafka(self.bootstrap_servers, self.topic, self.group))
        )
