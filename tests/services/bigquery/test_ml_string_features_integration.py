"""STRING feature columns through Google's client: one-hot encoded as BigQuery ML's automatic preprocessing does
(vocabulary sorted, NULL one more category, an unseen value all zeros), for KMEANS and PCA, with ML.CENTROIDS'
categorical_value, ML.FEATURE_INFO's category_count and get_model's categoryCounts.

K-means by hand (STANDARDIZE_FEATURES=FALSE), rows (x, colour): (0, red) (1, red) (2, blue) (10, blue)
(11, blue) (12, blue) (13, NULL). Vocabulary: blue, red, NULL. Clusters: x 10..13 (id 1, 4 rows: x 11.5,
blue 3/4, red 0, NULL 1/4) and x 0..2 (id 2, 3 rows: x 1, blue 1/3, red 2/3, NULL 0).
(1, red) -> id 2 at sqrt((1/3)^2 + (1/3)^2) = sqrt(2)/3; (1, green), unseen -> all zeros -> sqrt(5)/3.

PCA by hand (SCALE_FEATURES=FALSE) on colour a, a, b, b: encoded (1, 0) (1, 0) (0, 1) (0, 1), centred +-0.5;
the one component is (1, -1)/sqrt(2) (sign: the first of the equal largest loadings positive), so a -> 1/sqrt(2),
b -> -1/sqrt(2), an unseen c -> 0; explained variance ratio 1.
"""

from __future__ import annotations

import math

import pytest
from google.api_core import exceptions
from google.cloud import bigquery

from tests.services.bigquery.conftest import PROJECT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/auto-preprocessing#one_hot_encoding"),
]

ROWS = [(0, "red"), (1, "red"), (2, "blue"), (10, "blue"), (11, "blue"), (12, "blue"), (13, None)]
OPTIONS = "MODEL_TYPE='KMEANS', NUM_CLUSTERS=2, STANDARDIZE_FEATURES=FALSE"


@pytest.fixture
def model(client, dataset) -> str:
    table = bigquery.Table(
        f"{PROJECT}.{dataset}.points",
        schema=[bigquery.SchemaField("x", "FLOAT"), bigquery.SchemaField("colour", "STRING")],
    )
    client.create_table(table)
    assert client.insert_rows_json(table, [{"x": x, "colour": c} for x, c in ROWS]) == []
    client.query_and_wait(f"CREATE MODEL {dataset}.m OPTIONS({OPTIONS}) AS SELECT x, colour FROM {dataset}.points")
    return f"{dataset}.m"


def test_kmeans_centroids_hold_each_category_weight(client, model) -> None:
    rows = list(client.query_and_wait(f"SELECT * FROM ML.CENTROIDS(MODEL {model}) ORDER BY centroid_id, feature"))
    got = {(r["centroid_id"], r["feature"]): r for r in rows}
    assert got[(1, "x")]["numerical_value"] == pytest.approx(11.5)
    assert got[(2, "x")]["numerical_value"] == pytest.approx(1.0)
    assert got[(1, "colour")]["numerical_value"] is None
    assert [(c["category"], c["value"]) for c in got[(1, "colour")]["categorical_value"]] == [
        ("blue", pytest.approx(0.75)),
        ("red", pytest.approx(0.0)),
        (None, pytest.approx(0.25)),
    ]
    assert [c["value"] for c in got[(2, "colour")]["categorical_value"]] == pytest.approx([1 / 3, 2 / 3, 0])


def test_kmeans_predict_encodes_new_rows_with_the_training_vocabulary(client, model) -> None:
    sql = (
        "SELECT colour, CENTROID_ID, NEAREST_CENTROIDS_DISTANCE[OFFSET(0)].DISTANCE AS d "
        f"FROM ML.PREDICT(MODEL {model}, "
        "(SELECT 1.0 AS x, 'red' AS colour UNION ALL SELECT 1.0, 'green')) ORDER BY colour DESC"
    )
    rows = [dict(r.items()) for r in client.query_and_wait(sql)]
    assert [r["CENTROID_ID"] for r in rows] == [2, 2]
    assert [r["d"] for r in rows] == pytest.approx([math.sqrt(2) / 3, math.sqrt(5) / 3])


def test_feature_info_and_model_resource_describe_the_string_column(client, model) -> None:
    info = {r["input"]: r for r in client.query_and_wait(f"SELECT * FROM ML.FEATURE_INFO(MODEL {model})")}
    assert info["colour"]["category_count"] == 2 and info["colour"]["null_count"] == 1
    assert info["colour"]["mean"] is None and info["x"]["category_count"] is None and info["x"]["mean"] == 7
    got = client.get_model(f"{PROJECT}.{model}")
    kinds = [(c.name, c.type.type_kind.name) for c in got.feature_columns]
    assert kinds == [("x", "FLOAT64"), ("colour", "STRING")]
    clusters = got.training_runs[0]["evaluationMetrics"]["clusteringMetrics"]["clusters"]
    colour = next(v for v in clusters[0]["featureValues"] if v["featureColumn"] == "colour")
    counts = [(c.get("category"), c["count"]) for c in colour["categoricalValue"]["categoryCounts"]]
    assert counts == [("blue", "3"), ("red", "0"), (None, "1")]


def test_pca_one_hot_by_hand(client, dataset) -> None:
    client.query_and_wait(
        f"CREATE MODEL {dataset}.p OPTIONS(MODEL_TYPE='PCA', NUM_PRINCIPAL_COMPONENTS=1, SCALE_FEATURES=FALSE) AS "
        "SELECT c FROM UNNEST(['a', 'a', 'b', 'b']) AS c"
    )
    rows = list(
        client.query_and_wait(
            f"SELECT c, principal_component_1 AS p FROM ML.PREDICT(MODEL {dataset}.p, "
            "(SELECT c FROM UNNEST(['a', 'b', 'c']) AS c)) ORDER BY c"
        )
    )
    assert [r["p"] for r in rows] == pytest.approx([1 / math.sqrt(2), -1 / math.sqrt(2), 0.0])
    loadings = list(client.query_and_wait(f"SELECT * FROM ML.PRINCIPAL_COMPONENTS(MODEL {dataset}.p)"))
    assert [(v["category"], v["value"]) for v in loadings[0]["categorical_value"]] == [
        ("a", pytest.approx(1 / math.sqrt(2))),
        ("b", pytest.approx(-1 / math.sqrt(2))),
    ]


def test_a_string_feature_given_numbers_at_predict_time_is_named(client, model) -> None:
    with pytest.raises(exceptions.BadRequest, match="Column colour is not found"):
        client.query_and_wait(f"SELECT * FROM ML.PREDICT(MODEL {model}, (SELECT 1.0 AS x))")
