"""Models from the MLflow registry: which version ``models:/NAME@ALIAS`` points at, and loading it.

Scoring skips MLflow's per-call schema step when the pyfunc offers ``score_rows`` (the project's
one serving wrapper, models/pyfunc.py, does): the endpoint has already checked the features,
and the wrapper's feature function checks the rest. The model's own input errors become 400s.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from services.endpoint.instances import FEATURES, InputError
from services.endpoint.serving import ServedModel

log = logging.getLogger(__name__)


class MlflowSource:
    """The champion (or any alias) of one registered model on an MLflow tracking server."""

    def __init__(self, tracking_uri: str, model_name: str, alias: str) -> None:
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.alias = alias
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def current_version(self) -> str | None:
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.model_name, self.alias).version)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") in {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"}:
                return None
            raise

    def load(self, version: str) -> ServedModel:
        import mlflow

        local = mlflow.artifacts.download_artifacts(
            artifact_uri=f"models:/{self.model_name}/{version}", tracking_uri=self.tracking_uri
        )
        pyfunc = mlflow.pyfunc.load_model(local)
        return served(pyfunc, version=version, name=self.model_name)


def served(pyfunc: Any, *, version: str, name: str) -> ServedModel:
    """Wrap a loaded pyfunc (or anything with ``predict(DataFrame)``) as a ServedModel."""
    try:
        inner = pyfunc.unwrap_python_model()
    except Exception:  # not a custom PythonModel: MLflow's own predict, schema step and all
        inner = None
    score = getattr(inner, "score_rows", None) or pyfunc.predict
    kind = getattr(inner, "kind", None)

    def predict(frame: pd.DataFrame) -> pd.DataFrame:
        try:
            return score(frame)
        except ValueError as exc:  # models.errors.ModelInputError and MLflow's schema errors
            raise InputError(str(exc)) from None

    return ServedModel(predict=predict, version=version, name=name, features=FEATURES, kind=kind)
