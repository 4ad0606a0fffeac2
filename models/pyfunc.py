"""The one MLflow pyfunc serving wrapper, for every model kind.

``predict(DataFrame) -> DataFrame`` with ``score`` (higher = more anomalous) and ``is_anomaly``
(``score > threshold``; the threshold was decided at training and travels with the version), plus
for k-means BigQuery ML's ``nearest_centroid_id`` and ``normalized_distance``. Scoring is one
vectorised pass over the batch; consumers never threshold or map clusters themselves.

The pickled detector classes live in this repository's ``models`` package, so a process that
loads a version needs hyp-local installed (the endpoint and detector images have it).
"""

from __future__ import annotations

import importlib.metadata
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.pyfunc import PythonModel
from mlflow.types import ColSpec, Schema, TensorSpec

from models import detectors
from models.detectors import Detector, KMeansDetector
from models.features import feature_matrix, fill_missing

KMEANS_COLUMNS = ("nearest_centroid_id", "normalized_distance")
INPUT_EXAMPLE = pd.DataFrame(
    {
        "tax": [8.4, 1.05],
        "shipping": [4.99, 0.0],
        "value": [40.0, 5.0],
        "items": ['[{"item_id":"i1","price":20.0,"quantity":2}]', '[{"item_id":"i2","price":5.0,"quantity":1}]'],
        "items_count": [1, 1],
    }
)


class AnomalyModel(PythonModel):
    """Detector + threshold + the feature function, as one servable object."""

    def __init__(self, detector: Detector, threshold: float, fill_values: np.ndarray, info: dict[str, Any]):
        self.detector = detector
        self.threshold = float(threshold)
        self.fill_values = np.asarray(fill_values, dtype=np.float64)
        self.info = dict(info)

    @property
    def kind(self) -> str:
        return self.detector.kind

    def load_context(self, context: Any) -> None:
        path = (context.artifacts or {}).get("keras_model") if context is not None else None
        if path and hasattr(self.detector, "load"):
            self.detector.load(path)

    def matrix(self, rows: Any) -> np.ndarray:
        return fill_missing(feature_matrix(rows, self.detector.columns), self.fill_values)

    def score_matrix(self, X: np.ndarray) -> pd.DataFrame:
        scores, extra = self.detector.score_with_extra(X)
        out: dict[str, Any] = {"score": scores, "is_anomaly": scores > self.threshold}
        out.update(extra)
        return pd.DataFrame(out, copy=False)

    def score_rows(self, rows: Any) -> pd.DataFrame:
        """Score rows (DataFrame, dicts) without MLflow's schema step; same result as predict."""
        frame = self.score_matrix(self.matrix(rows))
        if isinstance(rows, pd.DataFrame):
            frame.index = rows.index
        return frame

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        return self.score_rows(model_input)


def signature(model: AnomalyModel) -> ModelSignature:
    inputs: list[ColSpec | TensorSpec] = [
        ColSpec("double", "tax"),
        ColSpec("double", "shipping"),
        ColSpec("double", "value"),
        ColSpec("string", "items", required=False),
        ColSpec("long", "items_count", required=False),
    ]
    out: list[ColSpec | TensorSpec] = [ColSpec("double", "score"), ColSpec("boolean", "is_anomaly")]
    if isinstance(model.detector, KMeansDetector):
        out += [ColSpec("long", "nearest_centroid_id"), ColSpec("double", "normalized_distance")]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(out))


def pip_requirements(kind: str) -> list[str]:
    """Explicit pins of what unpickling and scoring need (never inferred: inference imports the world)."""
    names = ["mlflow", "numpy", "pandas", "scikit-learn", "cloudpickle", "pydantic-settings", "orjson"]
    names += detectors.get(kind).requirements
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pins.append(name)
    return pins


def log_model(model: AnomalyModel, *, name: str = "model", registered_model_name: str | None = None) -> Any:
    """Log the wrapper (and a .keras artifact for the autoencoder) into the active run; return ModelInfo."""
    example = INPUT_EXAMPLE.copy()
    with tempfile.TemporaryDirectory() as tmp:
        artifacts = None
        if hasattr(model.detector, "save") and getattr(model.detector, "model", None) is not None:
            artifacts = {"keras_model": str(model.detector.save(Path(tmp) / "autoencoder.keras"))}
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=model,
            artifacts=artifacts,
            signature=signature(model),
            input_example=example,
            pip_requirements=pip_requirements(model.kind),
            registered_model_name=registered_model_name,
        )
