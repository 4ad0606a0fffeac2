"""BigQuery ML's SQL pieces without a process: the ML table functions parse (the rest as BigQuery SQL),
CREATE MODEL's OPTIONS are typed or refused by name, and the k-means functions' columns and values on
a hand-checked model (x = 0, 1, 2 | 10, 11, 12, 13: centroids 11.5 and 1, unstandardised)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import sqlglot

from models.kmeans import MAX_BLOCK_ROWS
from services.bigquery.errors import BigQueryError
from services.bigquery.ml import kmeans, options, parse
from services.bigquery.schema import Field

pytestmark = pytest.mark.local_only(
    "the parts of hyp bigquery's BigQuery ML; the API behaviour is in test_ml_*_integration"
)


def test_ml_functions_parse_innermost_first_and_keep_aliases() -> None:
    tree = parse.parse(
        "SELECT * FROM ML.PREDICT(MODEL `p.d.m`, (SELECT * FROM ML.DETECT_ANOMALIES(MODEL d.m, "
        "STRUCT(0.1 AS contamination), TABLE d.t))) AS p JOIN d.u ON TRUE"
    )
    found = parse.calls(tree)
    assert [call.args["name"] for _, call in found] == ["DETECT_ANOMALIES", "PREDICT"]
    assert found[1][0].alias == "p" and found[0][1].args["expression"].sql() == "d.t"
    assert parse.calls(parse.parse("SELECT * FROM ML.CENTROIDS(MODEL d.m)"))[0][1].args["expression"] is None


def test_ml_function_outside_from_and_syntax_errors_are_400() -> None:
    with pytest.raises(BigQueryError, match="table function"):
        parse.calls(parse.parse("SELECT ML.PREDICT(MODEL d.m, TABLE d.t)"))
    with pytest.raises(BigQueryError, match="Syntax error"):
        parse.parse("SELECT * FROM ML.PREDICT(d.m, TABLE d.t)")  # MODEL missing


def _options(text: str) -> dict:
    tree = sqlglot.parse_one(f"CREATE MODEL d.m OPTIONS({text}) AS SELECT 1", read="bigquery")
    return options.read(tree.args.get("properties"))


def test_options_are_typed() -> None:
    got = options.kmeans(
        _options(
            "MODEL_TYPE='kmeans', NUM_CLUSTERS=3, KMEANS_INIT_METHOD='custom', KMEANS_INIT_COL='seed', "
            "DISTANCE_TYPE='cosine', STANDARDIZE_FEATURES=FALSE, MAX_ITERATIONS=7, EARLY_STOP=TRUE, "
            "MODEL_REGISTRY='VERTEX_AI', VERTEX_AI_MODEL_VERSION_ALIASES=['champion', 'b']"
        )
    )
    assert (got.num_clusters, got.init_method, got.init_col, got.distance_type) == (3, "CUSTOM", "seed", "COSINE")
    assert (got.standardize_features, got.max_iterations, got.min_rel_progress) == (False, 7, 0.01)
    assert (got.registry, got.vertex_aliases) == ("VERTEX_AI", ["champion", "b"])
    assert options.kmeans(_options("MODEL_TYPE='KMEANS', EARLY_STOP=FALSE")).min_rel_progress == 0.0
    assert options.kmeans(_options("MODEL_TYPE='KMEANS'")).min_rel_progress is None  # the Python trainer's rule
    assert options.kmeans(_options("MODEL_TYPE='KMEANS'")).clusters_for(10_000) == 4


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("MODEL_TYPE='KMEANS', NUM_CLUSTERS=2, NUM_CLUSTERS=3", "NUM_CLUSTERS is given more than once"),
        ("MODEL_TYPE='KMEANS', MAX_ITERATIONS='ten'", "Invalid value for option MAX_ITERATIONS"),
        ("MODEL_TYPE='KMEANS', STANDARDIZE_FEATURES=1", "Invalid value for option STANDARDIZE_FEATURES"),
        ("MODEL_TYPE='KMEANS', L2_REG=0.1", "Unknown option L2_REG"),
        ("MODEL_TYPE='LINEAR_REG'", "MODEL_TYPE 'LINEAR_REG' is not supported"),
        ("MODEL_TYPE='NOPE'", "Invalid value for option MODEL_TYPE"),
    ],
)
def test_bad_options_name_the_option(text: str, message: str) -> None:
    with pytest.raises(BigQueryError, match=message):
        given = _options(text)
        options.model_type(given)
        options.kmeans(given)


@pytest.fixture(scope="module")
def state() -> dict:
    rows = pa.table({"x": [0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 13.0]})
    chosen = options.kmeans({"MODEL_TYPE": "KMEANS", "NUM_CLUSTERS": 2, "STANDARDIZE_FEATURES": False})
    return kmeans.train(chosen, (Field("x", "FLOAT"),), rows)[0]


def test_functions_by_hand(state: dict) -> None:
    out = kmeans.predict(state, pa.table({"x": [5.0, None]}))  # NULL takes the training mean, 7
    assert out.column_names == ["CENTROID_ID", "NEAREST_CENTROIDS_DISTANCE", "x"]
    assert out.column("CENTROID_ID").to_pylist() == [2, 1]
    assert out.column("NEAREST_CENTROIDS_DISTANCE").to_pylist()[0] == [
        {"CENTROID_ID": 2, "DISTANCE": 4.0},
        {"CENTROID_ID": 1, "DISTANCE": 6.5},
    ]
    found = kmeans.detect_anomalies(state, pa.table({"x": [5.0, 11.0]}), 0.2).to_pydict()
    assert found["is_anomaly"] == [True, False] and found["normalized_distance"] == pytest.approx([4.0, 0.5])
    assert kmeans.centroids(state, standardize=False).column("numerical_value").to_pylist() == pytest.approx([11.5, 1])
    info = kmeans.feature_info(state).to_pylist()[0]
    assert (info["min"], info["max"], info["mean"], info["median"], info["null_count"]) == (0, 13, 7, 10, 0)


def test_non_numeric_and_missing_columns_are_named(state: dict) -> None:
    chosen = options.kmeans({"MODEL_TYPE": "KMEANS"})
    with pytest.raises(BigQueryError, match="Feature column event has type BOOLEAN"):
        kmeans.train(chosen, (Field("x", "FLOAT"), Field("event", "BOOLEAN")), pa.table({"x": [1.0], "event": [True]}))
    with pytest.raises(BigQueryError, match="Column x is not found in the input data to the DETECT_ANOMALIES"):
        kmeans.detect_anomalies(state, pa.table({"y": [1.0]}), 0.1)


def test_create_model_reports_its_progress_as_job_ml_statistics(tmp_path) -> None:
    from services.bigquery.catalog import Catalog
    from services.bigquery.jobs import Jobs
    from services.bigquery.ml import progress

    jobs = Jobs(Catalog(tmp_path / "warehouse"))
    jobs.catalog.create_dataset("proj-a", {"datasetReference": {"projectId": "proj-a", "datasetId": "d"}})
    rows = " UNION ALL ".join(f"SELECT {x} AS x" for x in (0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 13.0))
    sql = f"CREATE MODEL d.m OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2, STANDARDIZE_FEATURES=FALSE) AS {rows}"
    with progress.job() as report:
        assert report.statistics() == {} and report.fraction() == 0.0
        jobs.query("proj-a", {"query": sql, "useLegacySql": False})
    stats = report.statistics()
    assert stats["hypProgress"] == {"stage": "DONE", "rows": "7"} and report.fraction() == 1.0
    ml = stats["mlStatistics"]
    assert (ml["modelType"], ml["maxIterations"], ml["trainingType"]) == ("KMEANS", "20", "SINGLE_TRAINING")
    assert ml["iterationResults"][-1]["trainingLoss"] == pytest.approx(1.0)  # mean squared distance, by hand
    assert progress.current().stage is None  # outside a job: a throwaway report


def test_scoring_by_blocks_answers_what_one_call_over_all_rows_does() -> None:
    """ML.PREDICT, ML.DETECT_ANOMALIES and ML.EVALUATE score more rows than a block (kmeans.block_rows) block by
    block, with the NULLs of every block imputed: the values must be those of the model's one call over the
    whole encoded matrix, bit for bit, and every block's rows must land in their own places."""
    rng = np.random.default_rng(3)
    n = 2 * MAX_BLOCK_ROWS + 777  # three blocks, the last one partial
    x = rng.normal(0.0, 1.0, n)
    x[rng.choice(n, 50, replace=False)] = np.nan
    y = np.concatenate([rng.normal(0.0, 1.0, n // 2), rng.normal(8.0, 2.0, n - n // 2)])
    rows = pa.table({"x": pa.array(x, from_pandas=True), "y": y, "label": pa.array(np.arange(n))})
    fields = (Field("x", "FLOAT"), Field("y", "FLOAT"), Field("label", "INTEGER"))
    state = kmeans.train(options.kmeans({"MODEL_TYPE": "KMEANS", "NUM_CLUSTERS": 3}), fields, rows)[0]
    assert kmeans.block_rows(state["features"], 3) < n
    model = kmeans.restore(state)
    whole = kmeans.features_of(state, rows, "PREDICT")  # the whole matrix in one piece, NULLs imputed
    expected = model.detect_anomalies(whole, 0.02)

    found = kmeans.detect_anomalies(state, rows, 0.02)
    assert found.column("label").to_pylist() == list(range(n))  # the input columns, in their order
    assert np.array_equal(found.column("normalized_distance").to_numpy(), expected["normalized_distance"])
    assert np.array_equal(found.column("centroid_id").to_numpy(), expected["centroid_id"])
    assert np.array_equal(found.column("is_anomaly").to_numpy(zero_copy_only=False), expected["is_anomaly"])
    assert 0 < int(expected["is_anomaly"].sum()) < n

    d = model.distances(whole)
    predicted = kmeans.predict(state, rows)
    assert np.array_equal(predicted.column("CENTROID_ID").to_numpy(), d.argmin(axis=1) + 1)
    nearest = predicted.column("NEAREST_CENTROIDS_DISTANCE").combine_chunks().flatten().field("DISTANCE")
    assert np.array_equal(nearest.to_numpy(), np.sort(d, axis=1, kind="stable").ravel())
    assert kmeans.evaluation(state, rows).to_pylist()[0] == kmeans.evaluate(model, whole)
    assert state["evaluation"] == kmeans.evaluate(model, whole)  # CREATE MODEL's distances: by blocks too


def test_a_replaced_model_is_read_again(tmp_path) -> None:
    """The ML functions' parsed-model cache (store.load(shared=True)) answers the model file as it is now: a
    replaced model (same size, written at once) and a dropped one are never answered from the cache."""
    from services.bigquery.catalog import Catalog
    from services.bigquery.ml import store

    catalog = Catalog(tmp_path / "warehouse")
    catalog.create_dataset("proj-a", {"datasetReference": {"projectId": "proj-a", "datasetId": "d"}})
    ref = store.ModelRef("proj-a", "d", "m")
    for version in range(1, 6):
        store.save(catalog, ref, {"resource": {}, "state": {"version": version}})
        assert store.load(catalog, ref, shared=True)["state"] == {"version": version}
        assert store.load(catalog, ref, shared=True) is store.load(catalog, ref, shared=True)  # parsed once
    store.delete(catalog, ref)
    with pytest.raises(BigQueryError, match=r"Not found: Model proj-a:d\.m"):
        store.load(catalog, ref, shared=True)
