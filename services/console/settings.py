"""Settings of the console: where each service answers, read from the environment."""

from __future__ import annotations

from functools import lru_cache

from pydantic import AliasChoices, Field

from services.common.settings import CommonSettings


class ConsoleSettings(CommonSettings):
    """Addresses default to 127.0.0.1 (``hyp up``); compose overrides them with service names.

    ``*_public_url`` values are what the browser links to, which differ from the
    in-network address inside compose (``mlflow:5000`` is not reachable from the host).
    """

    host: str = Field("127.0.0.1", validation_alias="HYP_CONSOLE_HOST")
    port: int = Field(8000, ge=1, le=65535, validation_alias="HYP_CONSOLE_PORT")
    pubsub_http_url: str = Field("http://127.0.0.1:8086", validation_alias="HYP_CONSOLE_PUBSUB_URL")
    detector_metrics_url: str = Field(
        "http://127.0.0.1:9464/metrics", validation_alias="HYP_CONSOLE_DETECTOR_METRICS_URL"
    )
    endpoint_url: str = Field("http://127.0.0.1:8080", validation_alias="HYP_CONSOLE_ENDPOINT_URL")
    processor_url: str = Field("http://127.0.0.1:8081", validation_alias="HYP_CONSOLE_PROCESSOR_URL")
    orchestrator_url: str = Field("http://127.0.0.1:8090", validation_alias="HYP_CONSOLE_ORCHESTRATOR_URL")
    # the BigQuery API (`hyp bigquery`): the table browser, histograms, recent jobs
    bigquery_url: str = Field(
        "http://127.0.0.1:9050", validation_alias=AliasChoices("HYP_CONSOLE_BIGQUERY_URL", "BIGQUERY_EMULATOR_HOST")
    )
    mlflow_public_url: str | None = Field(None, validation_alias="HYP_CONSOLE_MLFLOW_PUBLIC_URL")
    endpoint_public_url: str | None = Field(None, validation_alias="HYP_CONSOLE_ENDPOINT_PUBLIC_URL")
    # while a page is open (SSE client) the sources are read every refresh_s; with none, every idle_refresh_s
    refresh_s: float = Field(2.0, gt=0, le=60, validation_alias="HYP_CONSOLE_REFRESH_S")
    idle_refresh_s: float = Field(30.0, gt=0, le=3600, validation_alias="HYP_CONSOLE_IDLE_REFRESH_S")
    models_refresh_s: float = Field(10.0, gt=0, le=600, validation_alias="HYP_CONSOLE_MODELS_REFRESH_S")
    warehouse_refresh_s: float = Field(10.0, gt=0, le=3600, validation_alias="HYP_CONSOLE_WAREHOUSE_REFRESH_S")
    probe_timeout_s: float = Field(0.8, gt=0, le=30, validation_alias="HYP_CONSOLE_PROBE_TIMEOUT_S")
    subscribe: bool = Field(True, validation_alias="HYP_CONSOLE_SUBSCRIBE")
    subscription_prefix: str = Field("hyp_console", validation_alias="HYP_CONSOLE_SUBSCRIPTION_PREFIX")
    sql_max_rows: int = Field(200, ge=1, le=10_000, validation_alias="HYP_CONSOLE_SQL_MAX_ROWS")

    @property
    def bigquery_api(self) -> str:
        """The API's base URL, ``.../bigquery/v2/projects/<project>`` (BIGQUERY_EMULATOR_HOST may lack a scheme)."""
        base = self.bigquery_url if "://" in self.bigquery_url else f"http://{self.bigquery_url}"
        return f"{base.rstrip('/')}/bigquery/v2/projects/{self.project}"

    @property
    def mlflow_link(self) -> str:
        return self.mlflow_public_url or self.mlflow_tracking_uri

    @property
    def endpoint_docs_link(self) -> str:
        return (self.endpoint_public_url or self.endpoint_url).rstrip("/") + "/docs"


@lru_cache
def get_settings() -> ConsoleSettings:
    return ConsoleSettings()  # type: ignore[call-arg]  # pydantic-settings reads the environment
