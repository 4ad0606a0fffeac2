"""BigQuery ML through Google's client against a real `hyp bigquery`: CREATE MODEL ... KMEANS, DROP MODEL,
and ML.PREDICT / DETECT_ANOMALIES / CENTROIDS / EVALUATE / FEATURE_INFO / TRAINING_INFO on tiny tables
whose centroids, distances and contamination thresholds are worked out by hand below.

Hand-checked table (STANDARDIZE_FEATURES=FALSE): x = 0, 1, 2 (cluster A) and 10, 11, 12, 13 (cluster B).
Centroids: B = 11.5 (id 1: the larger cluster), A = 1 (id 2). Distances of the training rows to their
centroid: A 1, 0, 1 (median 1), B 1.5, 0.5, 0.5, 1.5 (median 1), so normalized distances equal the
distances: sorted 0, .5, .5, 1, 1, 1.5, 1.5; contamination 0.2 -> the 0.8 quantile (linear) = 1.4.
Mean squared distance = 7 / 7 = 1; Davies-Bouldin = (2/3 + 1) / 10.5.
"""

from __future__ import annotations

import math

import pytest
from google.api_core import exceptions
from google.cloud import bigquery

from tests.services.bigquery.conftest import PROJECT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity(
        "https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-create-kmeans"
    ),
]

XS = [0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 13.0]
OPTIONS = "MODEL_TYPE='KMEANS', NUM_CLUSTERS=2, STANDARDIZE_FEATURES=FALSE"


def _rows(client, sql: str) -> list[dict]:
    return [dict(r.items()) for r in client.query_and_wait(sql)]


@pytest.fixture
def points(client, dataset) -> str:
    table = bigquery.Table(
        f"{PROJECT}.{dataset}.points",
        schema=[bigquery.SchemaField("id", "INTEGER"), bigquery.SchemaField("x", "FLOAT"),
                bigquery.SchemaField("label", "STRING"), bigquery.SchemaField("seed", "BOOLEAN")],
    )  # fmt: skip
    client.create_table(table)
    rows = [{"id": i, "x": x, "label": "a" if x < 5 else "b", "seed": x in (0.0, 13.0)} for i, x in enumerate(XS)]
    assert client.insert_rows_json(table, rows) == []
    return f"{dataset}.points"


@pytest.fixture
def model(client, dataset, points) -> str:
    client.query_and_wait(f"CREATE MODEL {dataset}.m OPTIONS({OPTIONS}) AS SELECT x FROM {points}")
    return f"{dataset}.m"


def test_create_model_then_predict_by_hand(client, dataset, points, model) -> None:
    job = client.query(f"CREATE OR REPLACE MODEL {model} OPTIONS({OPTIONS}) AS SELECT x FROM {points}")
    job.result()
    assert job.statement_type == "CREATE_MODEL"
    # the finished job's statistics.query.mlStatistics, as BigQuery reports a CREATE MODEL's training
    ml = job._properties["statistics"]["query"]["mlStatistics"]  # the client has no accessor for it
    assert ml["modelType"] == "KMEANS" and ml["trainingType"] == "SINGLE_TRAINING"
    rows = _rows(
        client, f"SELECT * FROM ML.PREDICT(MODEL `{PROJECT}.{model}`, (SELECT id, x FROM {points})) ORDER BY id"
    )
    assert [r["CENTROID_ID"] for r in rows] == [2, 2, 2, 1, 1, 1, 1]
    assert rows[0]["NEAREST_CENTROIDS_DISTANCE"] == [
        {"CENTROID_ID": 2, "DISTANCE": pytest.approx(1.0)},
        {"CENTROID_ID": 1, "DISTANCE": pytest.approx(11.5)},
    ]
    assert [r["x"] for r in rows] == XS and list(rows[0]) == ["CENTROID_ID", "NEAREST_CENTROIDS_DISTANCE", "id", "x"]


