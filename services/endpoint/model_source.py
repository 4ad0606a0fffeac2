"""Models from the MLflow registry (models/registry.py): the version ``models:/NAME@ALIAS`` is at, and loading it.

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
    """``models:/NAME@ALIAS`` on an MLflow tracking server, through models.registry."""

    def __init__(self, tracking_uri: str, model_name: str, alias: str) -> None:
        from models.registry import client

        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.alias = alias
        self.client = client(tracking_uri)

    def current_version(self) -> str | None:
        from models.registry import champion_version

        return champion_version(self.client, self.model_name, self.alias)

    def load(self, version: str) -> ServedModel:
        from models.registry import load_version

        return served(load_version(self.tracking_uri, self.model_name, version), version=version, name=self.model_name)


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
