"""What BigQuery ML in `hyp bigquery` reads from the environment beyond the service's own settings:
where ``gs://`` lives (``STORAGE_EMULATOR_HOST``, the variable google-cloud-storage reads; the stack sets it
to ``hyp storage``) and whether a model registry was configured at all (``MLFLOW_TRACKING_URI`` given,
not only its default)."""

from __future__ import annotations

from pydantic import Field

from services.bigquery.settings import BigQuerySettings


class MLSettings(BigQuerySettings):
    storage_emulator_host: str | None = Field(None, validation_alias="STORAGE_EMULATOR_HOST")

    @property
    def tracking_configured(self) -> bool:
        """True when MLFLOW_TRACKING_URI was set (environment or .env), not merely defaulted."""
        return "mlflow_tracking_uri" in self.model_fields_set and bool(self.mlflow_tracking_uri.strip())


def settings() -> MLSettings:
    return MLSettings()