def test_detect_anomalies_threshold_by_hand(client, points, model) -> None:
    sql = f"""SELECT x, is_anomaly, normalized_distance, centroid_id
              FROM ML.DETECT_ANOMALIES(MODEL {model}, STRUCT(0.2 AS contamination), TABLE {points}) ORDER BY x"""
    rows = _rows(client, sql)
    assert [r["normalized_distance"] for r in rows] == pytest.approx([1, 0, 1, 1.5, 0.5, 0.5, 1.5])
    assert [r["x"] for r in rows if r["is_anomaly"]] == [10.0, 13.0]  # 1.5 > 1.4, the 0.8 quantile
    new = _rows(
        client,
        f"SELECT x, is_anomaly, normalized_distance FROM ML.DETECT_ANOMALIES(MODEL {model}, "
        "STRUCT(0.2 AS contamination), (SELECT 5.0 AS x UNION ALL SELECT 11.9 AS x)) ORDER BY x",
    )
    assert [(r["is_anomaly"], r["normalized_distance"]) for r in new] == [
        (True, pytest.approx(4.0)),
        (False, pytest.approx(0.4)),
    ]


def test_centroids_evaluate_feature_info_training_info(client, model) -> None:
    centroids = _rows(
        client, f"SELECT centroid_id, feature, numerical_value FROM ML.CENTROIDS(MODEL {model}) ORDER BY 1"
    )
    assert centroids == [
        {"centroid_id": 1, "feature": "x", "numerical_value": pytest.approx(11.5)},
        {"centroid_id": 2, "feature": "x", "numerical_value": pytest.approx(1.0)},
    ]
    (metrics,) = _rows(client, f"SELECT * FROM ML.EVALUATE(MODEL {model})")
    assert metrics == {
        "davies_bouldin_index": pytest.approx((2 / 3 + 1) / 10.5),
        "mean_squared_distance": pytest.approx(1.0),
    }
    (info,) = _rows(client, f"SELECT * FROM ML.FEATURE_INFO(MODEL {model})")
    assert (info["input"], info["min"], info["max"], info["mean"], info["median"]) == ("x", 0, 13, 7, 10)
    assert info["stddev"] == pytest.approx(math.sqrt(196 / 6)) and info["null_count"] == 0
    training = _rows(client, f"SELECT * FROM ML.TRAINING_INFO(MODEL {model})")
    assert training[-1]["training_run"] == 0 and training[-1]["loss"] == pytest.approx(1.0)
    assert sorted((c["centroid_id"], c["cluster_size"]) for c in training[-1]["cluster_info"]) == [(1, 4), (2, 3)]


def test_ml_functions_inside_ctas_join_and_subquery(client, dataset, points, model) -> None:
    client.query_and_wait(
        f"CREATE TABLE {dataset}.labelled AS SELECT id, CENTROID_ID AS cluster "
        f"FROM ML.PREDICT(MODEL {model}, TABLE {points})"
    )
    joined = _rows(
        client,
        f"SELECT l.cluster, COUNT(*) AS n FROM {dataset}.labelled AS l "
        f"JOIN (SELECT id FROM ML.DETECT_ANOMALIES(MODEL {model}, STRUCT(0.2 AS contamination), TABLE {points}) "
        "WHERE is_anomaly) AS a ON a.id = l.id GROUP BY 1",
    )
    assert joined == [{"cluster": 1, "n": 2}]


def test_standardized_distances(client, dataset, points) -> None:
    client.query_and_wait(
        f"CREATE MODEL {dataset}.s OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2) AS SELECT x FROM {points}"
    )
    (row,) = _rows(
        client, f"SELECT NEAREST_CENTROIDS_DISTANCE AS d FROM ML.PREDICT(MODEL {dataset}.s, (SELECT 0.0 AS x))"
    )
    assert row["d"][0]["DISTANCE"] == pytest.approx(1.0 / math.sqrt(196 / 6))  # |0 - 1| / stddev


