from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest

from models import detectors, training
from models.errors import ModelInputError


@pytest.mark.parametrize("kind", ["kmeans", "iforest", "ecod", "copod", "hbos", "lof", "envelope"])
def test_every_kind_fits_and_scores_through_the_one_wrapper(kind: str, purchases: pd.DataFrame) -> None:
    trained = training.fit(kind, purchases)
    out = trained.model.score_rows(purchases.head(50))
    assert list(out.columns[:2]) == ["score", "is_anomaly"]
    assert out["is_anomaly"].dtype == bool and np.isfinite(out["score"]).all()
    assert (out["is_anomaly"] == (out["score"] > trained.threshold)).all()
    if kind == "kmeans":
        assert {"nearest_centroid_id", "normalized_distance"} <= set(out.columns)
        assert out["nearest_centroid_id"].min() >= 1
    assert trained.model.detector.kind == kind == detectors.get(kind).name
    # the wrapper survives a pickle round trip (MLflow stores it that way) and scores the same
    again = pickle.loads(pickle.dumps(trained.model))
    pd.testing.assert_frame_equal(again.score_rows(purchases.head(50)), out)


def test_workshop_shaped_instances_still_score_with_a_rich_model(purchases: pd.DataFrame) -> None:
    trained = training.fit("envelope", purchases)
    out = trained.model.score_rows(
        [{"tax": 8.4, "shipping": 4.9, "value": 40.0}, {"tax": 100.0, "shipping": 0.0, "value": 1_000_000.1}]
    )
    assert out["is_anomaly"].tolist() == [False, True]


def test_kmeans_unsupervised_uses_bqml_contamination(plain_rows: pd.DataFrame) -> None:
    trained = training.fit("kmeans", plain_rows, {"contamination": 0.05, "num_clusters": 3})
    assert "contamination=0.05" in trained.threshold_method
    flagged = trained.model.score_rows(plain_rows)["is_anomaly"].mean()
    assert 0.02 <= flagged <= 0.08


def test_envelope_without_labels_uses_an_inner_quantile_range(purchases: pd.DataFrame, held_out) -> None:
    trained = training.fit("envelope", purchases, unsupervised=True)
    assert trained.params["quantile"] == pytest.approx(0.005)
    metrics = training.evaluate_model(trained.model, held_out)
    assert metrics["recall"] >= 0.5 and metrics["precision"] >= 0.3  # no labels: weaker, but far from nothing


def test_champion_quality_on_a_held_out_generated_set(purchases: pd.DataFrame, held_out: pd.DataFrame) -> None:
    trained = training.fit("envelope", purchases)
    metrics = training.evaluate_model(trained.model, held_out)
    assert metrics["anomalies"] >= 40
    assert metrics["precision"] >= 0.95 and metrics["recall"] >= 0.90
    for key in [k for k in metrics if k.startswith("kind.") and k.endswith(".recall")]:
        assert metrics[key] >= 0.8, key


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda f: f.head(0), "training set is empty"),
        (lambda f: f.head(20), "training set has 20 rows; at least 200"),
        (lambda f: f.drop(columns=["tax"]), "missing column.*tax"),
        (lambda f: f.assign(value=f["value"].where(f.index != 5, np.nan)), "value: row 5 is missing"),
        (lambda f: f.assign(shipping=f["shipping"].where(f.index != 7, np.inf)), "shipping: row 7 is not finite"),
    ],
)
def test_bad_training_input_gets_one_clear_error(purchases: pd.DataFrame, mutate, message: str) -> None:
    with pytest.raises(ModelInputError, match=message):
        training.fit("iforest", mutate(purchases.reset_index(drop=True)))


def test_unknown_model_and_bad_control_params(purchases: pd.DataFrame, plain_rows: pd.DataFrame) -> None:
    with pytest.raises(ModelInputError, match="unknown model 'xgboost'"):
        training.fit("xgboost", purchases)
    with pytest.raises(ModelInputError, match="need labelled rows"):
        training.fit("iforest", plain_rows, {"threshold": "f1"})
    with pytest.raises(ModelInputError, match="fit_on must be"):
        training.fit("iforest", purchases, {"fit_on": "some"})


def test_evaluation_needs_labels(purchases: pd.DataFrame, plain_rows: pd.DataFrame) -> None:
    trained = training.fit("hbos", purchases)
    with pytest.raises(ModelInputError, match="no labels"):
        training.evaluate_model(trained.model, plain_rows)


def test_kmeans_cluster_mapping_is_stored_with_labels(purchases: pd.DataFrame) -> None:
    trained = training.fit("kmeans", purchases, {"num_clusters": 4})
    mapping = trained.cluster_mapping
    assert sum(mapping["sizes"].values()) == len(purchases)
    assert set(mapping["anomaly_share"]) <= set(mapping["sizes"])
    assert all(1 <= c <= 4 for c in mapping["anomaly_centroid_ids"])
