"""Every CREATE MODEL tracked as an MLflow run, as `hyp train` tracks its training, when a model registry is
configured (MLFLOW_TRACKING_URI set for `hyp bigquery`; the stack sets it): experiment ``bigquery-ml``,
run ``CREATE MODEL <dataset>.<model>``, the statement's options and the model's type, features and rows as
parameters, its evaluation metrics (Davies-Bouldin index, mean squared distance, explained variance,
reconstruction errors), the training seconds and the loss of every iteration (step = iteration).

Only the run is logged: no model artifact and no registered model (BigQuery ML keeps the model in the
dataset; MODEL_REGISTRY='VERTEX_AI' registers one, through vertex.py, whose run this is then). The run is
logged after the model is stored; a registry that does not answer costs the run, not the model: the
statement succeeds and the server logs a warning naming MLFLOW_TRACKING_URI.
"""

from __future__ import annotations

import logging
from typing import Any

from services.bigquery.ml import store
from services.bigquery.ml.settings import settings

EXPERIMENT = "bigquery-ml"
log = logging.getLogger(__name__)


def configured() -> str | None:
    """The tracking URI when MLFLOW_TRACKING_URI was set for this process, else None."""
    config = settings()
    return config.mlflow_tracking_uri.strip() if config.tracking_configured else None


def params(ref: store.ModelRef, state: dict[str, Any], given: dict[str, Any], rows: int) -> dict[str, str]:
    out = {name.lower(): str(value)[:500] for name, value in given.items()}
    out |= {
        "model_type": str(state.get("model_type", "KMEANS")),
        "bigquery_model": f"{ref.project}.{ref.dataset}.{ref.model}",
        "features": ",".join(f["name"] for f in state["features"])[:500],
        "fit_rows": str(rows),
        "source": "bigquery CREATE MODEL",
    }
    return out


def track(ref: store.ModelRef, state: dict[str, Any], given: dict[str, Any], rows: int, seconds: float) -> str | None:
    """Log the run; its id, or None when no registry is configured or it failed (then logged as a warning)."""
    uri = configured()
    if uri is None:
        return None
    try:
        import httpx
        import mlflow

        from models import registry

        # one quick look first: MLflow's own client retries an absent server for minutes
        httpx.get(f"{uri.rstrip('/')}/health", timeout=5.0, trust_env=False).raise_for_status()

        with registry.use_tracking_uri(uri):
            mlflow.set_experiment(EXPERIMENT)
            with mlflow.start_run(run_name=f"CREATE MODEL {ref.dataset}.{ref.model}") as run:
                mlflow.log_params(params(ref, state, given, rows))
                metrics = {k: float(v) for k, v in state.get("evaluation", {}).items() if v is not None}
                mlflow.log_metrics(metrics | {"train_seconds": seconds})
                for it in state.get("iterations", []):
                    mlflow.log_metric("loss", float(it["loss"]), step=int(it["iteration"]))
                mlflow.set_tags({"hyp.model_kind": str(state.get("model_type", "KMEANS")).lower(),
                                 "hyp.source": "bigquery"})  # fmt: skip
                return str(run.info.run_id)
    except Exception as exc:
        log.warning("CREATE MODEL %s: not tracked in MLflow at MLFLOW_TRACKING_URI=%s: %s", ref, uri, exc)
        return None