def test_custom_init_and_early_stop(client, dataset, points) -> None:
    client.query_and_wait(
        f"CREATE MODEL {dataset}.c OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2, KMEANS_INIT_METHOD='CUSTOM', "
        f"KMEANS_INIT_COL='seed', STANDARDIZE_FEATURES=FALSE, EARLY_STOP=TRUE, MIN_REL_PROGRESS=0.01, "
        f"MAX_ITERATIONS=5) AS SELECT x, seed FROM {points}"
    )
    features = _rows(client, f"SELECT DISTINCT feature FROM ML.CENTROIDS(MODEL {dataset}.c)")
    assert features == [{"feature": "x"}]  # the init column is not a feature
    losses = [
        r["loss"] for r in _rows(client, f"SELECT loss FROM ML.TRAINING_INFO(MODEL {dataset}.c) ORDER BY iteration")
    ]
    # seeds 0 and 13 are the first centroids: squared distances 0, 1, 4 | 9, 4, 1, 0 (x=10 nearer 13)
    assert losses[0] == pytest.approx((0 + 1 + 4 + 9 + 4 + 1 + 0) / 7)
    assert losses[-1] == pytest.approx(1.0) and len(losses) < 5  # converged to 1 and 11.5, stopped early


def test_cosine_distance(client, dataset) -> None:
    """Directions (1,0), (2,0) and (0,1), (0,3): centroids (1.5,0) and (0,2); (1,1) is 1 - 1/sqrt(2) from both."""
    table = bigquery.Table(f"{PROJECT}.{dataset}.dirs", schema=[bigquery.SchemaField(n, "FLOAT") for n in "ab"])
    client.create_table(table)
    assert (
        client.insert_rows_json(table, [{"a": 1, "b": 0}, {"a": 2, "b": 0}, {"a": 0, "b": 1}, {"a": 0, "b": 3}]) == []
    )
    client.query_and_wait(
        f"CREATE MODEL {dataset}.cos OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2, DISTANCE_TYPE='COSINE', "
        f"STANDARDIZE_FEATURES=FALSE, KMEANS_INIT_METHOD='RANDOM') AS SELECT a, b FROM {dataset}.dirs"
    )
    rows = _rows(
        client,
        f"SELECT a, NEAREST_CENTROIDS_DISTANCE AS d FROM ML.PREDICT(MODEL {dataset}.cos, "
        "(SELECT 1.0 AS a, 1.0 AS b UNION ALL SELECT 3.0, 0.0)) ORDER BY a",
    )
    assert [e["DISTANCE"] for e in rows[0]["d"]] == pytest.approx([1 - 1 / math.sqrt(2)] * 2)
    assert [e["DISTANCE"] for e in rows[1]["d"]] == pytest.approx([0.0, 1.0])


def test_drop_model(client, dataset, model) -> None:
    assert client.query(f"DROP MODEL {model}").result() is not None
    with pytest.raises(exceptions.NotFound, match="Not found: Model"):
        client.query_and_wait(f"SELECT * FROM ML.CENTROIDS(MODEL {model})")
    client.query_and_wait(f"DROP MODEL IF EXISTS {model}")
    with pytest.raises(exceptions.NotFound, match="Not found: Model"):
        client.query_and_wait(f"DROP MODEL {model}")


