"""Settings of the Pub/Sub emulator (environment first, `hyp pubsub` flags override)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field

from services.common.settings import CommonSettings

DEFAULT_TOPOLOGY = Path(__file__).with_name("topology.yaml")


class PubsubSettings(CommonSettings):
    host: str = Field("127.0.0.1", validation_alias="HYP_PUBSUB_HOST")
    port: int = Field(8085, ge=0, le=65535, validation_alias="HYP_PUBSUB_PORT")
    # REST, /metrics and the `GET /` health check; unset means gRPC port + 1, 0 picks a free port
    rest_port: int | None = Field(None, ge=0, le=65535, validation_alias="HYP_PUBSUB_REST_PORT")
    # YAML topology loaded at start; "none" starts empty
    topology: str = Field(str(DEFAULT_TOPOLOGY), validation_alias="HYP_PUBSUB_TOPOLOGY")
    # durable message logs; unset keeps everything in memory
    data_dir: Path | None = Field(None, validation_alias="HYP_PUBSUB_DATA_DIR")
    fsync_interval_s: float = Field(0.2, gt=0, validation_alias="HYP_PUBSUB_FSYNC_INTERVAL_S")
    grpc_workers: int = Field(64, ge=4, validation_alias="HYP_PUBSUB_GRPC_WORKERS")
    # push requests in flight per push subscription (the processor answers each in up to ~1 s: 2,000 msg/s)
    push_max_outstanding: int = Field(2000, ge=1, validation_alias="HYP_PUBSUB_PUSH_MAX_OUTSTANDING")
    # keep-alive HTTP connections of all push subscriptions together
    push_max_connections: int = Field(2000, ge=1, validation_alias="HYP_PUBSUB_PUSH_MAX_CONNECTIONS")
    # a push request fails after this long or the subscription's ack deadline, whichever is shorter
    push_timeout_s: float = Field(30.0, gt=0, validation_alias="HYP_PUBSUB_PUSH_TIMEOUT_S")
    # without --data-dir: publishes get RESOURCE_EXHAUSTED once the retained backlog (message bytes plus
    # bookkeeping, about RSS growth) reaches this many MiB; 0 = no limit
    memory_budget_mb: int = Field(1024, ge=0, validation_alias="HYP_PUBSUB_MEMORY_BUDGET_MB")
    # local only, for tests: message retention runs this many times faster than its duration says
    # (a 10-minute retention, the API's minimum, expires in 2 s at 300); 1 = as on GCP
    retention_speedup: float = Field(1.0, ge=1.0, validation_alias="HYP_PUBSUB_RETENTION_SPEEDUP")
    # where BigQuery subscriptions write (tabledata.insertAll): `hyp bigquery`, as Google's client finds it
    bigquery_url: str = Field("http://127.0.0.1:9050", validation_alias="BIGQUERY_EMULATOR_HOST")
    # rows per insertAll request of one BigQuery subscription (BigQuery's limit: 50,000 and 10 MB)
    bigquery_batch_rows: int = Field(1000, ge=1, le=50_000, validation_alias="HYP_PUBSUB_BIGQUERY_BATCH_ROWS")
    # a partial batch waits until this long after the previous write (fewer, larger warehouse commits)
    bigquery_linger_s: float = Field(0.2, ge=0, le=10, validation_alias="HYP_PUBSUB_BIGQUERY_LINGER_S")


@lru_cache
def get_settings() -> PubsubSettings:
    return PubsubSettings()
