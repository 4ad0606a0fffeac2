"""Settings of `hyp endpoint`, from the environment (Vertex's AIP_* names where they exist)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field

from services.common import names
from services.common.settings import CommonSettings


class EndpointSettings(CommonSettings):
    host: str = Field("127.0.0.1", validation_alias="HYP_ENDPOINT_HOST")
    port: int = Field(8080, ge=1, le=65535, validation_alias=AliasChoices("AIP_HTTP_PORT", "HYP_ENDPOINT_PORT"))
    endpoint_id: str = Field("1", validation_alias="HYP_ENDPOINT_ID")
    deployed_model_id: str = Field("1", validation_alias=AliasChoices("AIP_DEPLOYED_MODEL_ID", "HYP_DEPLOYED_MODEL_ID"))
    # the custom-container contract: Vertex tells the container where to answer
    predict_route: str = Field("/predict", validation_alias="AIP_PREDICT_ROUTE")
    health_route: str = Field("/health", validation_alias="AIP_HEALTH_ROUTE")
    # how often the @alias is checked for a new version (seconds; 0 turns hot reload off): the hot-reload
    # latency. One check is one small registry request (about 3 ms of CPU here).
    reload_interval_s: float = Field(15.0, ge=0, validation_alias="HYP_ENDPOINT_RELOAD_INTERVAL_S")
    # Vertex AI online prediction refuses requests over 1.5 MB
    max_body_bytes: int = Field(1_572_864, ge=1024, validation_alias="HYP_ENDPOINT_MAX_BODY_BYTES")
    max_instances: int = Field(10_000, ge=1, validation_alias="HYP_ENDPOINT_MAX_INSTANCES")
    # batches up to this many rows are scored on the event loop; bigger ones in a worker thread
    inline_rows: int = Field(5000, ge=0, validation_alias="HYP_ENDPOINT_INLINE_ROWS")
    workers: int = Field(1, ge=1, validation_alias="HYP_ENDPOINT_WORKERS")
    # hyp storage, where gs:// model artifacts are read (the variable Google's Cloud Storage clients read)
    storage_emulator_host: str | None = Field(None, validation_alias="STORAGE_EMULATOR_HOST")
    # where endpoints created through Vertex's API and their deployments are kept across restarts (None: memory only)
    state_dir: Path | None = Field(None, validation_alias="HYP_ENDPOINT_STATE_DIR")
    # how a custom container (an image that is not one of Vertex's prebuilt ones) runs: docker, local (its
    # command as a process here) or auto (docker when a daemon answers)
    containers: Literal["auto", "docker", "local"] = Field("auto", validation_alias="HYP_ENDPOINT_CONTAINERS")
    # how long a custom container has to answer its health route before its deploy fails
    container_start_timeout_s: float = Field(120.0, gt=0, validation_alias="HYP_ENDPOINT_CONTAINER_START_TIMEOUT_S")
    # how often a deployed custom container is checked (is it running, does its health route answer 200); one
    # that exited is restarted, one that answers otherwise gets no predictions until it answers 200 again
    container_check_interval_s: float = Field(5.0, gt=0, validation_alias="HYP_ENDPOINT_CONTAINER_CHECK_INTERVAL_S")
    # how long a health check waits for the answer; one that gets none this many times in a row (the process alive
    # but hung) restarts the container, as a Vertex liveness probe's failureThreshold (3 by default) does
    container_probe_timeout_s: float = Field(5.0, gt=0, validation_alias="HYP_ENDPOINT_CONTAINER_PROBE_TIMEOUT_S")
    container_liveness_failures: int = Field(3, ge=1, validation_alias="HYP_ENDPOINT_CONTAINER_LIVENESS_FAILURES")
    # restarts in a row (the server never answering 200 for 10 checks between them) before the deployment is
    # given up: stopped and reported failed in its status instead of restarted forever
    container_max_restarts: int = Field(5, ge=0, validation_alias="HYP_ENDPOINT_CONTAINER_MAX_RESTARTS")

    @property
    def endpoint_name(self) -> str:
        return names.endpoint(self.project, self.location, self.endpoint_id)

    @property
    def model_resource(self) -> str:
        return names.model(self.project, self.location, self.model_name)


@lru_cache
def get_settings() -> EndpointSettings:
    return EndpointSettings()  # type: ignore[call-arg]  # pydantic-settings reads the environment