def test_existing_name_if_not_exists_and_or_replace(client, dataset, points, model) -> None:
    with pytest.raises(exceptions.Conflict, match=f"Already Exists: Model {PROJECT}:{model}"):
        client.query_and_wait(f"CREATE MODEL {model} OPTIONS({OPTIONS}) AS SELECT x FROM {points}")
    other = f"SELECT x + 100 AS x FROM {points}"
    client.query_and_wait(f"CREATE MODEL IF NOT EXISTS {model} OPTIONS({OPTIONS}) AS {other}")  # kept as it was
    centroid = f"SELECT numerical_value FROM ML.CENTROIDS(MODEL {model}) WHERE centroid_id = 2"
    assert _rows(client, centroid) == [{"numerical_value": pytest.approx(1.0)}]
    client.query_and_wait(f"CREATE OR REPLACE MODEL {model} OPTIONS({OPTIONS}) AS {other}")
    assert _rows(client, centroid) == [{"numerical_value": pytest.approx(101.0)}]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("NUM_CLUSTERS=2", "Option MODEL_TYPE is required"),
        ("MODEL_TYPE='KMEANS', NUM_CLUSTERS=2, COLOUR='blue'", "Unknown option COLOUR"),
        ("MODEL_TYPE='PCA', NUM_PRINCIPAL_COMPONENTS=1, WARM_START=TRUE", "Option WARM_START .* is not supported"),
        ("MODEL_TYPE='LINEAR_REG'", "MODEL_TYPE 'LINEAR_REG' is not supported by hyp bigquery yet"),
        ("MODEL_TYPE='AUTOENCODER', DROPOUT=0.2", "Option DROPOUT"),
        ("MODEL_TYPE='PCA'", "exactly one of NUM_PRINCIPAL_COMPONENTS and PCA_EXPLAINED_VARIANCE_RATIO"),
        ("MODEL_TYPE='PCA', NUM_PRINCIPAL_COMPONENTS=1, MODEL_REGISTRY='VERTEX_AI'", "Option MODEL_REGISTRY"),
        ("MODEL_TYPE='KMEANS', DISTANCE_TYPE='MANHATTAN'", "Invalid value for option DISTANCE_TYPE"),
        ("MODEL_TYPE='KMEANS', NUM_CLUSTERS=1", "Invalid value for option NUM_CLUSTERS"),
        ("MODEL_TYPE='KMEANS', KMEANS_INIT_METHOD='CUSTOM'", "KMEANS_INIT_COL"),
        ("MODEL_TYPE='KMEANS', VERTEX_AI_MODEL_ID='m'", "need MODEL_REGISTRY='VERTEX_AI'"),
    ],
)
def test_bad_options_are_named_and_nothing_is_stored(client, dataset, points, options, message) -> None:
    with pytest.raises(exceptions.BadRequest, match=message):
        client.query_and_wait(f"CREATE MODEL {dataset}.bad OPTIONS({options}) AS SELECT x FROM {points}")
    with pytest.raises(exceptions.NotFound, match="Not found: Model"):
        client.query_and_wait(f"SELECT * FROM ML.FEATURE_INFO(MODEL {dataset}.bad)")


def test_a_feature_it_cannot_encode_is_named(client, dataset, points) -> None:
    # STRING columns are one-hot encoded (test_ml_string_features_integration.py); an ARRAY is not a feature
    with pytest.raises(exceptions.BadRequest, match="Feature column xs has type ARRAY"):
        client.query_and_wait(f"CREATE MODEL {dataset}.bad OPTIONS({OPTIONS}) AS SELECT x, [x] AS xs FROM {points}")
    with pytest.raises(exceptions.NotFound, match="Not found: Model"):
        client.query_and_wait(f"SELECT * FROM ML.FEATURE_INFO(MODEL {dataset}.bad)")


def test_bad_function_input_is_named(client, points, model) -> None:
    with pytest.raises(exceptions.BadRequest, match="Column x is not found in the input data to the PREDICT function"):
        client.query_and_wait(f"SELECT * FROM ML.PREDICT(MODEL {model}, (SELECT id FROM {points}))")
    with pytest.raises(exceptions.BadRequest, match="needs STRUCT\\(<fraction> AS contamination\\)"):
        client.query_and_wait(f"SELECT * FROM ML.DETECT_ANOMALIES(MODEL {model}, TABLE {points})")
    with pytest.raises(exceptions.BadRequest, match="contamination must be in"):
        client.query_and_wait(
            f"SELECT * FROM ML.DETECT_ANOMALIES(MODEL {model}, STRUCT(0.7 AS contamination), TABLE {points})"
        )
    with pytest.raises(exceptions.BadRequest, match="has no argument threshold"):
        client.query_and_wait(
            f"SELECT * FROM ML.DETECT_ANOMALIES(MODEL {model}, STRUCT(0.1 AS threshold), TABLE {points})"
        )
    with pytest.raises(exceptions.BadRequest, match=r"ML\.PREDICT is a table function"):
        client.query_and_wait(f"SELECT (SELECT COUNT(*) FROM {points}) + ML.PREDICT(MODEL {model}, TABLE {points})")


