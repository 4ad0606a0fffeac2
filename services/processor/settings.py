"""Settings of `hyp processor`, from the environment."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from services.common.settings import CommonSettings


class ProcessorSettings(CommonSettings):
    host: str = Field("127.0.0.1", validation_alias="HYP_PROCESSOR_HOST")
    port: int = Field(8081, ge=1, le=65535, validation_alias="HYP_PROCESSOR_PORT")
    # the Vertex-AI-compatible endpoint (hyp endpoint) and which endpoint id to call
    endpoint_url: str = Field("http://127.0.0.1:8080", validation_alias="HYP_ENDPOINT_URL")
    endpoint_id: str = Field("1", validation_alias="HYP_ENDPOINT_ID")
    # a slower answer counts as "endpoint down": 503, and Pub/Sub delivers again later
    endpoint_timeout_s: float = Field(5.0, gt=0, validation_alias="HYP_PROCESSOR_ENDPOINT_TIMEOUT_S")
    # unusable events go here with the reason in an attribute; empty: answer 400 and let the
    # subscription's own dead-letter policy move them after its attempts
    deadletter_topic: str = Field("hyp-deadletter", validation_alias="HYP_PROCESSOR_DEADLETTER_TOPIC")
    max_body_bytes: int = Field(10_485_760, ge=1024, validation_alias="HYP_PROCESSOR_MAX_BODY_BYTES")
    # group commit: rows of concurrent pushes go into one Parquet file per table, up to this many
    max_batch_rows: int = Field(5000, ge=1, validation_alias="HYP_PROCESSOR_MAX_BATCH_ROWS")


@lru_cache
def get_settings() -> ProcessorSettings:
    return ProcessorSettings()
