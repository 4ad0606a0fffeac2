"""Settings of `hyp orchestrator` (env names HYP_ORCH_*), built once through get_settings()."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from services.common.settings import CommonSettings


class OrchestratorSettings(CommonSettings):
    host: str = Field("127.0.0.1", validation_alias="HYP_ORCH_HOST")
    port: int = Field(8090, validation_alias="HYP_ORCH_PORT", ge=1, le=65535)
    data_dir: Path = Field(Path(".hyp/orchestrator"), validation_alias="HYP_ORCH_DATA_DIR")
    experiment: str = Field("hyp-orchestrator", validation_alias="HYP_ORCH_EXPERIMENT")

    # what a run does; envelope = the models package's best kind (and its default champion), kmeans = BQML parity
    candidates: list[str] = Field(["envelope", "kmeans"], validation_alias="HYP_ORCH_CANDIDATES")
    # the event table runs train on and the sensors watch: cloud_run (the processor's, as the workshop trains)
    # or dataflow (the detector's own, for a stack without the processor)
    events_table: Literal["cloud_run", "dataflow"] = Field("cloud_run", validation_alias="HYP_ORCH_EVENTS_TABLE")
    window_minutes: float = Field(30.0, validation_alias="HYP_ORCH_WINDOW_MINUTES", gt=0)
    max_rows: int = Field(5000, validation_alias="HYP_ORCH_MAX_ROWS", gt=0)
    min_rows: int = Field(1000, validation_alias="HYP_ORCH_MIN_ROWS", gt=0)
    holdout_fraction: float = Field(0.3, validation_alias="HYP_ORCH_HOLDOUT_FRACTION", gt=0, lt=1)
    window_wait_s: float = Field(90.0, validation_alias="HYP_ORCH_WINDOW_WAIT_S", ge=0)
    step_retries: int = Field(2, validation_alias="HYP_ORCH_STEP_RETRIES", ge=0)
    retry_backoff_s: float = Field(1.0, validation_alias="HYP_ORCH_RETRY_BACKOFF_S", ge=0)

    # consumers whose reported model version must follow a promotion (unset = skipped, said so)
    endpoint_url: str | None = Field(None, validation_alias="HYP_ORCH_ENDPOINT_URL")
    endpoint_id: str = Field("1", validation_alias="HYP_ENDPOINT_ID")
    detector_metrics_url: str | None = Field(None, validation_alias="HYP_ORCH_DETECTOR_METRICS_URL")
    confirm_timeout_s: float = Field(60.0, validation_alias="HYP_ORCH_CONFIRM_TIMEOUT_S", gt=0)

    # sensors
    sensor_interval_s: float = Field(15.0, validation_alias="HYP_ORCH_SENSOR_INTERVAL_S", gt=0)
    cooldown_s: float = Field(120.0, validation_alias="HYP_ORCH_COOLDOWN_S", ge=0)
    new_data_rows: int = Field(0, validation_alias="HYP_ORCH_NEW_DATA_ROWS", ge=0)  # 0 = sensor off
    drift_enabled: bool = Field(True, validation_alias="HYP_ORCH_DRIFT_ENABLED")
    drift_recent_rows: int = Field(500, validation_alias="HYP_ORCH_DRIFT_RECENT_ROWS", gt=10)
    drift_reference_rows: int = Field(2000, validation_alias="HYP_ORCH_DRIFT_REFERENCE_ROWS", gt=10)
    drift_psi_threshold: float = Field(0.25, validation_alias="HYP_ORCH_DRIFT_PSI", gt=0)
    drift_ks_pvalue: float = Field(0.001, validation_alias="HYP_ORCH_DRIFT_KS_PVALUE", gt=0, lt=1)
    drift_ks_statistic: float = Field(0.15, validation_alias="HYP_ORCH_DRIFT_KS_STATISTIC", gt=0, le=1)
    schedule_s: float = Field(0.0, validation_alias="HYP_ORCH_SCHEDULE_S", ge=0)  # 0 = sensor off

    # notifications (Slack-compatible incoming webhook)
    webhook_url: str | None = Field(None, validation_alias="HYP_ORCH_WEBHOOK_URL")

    @field_validator("candidates", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str) and not value.lstrip().startswith("["):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value

    @property
    def history_path(self) -> Path:
        return self.data_dir / "runs.sqlite"


@lru_cache
def get_settings() -> OrchestratorSettings:
    return OrchestratorSettings()