def test_nested_functions_cte_and_insert_select(client, dataset, points, model) -> None:
    nested = _rows(
        client,
        f"WITH flagged AS (SELECT * FROM ML.DETECT_ANOMALIES(MODEL {model}, STRUCT(0.2 AS contamination), "
        f"(SELECT x FROM ML.PREDICT(MODEL {model}, TABLE {points}) WHERE CENTROID_ID = 1))) "
        "SELECT x FROM flagged WHERE is_anomaly ORDER BY x",
    )
    assert nested == [{"x": 10.0}, {"x": 13.0}]
    client.query_and_wait(f"CREATE TABLE {dataset}.flags (x FLOAT64, anomaly BOOL)")
    client.query_and_wait(
        f"INSERT INTO {dataset}.flags SELECT x, is_anomaly FROM ML.DETECT_ANOMALIES(MODEL {model}, "
        f"STRUCT(0.2 AS contamination), TABLE {points})"
    )
    assert _rows(client, f"SELECT COUNTIF(anomaly) AS n, COUNT(*) AS total FROM {dataset}.flags") == [
        {"n": 2, "total": 7}
    ]


def test_ml_function_in_a_view_is_refused(client, dataset, points, model) -> None:
    with pytest.raises(exceptions.BadRequest, match="ML functions inside a view are not supported"):
        client.query_and_wait(f"CREATE VIEW {dataset}.v AS SELECT * FROM ML.PREDICT(MODEL {model}, TABLE {points})")
    with pytest.raises(exceptions.NotFound):
        client.get_table(f"{dataset}.v")


def test_pca_by_hand(client, dataset) -> None:
    """(0,0), (1,2), (2,4), (3,6): one component along (1,2)/sqrt(5) around the mean (1.5,3), eigenvalue
    (7.5^2 + 2.5^2 + 2.5^2 + 7.5^2) / 5 / 3 = 25/3; (3.5,2) is (2,-1) off the mean, orthogonal to it:
    projection 0, reconstruction error (4 + 1) / 2 = 2.5; training errors are 0."""
    table = bigquery.Table(f"{PROJECT}.{dataset}.line", schema=[bigquery.SchemaField(n, "FLOAT") for n in "ab"])
    client.create_table(table)
    assert client.insert_rows_json(table, [{"a": i, "b": 2 * i} for i in range(4)]) == []
    client.query_and_wait(
        f"CREATE MODEL {dataset}.p OPTIONS(MODEL_TYPE='PCA', NUM_PRINCIPAL_COMPONENTS=1, SCALE_FEATURES=FALSE) "
        f"AS SELECT a, b FROM {dataset}.line"
    )
    rows = _rows(client, f"SELECT * FROM ML.PREDICT(MODEL {dataset}.p, TABLE {dataset}.line) ORDER BY a")
    assert [r["principal_component_1"] for r in rows] == pytest.approx(
        [v / math.sqrt(5) for v in (-7.5, -2.5, 2.5, 7.5)]
    )
    assert list(rows[0]) == ["principal_component_1", "a", "b"]
    found = _rows(
        client,
        f"SELECT a, is_anomaly, mean_squared_error FROM ML.DETECT_ANOMALIES(MODEL {dataset}.p, "
        "STRUCT(0.1 AS contamination), (SELECT 3.5 AS a, 2.0 AS b UNION ALL SELECT 1.5, 3.0)) ORDER BY a",
    )
    assert [(r["is_anomaly"], r["mean_squared_error"]) for r in found] == [
        (False, pytest.approx(0.0, abs=1e-12)),
        (True, pytest.approx(2.5)),
    ]
    (info,) = _rows(client, f"SELECT * FROM ML.PRINCIPAL_COMPONENT_INFO(MODEL {dataset}.p)")
    assert (info["eigenvalue"], info["explained_variance_ratio"]) == (pytest.approx(25 / 3), pytest.approx(1.0))
    loadings = _rows(client, f"SELECT feature, numerical_value FROM ML.PRINCIPAL_COMPONENTS(MODEL {dataset}.p)")
    assert loadings == [
        {"feature": "a", "numerical_value": pytest.approx(1 / math.sqrt(5))},
        {"feature": "b", "numerical_value": pytest.approx(2 / math.sqrt(5))},
    ]
    assert _rows(client, f"SELECT * FROM ML.EVALUATE(MODEL {dataset}.p)") == [
        {"total_explained_variance_ratio": pytest.approx(1.0)}
    ]
    with pytest.raises(exceptions.BadRequest, match=r"ML\.CENTROIDS needs a KMEANS model"):
        client.query_and_wait(f"SELECT * FROM ML.CENTROIDS(MODEL {dataset}.p)")


