"""The models API through Google's client (get_model, list_models, update_model, delete_model) over models
made with CREATE MODEL, against a real `hyp bigquery` process (tests/services/bigquery/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from google.api_core import exceptions
from google.cloud import bigquery

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/rest/v2/models"),
]


@pytest.fixture
def model(client: bigquery.Client) -> Iterator[str]:
    client.create_dataset("models_api", exists_ok=True)
    client.query_and_wait(
        "CREATE OR REPLACE MODEL models_api.m OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2, STANDARDIZE_FEATURES=FALSE) "
        "AS SELECT CAST(x AS FLOAT64) AS x FROM UNNEST([0, 1, 2, 10, 11, 12, 13]) AS x"
    )
    yield "models_api.m"
    client.delete_dataset("models_api", delete_contents=True, not_found_ok=True)


def test_get_model_has_type_features_and_training_runs(client: bigquery.Client, model: str) -> None:
    got = client.get_model(model)
    assert got.model_type == "KMEANS" and got.model_id == "m" and got.location == "US"
    assert [(f.name, f.type.type_kind.name) for f in got.feature_columns] == [("x", "FLOAT64")]
    run = got.training_runs[0]
    assert run["trainingOptions"]["numClusters"] == "2"
    clustering = run["evaluationMetrics"]["clusteringMetrics"]
    assert clustering["meanSquaredDistance"] == pytest.approx(1.0)  # hand-checked in test_ml_integration.py
    assert sorted(c["count"] for c in clustering["clusters"]) == ["3", "4"]


def test_list_update_delete(client: bigquery.Client, model: str) -> None:
    assert [m.model_id for m in client.list_models("models_api")] == ["m"]
    got = client.get_model(model)
    got.description, got.labels = "hand-checked", {"lab": "one"}
    updated = client.update_model(got, ["description", "labels"])
    assert (updated.description, updated.labels) == ("hand-checked", {"lab": "one"})
    assert client.get_model(model).labels == {"lab": "one"}
    with pytest.raises(exceptions.PreconditionFailed):  # got's etag is stale now
        got.description = "again"
        client.update_model(got, ["description"])
    client.delete_model(model)
    with pytest.raises(exceptions.NotFound, match="Not found: Model"):
        client.get_model(model)
    assert list(client.list_models("models_api")) == []
