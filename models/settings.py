"""Settings of the trainer, the registry CLI and the local MLflow server (one class for models/)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field

from services.common.settings import CommonSettings


class ModelSettings(CommonSettings):
    mlflow_dir: Path = Field(Path(".hyp/mlflow"), validation_alias="HYP_MLFLOW_DIR")
    mlflow_host: str = Field("127.0.0.1", validation_alias="HYP_MLFLOW_HOST")
    mlflow_port: int = Field(5000, ge=1, le=65535, validation_alias="HYP_MLFLOW_PORT")
    mlflow_backend_store_uri: str | None = Field(None, validation_alias="HYP_MLFLOW_BACKEND_STORE_URI")
    mlflow_allowed_hosts: str | None = Field(None, validation_alias="HYP_MLFLOW_ALLOWED_HOSTS")
    mlflow_workers: int = Field(1, ge=1, validation_alias="HYP_MLFLOW_WORKERS")
    experiment: str = Field("purchase-anomaly", validation_alias="HYP_EXPERIMENT")
    default_model: str = Field("envelope", validation_alias="HYP_DEFAULT_MODEL")
    promotion_metric: str = Field("f1", validation_alias="HYP_PROMOTION_METRIC")
    promotion_min_delta: float = Field(0.0, validation_alias="HYP_PROMOTION_MIN_DELTA")
    train_rows: int = Field(20000, gt=0, validation_alias="HYP_TRAIN_ROWS")
    eval_rows: int = Field(50000, gt=0, validation_alias="HYP_EVAL_ROWS")
    anomaly_rate: float = Field(0.01, validation_alias="HYP_ANOMALY_RATE")
    min_training_rows: int = Field(200, validation_alias="HYP_MIN_TRAINING_ROWS")
    seed: int = Field(42, validation_alias="HYP_SEED")


@lru_cache
def get_settings() -> ModelSettings:
    return ModelSettings()
