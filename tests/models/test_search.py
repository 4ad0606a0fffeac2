"""Hyperparameter search: one nested MLflow run per trial (sqlite tracking store, no server)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd

from models import detectors, registry, training


def test_search_logs_child_runs_and_returns_the_best_params(purchases: pd.DataFrame, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with registry.use_tracking_uri(uri):
        mlflow.set_experiment("search-test")
        with mlflow.start_run(run_name="parent") as parent:
            best = training.search("hbos", purchases, 3, seed=1, metric="f1", base_params={}, min_rows=200)
        children = mlflow.search_runs(filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 3
    assert "metrics.f1" in children.columns and children["metrics.f1"].notna().all()
    assert best["n_bins"] in detectors.get("hbos").search_space["n_bins"]
    top = children[children["metrics.f1"] == children["metrics.f1"].max()]
    assert str(best["n_bins"]) in set(top["params.n_bins"])
