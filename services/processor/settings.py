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
    # group commit: pushes' rows are committed together (one Parquet file per table) once this many
    # rows are pending or the oldest pending row has waited commit_interval_s; each push is answered
    # only after its rows are durable (docs/endpoint.md: why 0.5 s)
    max_batch_rows: int = Field(500, ge=1, validation_alias="HYP_PROCESSOR_MAX_BATCH_ROWS")
    commit_interval_s: float = Field(0.5, ge=0, validation_alias="HYP_PROCESSOR_COMMIT_INTERVAL_S")
    # concurrent pushes' instances go to the endpoint in one :predict call
    predict_linger_s: float = Field(0.005, ge=0, validation_alias="HYP_PROCESSOR_PREDICT_LINGER_S")
    predict_max_instances: int = Field(500, ge=1, validation_alias="HYP_PROCESSOR_PREDICT_MAX_INSTANCES")
    # idempotency: ids written recently stay in memory (per table); older ones are looked up
    ledger_max_ids: int = Field(100_000, ge=1, validation_alias="HYP_PROCESSOR_LEDGER_MAX_IDS")
    ledger_max_age_s: float = Field(900.0, gt=0, validation_alias="HYP_PROCESSOR_LEDGER_MAX_AGE_S")
    # the warehouse compactor runs in this process (one owner across processes); 0 disables it
    compact_interval_s: float = Field(30.0, ge=0, validation_alias="HYP_PROCESSOR_COMPACT_INTERVAL_S")


@lru_cache
def get_settings() -> ProcessorSettings:
    return ProcessorSettings()  # type: ignore[call-arg]  # values come from the environment
