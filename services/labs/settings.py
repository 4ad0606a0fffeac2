"""Settings of `hyp lab`, from the environment (the same names the services read)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field

from services.common import names
from services.common.settings import (
    DETECTIONS_TOPIC,
    DETECTOR_SUBSCRIPTION,
    EVENTS_TOPIC,
    CommonSettings,
)


class LabSettings(CommonSettings):
    # lab state, participants' copies of templates, logs and pid files of what the labs started
    lab_dir: Path = Field(Path(".hyp/lab"), validation_alias="HYP_LAB_DIR")
    # the challenge folders (README, template, solution)
    labs_root: Path = Field(Path(__file__).resolve().parents[2] / "labs", validation_alias="HYP_LABS_ROOT")
    # the Vertex-AI-compatible endpoint participants create in challenge 2 (the processor reads the same name)
    endpoint_url: str = Field("http://127.0.0.1:8080", validation_alias="HYP_ENDPOINT_URL")
    endpoint_id: str = Field("1", validation_alias="HYP_ENDPOINT_ID")
    # `hyp bigquery`, where challenge 4's service writes its rows with Google's client (the variable it honours)
    bigquery_url: str = Field("http://127.0.0.1:9050", validation_alias="BIGQUERY_EMULATOR_HOST")
    # `hyp storage`, where the Vertex SDK stages a model's artifact folder (challenge 5), as on GCP
    storage_url: str = Field("http://127.0.0.1:4443", validation_alias="STORAGE_EMULATOR_HOST")
    # the bucket challenge 5's CustomTrainingJob stages its script package and its output into
    # (`aiplatform.init(staging_bucket=...)`)
    staging_bucket: str = Field("hyp-lab-staging", min_length=3, validation_alias="HYP_LAB_STAGING_BUCKET")
    # where the participant's processing service (challenge 4) listens
    processor_port: int = Field(8081, ge=1, le=65535, validation_alias="HYP_LAB_PROCESSOR_PORT")
    events_topic: str = Field(EVENTS_TOPIC, validation_alias="HYP_LAB_EVENTS_TOPIC")
    detector_subscription: str = Field(DETECTOR_SUBSCRIPTION, validation_alias="HYP_LAB_DETECTOR_SUBSCRIPTION")
    detections_topic: str = Field(DETECTIONS_TOPIC, validation_alias="HYP_LAB_DETECTIONS_TOPIC")
    # events `hyp lab start 1` writes into the warehouse when it holds fewer purchases than this
    events: int = Field(6000, ge=500, validation_alias="HYP_LAB_EVENTS")
    # seconds a check waits for services and data (bounded polls)
    wait_s: float = Field(90.0, gt=0, validation_alias="HYP_LAB_WAIT_S")
    # seconds check 7 waits for the first detection of its test events (the detector's start-up included)
    detection_wait_s: float = Field(90.0, gt=0, validation_alias="HYP_LAB_DETECTION_WAIT_S")

    @property
    def run_dir(self) -> Path:
        return self.lab_dir / "run"

    @property
    def work_dir(self) -> Path:
        return self.lab_dir / "work"

    @property
    def endpoint_port(self) -> int:
        return urlsplit(self.endpoint_url).port or 80

    @property
    def bigquery_port(self) -> int:
        return urlsplit(self.bigquery_url).port or 80

    @property
    def storage_port(self) -> int:
        return urlsplit(self.storage_url).port or 80

    @property
    def mlflow_port(self) -> int:
        return urlsplit(self.mlflow_tracking_uri).port or 5000

    @property
    def endpoint_resource_url(self) -> str:
        return f"{self.endpoint_url.rstrip('/')}/v1/{names.endpoint(self.project, self.location, self.endpoint_id)}"

    @property
    def endpoints_url(self) -> str:
        """Vertex's `endpoints.list` on the endpoint server: answers once the server runs, champion or not."""
        return names.rest_url(self.endpoint_url, names.location(self.project, self.location)) + "/endpoints"


@lru_cache
def get_settings() -> LabSettings:
    return LabSettings()
