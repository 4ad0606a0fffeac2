"""Settings shared by every service, read from the environment.

Each service defines one ``pydantic_settings.BaseSettings`` subclass of
:class:`CommonSettings` and builds it through a cached function, never at
import time. The variable names are the ones docker-compose.yml uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common import names


class CommonSettings(BaseSettings):
    """Names and addresses every part of the stack agrees on (docs/architecture.md)."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    project: str = Field("hyp-local", validation_alias="HYP_PROJECT")
    location: str = Field("europe-west1", validation_alias="HYP_LOCATION")
    pubsub_emulator_host: str | None = Field("127.0.0.1:8085", validation_alias="PUBSUB_EMULATOR_HOST")
    mlflow_tracking_uri: str = Field("http://127.0.0.1:5000", validation_alias="MLFLOW_TRACKING_URI")
    warehouse_dir: Path = Field(Path(".hyp/warehouse"), validation_alias="HYP_WAREHOUSE_DIR")
    model_name: str = Field("purchase-anomaly", validation_alias="HYP_MODEL_NAME")
    model_alias: str = Field("champion", validation_alias="HYP_MODEL_ALIAS")
    log_level: str = Field("INFO", validation_alias="HYP_LOG_LEVEL")
    # one log line per HTTP request (uvicorn's access log): off by default, for debugging only
    access_log: bool = Field(False, validation_alias="HYP_ACCESS_LOG")
    # Host names an HTTP service answers to besides 127.0.0.1, localhost, [::1] and its bind address
    # (a comma list; `*` allows any Host, turning the DNS-rebinding check off): services/common/hosts.py
    allowed_hosts: str = Field("", validation_alias="HYP_ALLOWED_HOSTS")

    def __init__(self, **values: Any) -> None:
        """Fields by name (``port=8091``) or by their environment name (``HYP_ORCH_PORT=8091``); either way
        above the environment. (``validate_by_name`` would do the first, but pydantic-settings then also
        reads variables named like fields: ``HOME`` would set ``home``.)"""
        fields = type(self).model_fields
        super().__init__(**{_alias(k, fields[k].validation_alias) if k in fields else k: v for k, v in values.items()})

    @property
    def model_uri(self) -> str:
        return f"models:/{self.model_name}@{self.model_alias}"

    def topic_path(self, topic: str) -> str:
        return names.topic(self.project, topic)

    def subscription_path(self, subscription: str) -> str:
        return names.subscription(self.project, subscription)


def _alias(name: str, alias: object) -> str:
    if isinstance(alias, str):
        return alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    return name


# Topic and subscription names of the stack (docs/architecture.md); the topology file declares them.
EVENTS_TOPIC = "hyp-pubsub-topic"
DETECTIONS_TOPIC = "hyp-detections"
DEADLETTER_TOPIC = "hyp-deadletter"
DETECTOR_SUBSCRIPTION = "hyp_subscription_dataflow"
PROCESSOR_SUBSCRIPTION = "hyp_subscription_cloud_run"
WAREHOUSE_SUBSCRIPTION = "hyp_subscription_bq_direct"
