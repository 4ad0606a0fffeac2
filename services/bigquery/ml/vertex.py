"""MODEL_REGISTRY='VERTEX_AI': the model trained by CREATE MODEL is also registered in the stack's registry
(MLflow, standing in for Vertex AI's Model Registry) exactly as ``hyp train --model kmeans`` registers
one, so the endpoint and the detector can serve it: VERTEX_AI_MODEL_ID names the registered model (the
BigQuery model id by default, as on BigQuery), VERTEX_AI_MODEL_VERSION_ALIASES are set on the new
version (``champion`` through the registry's history, as a promotion).

The registry is the one MLFLOW_TRACKING_URI names; an unreachable one is a 400 naming it, and then
nothing is registered nor stored.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from services.bigquery.ml import kmeans, options
from services.bigquery.sql import invalid_query

EXPERIMENT = "bigquery-ml"
CONTAMINATION = 0.01  # the served threshold, as `hyp train` decides it by default
SERVED = ("tax", "shipping", "value")  # the model contract's instance shape


def tracking_uri() -> str:
    from services.bigquery.settings import BigQuerySettings

    uri = BigQuerySettings().mlflow_tracking_uri.strip()
    if not uri:
        raise invalid_query("MODEL_REGISTRY='VERTEX_AI' needs a model registry: MLFLOW_TRACKING_URI is not set.")
    return uri


def check(state: dict[str, Any], uri: str) -> None:
    """Before anything is stored: the features are the served ones and the registry answers."""
    import httpx

    names = [f["name"] for f in state["features"]]
    if sorted(names) != sorted(SERVED):
        raise invalid_query(
            f"MODEL_REGISTRY='VERTEX_AI': the endpoint serves models of {', '.join(SERVED)}; "
            f"this model's features are {', '.join(names)}."
        )
    try:
        httpx.get(f"{uri.rstrip('/')}/health", timeout=5.0, trust_env=False).raise_for_status()
    except httpx.HTTPError as exc:
        raise invalid_query(
            f"MODEL_REGISTRY='VERTEX_AI': the model registry at MLFLOW_TRACKING_URI={uri} does not answer ({exc})."
        ) from None


def register(state: dict[str, Any], chosen: options.KMeansOptions, model_id: str, uri: str, rows: np.ndarray) -> str:
    """Log and register as `hyp train` does (no promotion gate: there are no labels); the new version."""
    import pandas as pd

    from models import registry
    from models.detectors.kmeans import KMeansDetector
    from models.pyfunc import AnomalyModel
    from models.training import Trained, log_and_register

    names = [f["name"] for f in state["features"]]
    order = [names.index(c) for c in SERVED]  # the detector's column order
    model = kmeans.restore(state)
    model.mean_, model.scale_ = model.mean_[order], model.scale_[order]
    model.centroids_ = model.centroids_[:, order]
    k = state["kmeans"]
    params = {k2: k[k2] for k2 in ("num_clusters", "standardize_features", "max_iterations", "seed")}
    detector = KMeansDetector(params=dict(params), feature_set="base")
    detector.model = model
    threshold = model.contamination_threshold(CONTAMINATION)
    how = f"BQML contamination={CONTAMINATION}"
    fill = np.asarray(state["fill"])[order]
    frame = pd.DataFrame(rows[:, order], columns=list(SERVED))
    info = {"kind": "kmeans", "threshold": threshold, "threshold_method": how, "fit_on": "all", "features": SERVED}
    trained = Trained(
        AnomalyModel(detector, threshold, fill, info),
        "kmeans",
        {**detector.describe(), "fit_on": "all", "threshold_method": "contamination", "contamination": CONTAMINATION},
        threshold,
        how,
        len(rows),
        sum(it["duration_ms"] for it in state["iterations"]) / 1000,
        detector.cluster_mapping(None, frame.to_numpy()),
        {m: math.nan for m in ("precision", "recall", "f1", "roc_auc", "pr_auc")},  # no labels in SQL
    )
    done = log_and_register(
        trained,
        frame,
        tracking_uri=uri,
        experiment=EXPERIMENT,
        model_name=model_id,
        promote="never",
        extra_params={"source": "bigquery CREATE MODEL", **chosen.given},
        run_name=f"CREATE MODEL {model_id}",
    )
    version = str(done.version)
    client = registry.client(uri)
    for alias in chosen.vertex_aliases:
        if alias == registry.ALIAS:
            reason = "CREATE MODEL ... VERTEX_AI_MODEL_VERSION_ALIASES"
            registry.set_champion(client, version, action="promote", reason=reason, name=model_id)
        else:
            client.set_registered_model_alias(model_id, alias, version)
    return version
