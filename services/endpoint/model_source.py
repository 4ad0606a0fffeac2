"""Models from the MLflow registry (models/registry.py): the version ``models:/NAME@ALIAS`` is at, and loading it.

Scoring skips MLflow's per-call schema step when the pyfunc offers ``score_rows`` (the project's
one serving wrapper, models/pyfunc.py, does): the endpoint has already checked the features,
and the wrapper's feature function checks the rest. The model's own input errors become 400s.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
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
    """Wrap a loaded pyfunc (or anything with ``predict(DataFrame)``) as a ServedModel.

    The project's wrapper (models/pyfunc.py's AnomalyModel) is called without MLflow's schema
    step: its scoring straight on the feature columns when the detector uses only the base
    features (k-means: no DataFrame on the way in or out), ``score_rows`` otherwise (the shared
    feature function derives the rest). Any other pyfunc gets MLflow's own ``predict``.
    """
    try:
        inner = pyfunc.unwrap_python_model()
    except Exception:  # not a custom PythonModel
        inner = None
    detector_columns = tuple(getattr(getattr(inner, "detector", None), "columns", ()) or ())
    score_rows = getattr(inner, "score_rows", None)

    score_columns = getattr(inner, "score_columns", None) or _score_columns(inner)
    if score_columns is not None and detector_columns and set(detector_columns) <= set(FEATURES):

        def score(columns: dict[str, Any]) -> Any:
            return score_columns(np.column_stack([columns[c] for c in detector_columns]))

    else:
        frame_scorer = score_rows or pyfunc.predict

        def score(columns: dict[str, Any]) -> Any:
            return frame_scorer(pd.DataFrame(columns))

    def predict(columns: dict[str, Any]) -> Any:
        try:
            return score(columns)
        except ValueError as exc:  # models.errors.ModelInputError and MLflow's schema errors
            raise InputError(str(exc)) from None

    return ServedModel(
        predict=predict, version=version, name=name, features=FEATURES, kind=getattr(inner, "kind", None)
    )


def _score_columns(inner: Any) -> Any:
    """``AnomalyModel.score_matrix`` without its DataFrame: {column: array} (a third of a small request's
    cost is building that DataFrame). Same outputs by construction; tests compare the two on a real model."""
    detector, threshold = getattr(inner, "detector", None), getattr(inner, "threshold", None)
    if detector is None or threshold is None or not hasattr(inner, "score_matrix"):
        return None

    def score_columns(X: np.ndarray) -> dict[str, np.ndarray]:
        # one pass: k-means' score and its BQML columns come from the same distances
        scores, extra = detector.score_with_extra(X)
        out = {"score": scores, "is_anomaly": scores > threshold}
        out.update(extra)
        return out

    return score_columns
