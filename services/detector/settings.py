"""Settings of `hyp detector`, from the environment (flags override them, see options.py)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field

from services.common.settings import (
    DEADLETTER_TOPIC,
    DETECTIONS_TOPIC,
    DETECTOR_SUBSCRIPTION,
    CommonSettings,
)


class DetectorSettings(CommonSettings):
    source: str = Field("local", validation_alias="HYP_DETECTOR_SOURCE")
    subscription: str = Field(DETECTOR_SUBSCRIPTION, validation_alias="HYP_DETECTOR_SUBSCRIPTION")
    detections_topic: str = Field(DETECTIONS_TOPIC, validation_alias="HYP_DETECTIONS_TOPIC")
    deadletter_topic: str = Field(DEADLETTER_TOPIC, validation_alias="HYP_DEADLETTER_TOPIC")
    scorer: str = Field("champion", validation_alias="HYP_DETECTOR_SCORER")
    reload_interval: float = Field(5.0, validation_alias="HYP_DETECTOR_RELOAD_INTERVAL")
    batch_size: int = Field(5000, validation_alias="HYP_DETECTOR_BATCH_SIZE")
    # local read: a batch waits this long after its first message for more (fewer, fuller bundles)
    batch_linger_s: float = Field(0.05, validation_alias="HYP_DETECTOR_BATCH_LINGER_S")
    max_outstanding: int = Field(20_000, validation_alias="HYP_DETECTOR_MAX_OUTSTANDING")
    ack_deadline: int = Field(60, validation_alias="HYP_DETECTOR_ACK_DEADLINE")
    metrics_port: int = Field(9464, validation_alias="HYP_DETECTOR_METRICS_PORT")
    stop_after_idle: float = Field(0.0, validation_alias="HYP_DETECTOR_STOP_AFTER_IDLE")
    # warehouse commits (local read): rows of consecutive batches in one commit, then their acknowledgement
    commit_max_rows: int = Field(10_000, validation_alias="HYP_DETECTOR_COMMIT_MAX_ROWS")
    commit_interval_s: float = Field(1.0, validation_alias="HYP_DETECTOR_COMMIT_INTERVAL_S")
    compact_interval_s: float = Field(30.0, validation_alias="HYP_DETECTOR_COMPACT_INTERVAL_S")
    kafka_bootstrap_servers: str | None = Field(
        None, validation_alias=AliasChoices("HYP_KAFKA_BOOTSTRAP_SERVERS", "HYP_KAFKA_BOOTSTRAP")
    )
    kafka_topic: str = Field("hyp-pubsub-topic", validation_alias="HYP_KAFKA_TOPIC")
    kafka_group: str = Field("hyp-detector", validation_alias="HYP_KAFKA_GROUP")


@lru_cache
def get_settings() -> DetectorSettings:
    return DetectorSettings()
