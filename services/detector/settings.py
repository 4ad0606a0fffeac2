"""Settings of `hyp detector`: the one place its options are declared.

Every field is also a flag (services/detector/flags.py generates them, for `hyp detector --help` and
for Beam's parser), so adding an option means adding a field here. Flags override the environment;
the checks below run on the merged values (services/common/config.py names the flag or variable).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal, get_args

from pydantic import AliasChoices, Field, model_validator

from services.common.config import FieldError
from services.common.settings import (
    DEADLETTER_TOPIC,
    DETECTIONS_TOPIC,
    DETECTOR_SUBSCRIPTION,
    CommonSettings,
)

Source = Literal["local", "pubsub", "kafka"]
Scorer = Literal["champion", "zscore", "robust-zscore", "iqr", "vertex"]
SOURCES: tuple[str, ...] = get_args(Source)
SCORERS: tuple[str, ...] = get_args(Scorer)
WORKER_ID = re.compile(r"[A-Za-z0-9_.-]{0,63}")
ONLINE_DETECTORS = ("zscore", "robust-zscore", "iqr")  # Beam's online detectors (apache_beam.ml.anomaly)


class DetectorSettings(CommonSettings):
    source: Source = Field(
        "local",
        validation_alias="HYP_DETECTOR_SOURCE",
        description="local: batched, ack-after-durable Pub/Sub read for BundleBasedDirectRunner; "
        "pubsub: Beam's ReadFromPubSub (Dataflow); kafka: a Python-only Kafka read (Flink, portable runner)",
    )
    subscription: str = Field(
        DETECTOR_SUBSCRIPTION,
        validation_alias="HYP_DETECTOR_SUBSCRIPTION",
        description="Pub/Sub subscription (short name or projects/P/subscriptions/S)",
    )
    detections_topic: str = Field(
        DETECTIONS_TOPIC, validation_alias="HYP_DETECTIONS_TOPIC", description="topic for anomalies"
    )
    deadletter_topic: str = Field(
        DEADLETTER_TOPIC, validation_alias="HYP_DEADLETTER_TOPIC", description="topic for bad messages"
    )
    scorer: Scorer = Field(
        "champion",
        validation_alias="HYP_DETECTOR_SCORER",
        description="champion (MLflow registry, in process), one of Beam's online detectors, or vertex (a Vertex AI "
        "endpoint through Beam's VertexAIModelHandlerJSON: --vertex-endpoint-id, --vertex-api-endpoint)",
    )
    vertex_endpoint_id: str = Field(
        "1",
        validation_alias="HYP_DETECTOR_VERTEX_ENDPOINT_ID",
        description="scorer vertex: the endpoint's id (in the settings' project and location)",
    )
    vertex_api_endpoint: str | None = Field(
        "http://127.0.0.1:8080",
        validation_alias="HYP_DETECTOR_VERTEX_API_ENDPOINT",
        description="scorer vertex: where Vertex AI's API answers (hyp endpoint; empty: Google's own, with the "
        "environment's credentials)",
    )
    reload_interval: float = Field(
        5.0, validation_alias="HYP_DETECTOR_RELOAD_INTERVAL", description="seconds between polls of the alias"
    )
    batch_size: int = Field(5000, validation_alias="HYP_DETECTOR_BATCH_SIZE", description="messages per batch element")
    batch_linger_s: float = Field(
        0.05,
        validation_alias="HYP_DETECTOR_BATCH_LINGER_S",
        description="local read: seconds a batch waits after its first message for more (0: take what is there)",
    )
    max_outstanding: int = Field(
        20_000,
        validation_alias="HYP_DETECTOR_MAX_OUTSTANDING",
        description="messages pulled and not yet acknowledged (flow control)",
    )
    ack_deadline: int = Field(60, validation_alias="HYP_DETECTOR_ACK_DEADLINE", description="lease length in seconds")
    metrics_port: int = Field(
        9464, validation_alias="HYP_DETECTOR_METRICS_PORT", description="Prometheus port (0: off)"
    )
    stop_after_idle: float = Field(
        0.0,
        validation_alias="HYP_DETECTOR_STOP_AFTER_IDLE",
        description="drain and stop after this many seconds without input (0: run until stopped)",
    )
    commit_max_rows: int = Field(
        10_000,
        validation_alias="HYP_DETECTOR_COMMIT_MAX_ROWS",
        description="local read: commit the warehouse once this many messages are pending (then acknowledge them)",
    )
    commit_interval_s: float = Field(
        1.0,
        validation_alias="HYP_DETECTOR_COMMIT_INTERVAL_S",
        description="local read: ... or once the oldest pending batch waited this many seconds",
    )
    compact_interval_s: float = Field(
        30.0,
        validation_alias="HYP_DETECTOR_COMPACT_INTERVAL_S",
        description="seconds between warehouse compactions by this process (0: off)",
    )
    worker_id: str = Field(
        "",
        validation_alias="HYP_DETECTOR_WORKER_ID",
        description="this worker's name when several detectors share one subscription: label worker_id on "
        "every metric (empty: one detector, no label; hostname: this host's name, for compose replicas)",
    )
    kafka_bootstrap_servers: str | None = Field(
        None,
        validation_alias=AliasChoices("HYP_KAFKA_BOOTSTRAP_SERVERS", "HYP_KAFKA_BOOTSTRAP"),
        description="Kafka bootstrap servers (source=kafka)",
    )
    kafka_topic: str = Field(
        "hyp-pubsub-topic", validation_alias="HYP_KAFKA_TOPIC", description="Kafka topic of events (source=kafka)"
    )
    kafka_group: str = Field(
        "hyp-detector", validation_alias="HYP_KAFKA_GROUP", description="Kafka consumer group (source=kafka)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> DetectorSettings:
        """The checks that involve one value or several, each naming the value to change."""
        for name in ("batch_size", "max_outstanding", "ack_deadline"):
            if getattr(self, name) < 1:
                raise FieldError(name, f"must be at least 1, got {getattr(self, name)}")
        if not 10 <= self.ack_deadline <= 600:
            raise FieldError("ack_deadline", f"must be 10..600 seconds (Pub/Sub's range), got {self.ack_deadline}")
        if self.max_outstanding < self.batch_size:
            raise FieldError("max_outstanding", f"{self.max_outstanding} is below the batch size {self.batch_size}")
        if self.commit_max_rows < 1:
            raise FieldError("commit_max_rows", f"must be at least 1, got {self.commit_max_rows}")
        if self.source == "local" and self.commit_max_rows + self.batch_size > self.max_outstanding:
            raise FieldError(
                "commit_max_rows",
                f"{self.commit_max_rows} plus a batch ({self.batch_size}) must fit in max_outstanding "
                f"({self.max_outstanding}): messages waiting for a commit stay outstanding",
            )
        if not 0 < self.commit_interval_s <= 600:
            raise FieldError("commit_interval_s", f"must be above 0 and at most 600, got {self.commit_interval_s}")
        if not 0 <= self.batch_linger_s <= 10:
            raise FieldError("batch_linger_s", f"must be 0..10 seconds, got {self.batch_linger_s}")
        if self.compact_interval_s < 0:
            raise FieldError("compact_interval_s", f"must be 0 (off) or positive, got {self.compact_interval_s}")
        if self.reload_interval <= 0:
            raise FieldError("reload_interval", f"must be positive, got {self.reload_interval}")
        if not 0 <= self.metrics_port <= 65535:
            raise FieldError("metrics_port", f"{self.metrics_port} is not a port")
        if not WORKER_ID.fullmatch(self.worker_id):
            raise FieldError("worker_id", f"{self.worker_id!r}: at most 63 of A-Z a-z 0-9 _ . - (a label value)")
        if self.source == "kafka" and not self.kafka_bootstrap_servers:
            raise FieldError("kafka_bootstrap_servers", "required with source kafka")
        return self


@lru_cache
def get_settings() -> DetectorSettings:
    return DetectorSettings()
