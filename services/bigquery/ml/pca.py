"""A PCA model of BigQuery ML (``MODEL_TYPE='PCA'``): principal components of the centred (and, with
SCALE_FEATURES, standardised) features by SVD, and the functions BigQuery ML documents for PCA:
ML.PREDICT (``principal_component_1`` ...), ML.DETECT_ANOMALIES (``mean_squared_error`` of the
reconstruction from the kept components; anomalous above the ``1 - contamination`` quantile of the
training rows' errors), ML.EVALUATE (``total_explained_variance_ratio``), ML.PRINCIPAL_COMPONENTS and
ML.PRINCIPAL_COMPONENT_INFO. The SVD is exact (every PCA_SOLVER); each component's sign is fixed so its
largest loading is positive, so the same rows give the same components. The decomposition is one step:
ML.TRAINING_INFO and the running job's ``iterationResults`` show one iteration (index 0, the mean
reconstruction error as its loss, the training time).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa

from services.bigquery.ml import encoding, progress
from services.bigquery.ml.kmeans import _impute, _with_inputs
from services.bigquery.ml.options import PcaOptions
from services.bigquery.schema import Field
from services.bigquery.sql import invalid_query

QUANTILE_LEVELS = 10001


def train(options: PcaOptions, fields: tuple[Field, ...], rows: pa.Table) -> tuple[dict[str, Any], np.ndarray]:
    started = time.perf_counter()
    features = encoding.training(fields, rows, None, "PCA")
    X = encoding.encode(features, rows, "CREATE_MODEL")
    if len(X) < 2:
        raise invalid_query("CREATE MODEL: PCA needs at least 2 training rows.")
    with np.errstate(all="ignore"):
        fill = np.array([np.nanmean(c) if np.isfinite(c).any() else 0.0 for c in X.T])
    info = encoding.feature_info(features, X)
    X = _impute(X, fill)
    mean = X.mean(axis=0)
    std = X.std(axis=0, ddof=1) if options.scale_features else np.ones(X.shape[1])
    scale = np.where(std > 0, std, 1.0)
    Z = (X - mean) / scale
    _, singular, vt = np.linalg.svd(Z, full_matrices=False)
    eigen = singular**2 / (len(Z) - 1)
    ratio = eigen / eigen.sum() if eigen.sum() > 0 else np.zeros_like(eigen)
    if options.num_components is not None:
        if options.num_components > X.shape[1]:
            raise invalid_query(
                f"NUM_PRINCIPAL_COMPONENTS={options.num_components} is more than the {X.shape[1]} feature columns."
            )
        k = options.num_components
    else:
        assert options.variance_ratio is not None
        k = int(np.searchsorted(np.cumsum(ratio), options.variance_ratio - 1e-12) + 1)
        k = min(k, X.shape[1])
    signs = np.where(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)] < 0, -1.0, 1.0)
    components = vt * signs[:, None]
    state: dict[str, Any] = {
        "model_type": "PCA",
        "features": features,
        "fill": fill.tolist(),
        "feature_info": info,
        "pca": {
            "mean": mean.tolist(),
            "scale": scale.tolist(),
            "components": components[:k].tolist(),
            "eigenvalues": eigen.tolist(),
            "scale_features": options.scale_features,
            "solver": options.solver,
        },
    }
    errors = _errors(state, X)
    state["pca"]["error_quantiles"] = np.quantile(errors, np.linspace(0.0, 1.0, QUANTILE_LEVELS)).tolist()
    state["evaluation"] = {"total_explained_variance_ratio": float(ratio[:k].sum())}
    elapsed = (time.perf_counter() - started) * 1000
    state["iterations"] = [{"iteration": 0, "loss": float(errors.mean()), "duration_ms": elapsed}]
    progress.current().iteration(state["iterations"][0])  # the one "iteration" (the SVD) in the job's statistics
    return state, X


def _scaled(state: dict[str, Any], X: np.ndarray) -> np.ndarray:
    p = state["pca"]
    return (X - np.asarray(p["mean"])) / np.asarray(p["scale"])


def _errors(state: dict[str, Any], X: np.ndarray) -> np.ndarray:
    Z = _scaled(state, X)
    C = np.asarray(state["pca"]["components"])
    residual = Z - (Z @ C.T) @ C
    return np.asarray((residual**2).mean(axis=1))


def _features(state: dict[str, Any], rows: pa.Table, function: str) -> np.ndarray:
    return _impute(encoding.encode(state["features"], rows, function), np.asarray(state["fill"]))


def predict(state: dict[str, Any], rows: pa.Table) -> pa.Table:
    projected = _scaled(state, _features(state, rows, "PREDICT")) @ np.asarray(state["pca"]["components"]).T
    out = {f"principal_component_{i + 1}": pa.array(projected[:, i], pa.float64()) for i in range(projected.shape[1])}
    return _with_inputs(out, rows)


def detect_anomalies(state: dict[str, Any], rows: pa.Table, contamination: float) -> pa.Table:
    if not 0.0 <= contamination < 0.5:
        raise invalid_query(f"ML.DETECT_ANOMALIES: contamination must be in [0, 0.5), got {contamination}")
    errors = _errors(state, _features(state, rows, "DETECT_ANOMALIES"))
    levels = np.linspace(0.0, 1.0, QUANTILE_LEVELS)
    threshold = float(np.interp(1.0 - contamination, levels, np.asarray(state["pca"]["error_quantiles"])))
    out = {
        "is_anomaly": pa.array(errors > threshold, pa.bool_()),
        "mean_squared_error": pa.array(errors, pa.float64()),
    }
    return _with_inputs(out, rows)


def evaluation(state: dict[str, Any]) -> pa.Table:
    return pa.table({k: pa.array([v], pa.float64()) for k, v in state["evaluation"].items()})


def principal_components(state: dict[str, Any]) -> pa.Table:
    """ML.PRINCIPAL_COMPONENTS: each component's loading per feature; a STRING feature's per category."""
    C = np.asarray(state["pca"]["components"])
    ids: list[int] = []
    names: list[str] = []
    numbers: list[float | None] = []
    categorical: list[list[dict[str, Any]]] = []
    for i, row in enumerate(C):
        for f, columns in encoding.layout(state["features"]):
            ids.append(i + 1)
            names.append(f["name"])
            if "categories" in f:
                numbers.append(None)
                pairs = zip(f["categories"], row[columns], strict=True)
                categorical.append([{"category": k, "value": float(v)} for k, v in pairs])
            else:
                numbers.append(float(row[columns][0]))
                categorical.append([])
    category = pa.struct([("category", pa.string()), ("value", pa.float64())])
    return pa.table(
        {
            "principal_component_id": pa.array(ids, pa.int64()),
            "feature": pa.array(names, pa.string()),
            "numerical_value": pa.array(numbers, pa.float64()),
            "categorical_value": pa.array(categorical, pa.list_(category)),
        }
    )


def principal_component_info(state: dict[str, Any]) -> pa.Table:
    eigen = np.asarray(state["pca"]["eigenvalues"])[: len(state["pca"]["components"])]
    total = float(np.sum(state["pca"]["eigenvalues"])) or 1.0
    ratio = eigen / total
    return pa.table(
        {
            "principal_component_id": pa.array(range(1, len(eigen) + 1), pa.int64()),
            "eigenvalue": pa.array(eigen, pa.float64()),
            "explained_variance_ratio": pa.array(ratio, pa.float64()),
            "cumulative_explained_variance_ratio": pa.array(np.cumsum(ratio), pa.float64()),
        }
    )