def test_autoencoder_on_the_models_package_network(client, dataset) -> None:
    """The Keras autoencoder of models/detectors/autoencoder.py: ML.DETECT_ANOMALIES flags exactly the rows whose
    reconstruction error is above the 1 - contamination quantile of the training rows' errors."""
    import numpy as np

    rng = np.random.default_rng(5)
    a = rng.normal(10, 1, 60)
    rows = [{"a": float(x), "b": float(2 * x + rng.normal(0, 0.1))} for x in a]
    table = bigquery.Table(f"{PROJECT}.{dataset}.pairs", schema=[bigquery.SchemaField(n, "FLOAT") for n in "ab"])
    client.create_table(table)
    assert client.insert_rows_json(table, rows) == []
    client.query_and_wait(
        f"CREATE MODEL {dataset}.ae OPTIONS(MODEL_TYPE='AUTOENCODER', HIDDEN_UNITS=[4, 2, 4], MAX_ITERATIONS=5, "
        f"BATCH_SIZE=16, LEARN_RATE=0.01, ACTIVATION_FN='RELU') AS SELECT a, b FROM {dataset}.pairs"
    )
    found = _rows(
        client,
        f"SELECT is_anomaly, mean_squared_error FROM ML.DETECT_ANOMALIES(MODEL {dataset}.ae, "
        f"STRUCT(0.1 AS contamination), TABLE {dataset}.pairs)",
    )
    errors = np.array([r["mean_squared_error"] for r in found])
    assert [r["is_anomaly"] for r in found] == list(errors > np.quantile(errors, 0.9))
    latent = _rows(client, f"SELECT * FROM ML.PREDICT(MODEL {dataset}.ae, (SELECT 10.0 AS a, 20.0 AS b))")
    assert list(latent[0]) == ["latent_col_1", "latent_col_2", "a", "b"]
    epochs = _rows(client, f"SELECT iteration, loss FROM ML.TRAINING_INFO(MODEL {dataset}.ae) ORDER BY iteration")
    assert [e["iteration"] for e in epochs] == [0, 1, 2, 3, 4]
    (metrics,) = _rows(client, f"SELECT * FROM ML.EVALUATE(MODEL {dataset}.ae)")
    assert metrics["mean_squared_error"] == pytest.approx(float(errors.mean()), rel=1e-5)
    with pytest.raises(exceptions.BadRequest, match="HIDDEN_UNITS"):
        client.query_and_wait(
            f"CREATE MODEL {dataset}.ae2 OPTIONS(MODEL_TYPE='AUTOENCODER', HIDDEN_UNITS=[8, 4]) AS SELECT a, b "
            f"FROM {dataset}.pairs"
        )
