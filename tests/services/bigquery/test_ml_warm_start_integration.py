"""CREATE OR REPLACE MODEL ... OPTIONS(WARM_START=TRUE) for k-means through Google's client: training starts from
the existing model's centroids, keeps its options unless overridden, adds a training run, and refuses what
cannot change (NUM_CLUSTERS, STANDARDIZE_FEATURES, DISTANCE_TYPE, MODEL_TYPE, the feature columns).

By hand (STANDARDIZE_FEATURES=FALSE): the first model on x = 0, 1, 2, 10, 11, 12, 13 has centroids 11.5 (id 1)
and 1 (id 2). A warm start on x = 5, 7, 9, 11 with MAX_ITERATIONS=1 is one Lloyd step from 11.5 and 1:
5 is nearer 1 (4 < 6.5), 7, 9 and 11 are nearer 11.5, so the centroids become 9 (id 1, three rows) and
5 (id 2, one row): a split a cold start would not make (the balanced 6 / 10 is far better).
"""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.cloud import bigquery

from tests.services.bigquery.conftest import PROJECT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity(
        "https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-create-kmeans#warm_start"
    ),
]

FIRST = [0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 13.0]
SECOND = [5.0, 7.0, 9.0, 11.0]


def _table(client, dataset: str, name: str, xs: list[float]) -> str:
    table = bigquery.Table(f"{PROJECT}.{dataset}.{name}", schema=[bigquery.SchemaField("x", "FLOAT")])
    client.create_table(table)
    assert client.insert_rows_json(table, [{"x": x} for x in xs]) == []
    return f"{dataset}.{name}"


@pytest.fixture
def model(client, dataset) -> str:
    first = _table(client, dataset, "first", FIRST)
    _table(client, dataset, "second", SECOND)
    client.query_and_wait(
        f"CREATE MODEL {dataset}.m OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2, STANDARDIZE_FEATURES=FALSE, "
        f"MAX_ITERATIONS=10) AS SELECT x FROM {first}"
    )
    return f"{dataset}.m"


def _centroids(client, model: str) -> dict[int, float]:
    rows = client.query_and_wait(f"SELECT centroid_id, numerical_value FROM ML.CENTROIDS(MODEL {model})")
    return {r["centroid_id"]: r["numerical_value"] for r in rows}


def test_warm_start_is_one_lloyd_step_from_the_existing_centroids(client, dataset, model) -> None:
    assert _centroids(client, model) == {1: pytest.approx(11.5), 2: pytest.approx(1.0)}
    client.query_and_wait(
        f"CREATE OR REPLACE MODEL {model} OPTIONS(MODEL_TYPE='KMEANS', WARM_START=TRUE, MAX_ITERATIONS=1) "
        f"AS SELECT x FROM {dataset}.second"
    )
    assert _centroids(client, model) == {1: pytest.approx(9.0), 2: pytest.approx(5.0)}
    info = list(client.query_and_wait(f"SELECT training_run, iteration FROM ML.TRAINING_INFO(MODEL {model})"))
    runs = [(r["training_run"], r["iteration"]) for r in info]
    assert runs[-1] == (1, 0) and all(run == 0 for run, _ in runs[:-1])  # the warm start's iterations from 0
    got = client.get_model(f"{PROJECT}.{model}")
    assert len(got.training_runs) == 2
    options = got.training_runs[-1]["trainingOptions"]
    assert options["warmStart"] is True and options["standardizeFeatures"] is False  # kept from the model
    assert options["numClusters"] == "2" and options["maxIterations"] == "1"


@pytest.mark.parametrize(
    ("extra", "query", "named"),
    [
        ("NUM_CLUSTERS=3", "SELECT x FROM {ds}.second", "NUM_CLUSTERS"),
        ("STANDARDIZE_FEATURES=TRUE", "SELECT x FROM {ds}.second", "STANDARDIZE_FEATURES"),
        ("DISTANCE_TYPE='COSINE'", "SELECT x FROM {ds}.second", "DISTANCE_TYPE"),
        ("KMEANS_INIT_METHOD='RANDOM'", "SELECT x FROM {ds}.second", "KMEANS_INIT_METHOD"),
        ("", "SELECT x AS y FROM {ds}.second", "y"),
        ("", "SELECT x, 2 * x AS z FROM {ds}.second", "z"),
    ],
)
def test_warm_start_refuses_what_cannot_change_and_keeps_the_model(client, dataset, model, extra, query, named) -> None:
    before = client.get_model(f"{PROJECT}.{model}").etag
    options = ", ".join(o for o in ("MODEL_TYPE='KMEANS'", "WARM_START=TRUE", extra) if o)
    with pytest.raises(exceptions.BadRequest, match=named):
        client.query_and_wait(f"CREATE OR REPLACE MODEL {model} OPTIONS({options}) AS {query.format(ds=dataset)}")
    assert client.get_model(f"{PROJECT}.{model}").etag == before
    assert _centroids(client, model) == {1: pytest.approx(11.5), 2: pytest.approx(1.0)}


def test_warm_start_needs_an_existing_kmeans_model(client, dataset, model) -> None:
    with pytest.raises(exceptions.BadRequest, match="existing model"):
        client.query_and_wait(
            f"CREATE OR REPLACE MODEL {dataset}.fresh OPTIONS(MODEL_TYPE='KMEANS', WARM_START=TRUE) "
            f"AS SELECT x FROM {dataset}.second"
        )
    with pytest.raises(exceptions.Conflict, match="Already Exists"):  # without OR REPLACE the name clashes, as always
        client.query_and_wait(
            f"CREATE MODEL {model} OPTIONS(MODEL_TYPE='KMEANS', WARM_START=TRUE) AS SELECT x FROM {dataset}.second"
        )
    client.query_and_wait(
        f"CREATE MODEL {dataset}.p OPTIONS(MODEL_TYPE='PCA', NUM_PRINCIPAL_COMPONENTS=1) "
        f"AS SELECT x, 2 * x AS y FROM {dataset}.first"
    )
    with pytest.raises(exceptions.BadRequest, match="PCA"):
        client.query_and_wait(
            f"CREATE OR REPLACE MODEL {dataset}.p OPTIONS(MODEL_TYPE='KMEANS', WARM_START=TRUE) "
            f"AS SELECT x FROM {dataset}.second"
        )
