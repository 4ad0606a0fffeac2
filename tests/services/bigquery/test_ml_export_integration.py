"""EXPORT MODEL through Google's clients against real `hyp bigquery` and `hyp storage` processes: the model is
written as a TensorFlow SavedModel (saved_model.pb, variables/) to gs:// on hyp storage, read back with
google-cloud-storage and loaded with TensorFlow; its serving signature answers what ML.PREDICT answers.

Hand-checked k-means (STANDARDIZE_FEATURES=FALSE) on x = 0, 1, 2, 10, 11, 12, 13: centroids 11.5 (id 1, the
larger cluster) and 1 (id 2). x=0 -> id 2 at 1, then id 1 at 11.5; x=12 -> id 1 at 0.5; a NULL (NaN) is the
training mean 49/7 = 7 -> id 1 at 4.5, id 2 at 6.
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.api_core import exceptions
from google.cloud import bigquery

from services.testing.hyp import HypProcess
from services.testing.storage import storage_client

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity(
        "https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-export-model"
    ),
]

PROJECT = "test-project"
XS = [0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 13.0]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    home = tmp_path_factory.mktemp("bqml-export")
    env = dict(os.environ, HYP_PROJECT=PROJECT, HYP_WAREHOUSE_DIR=str(home / "warehouse"))
    storage = HypProcess("storage", "--data-dir", str(home / "storage"), log_path=home / "storage.log", env=env)
    exports = home / "exports"
    env_bq = env | {"STORAGE_EMULATOR_HOST": storage.url, "HYP_BIGQUERY_EXPORT_DIR": str(exports)}
    bq = HypProcess("bigquery", log_path=home / "bigquery.log", env=env_bq)
    with storage.start(60), bq.start(60):
        yield {"bigquery": bq, "storage": storage, "exports": exports, "home": home}


@pytest.fixture
def client(servers, monkeypatch: pytest.MonkeyPatch):  # -> bigquery.Client
    from google.auth.credentials import AnonymousCredentials

    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", servers["bigquery"].url)
    return bigquery.Client(project=PROJECT, credentials=AnonymousCredentials())


@pytest.fixture
def model(client) -> Iterator[str]:
    dataset = f"ds_{uuid.uuid4().hex[:10]}"
    client.create_dataset(dataset)
    client.query_and_wait(f"CREATE TABLE {dataset}.points (x FLOAT64)")
    client.query_and_wait(f"INSERT INTO {dataset}.points (x) VALUES " + ", ".join(f"({x})" for x in XS))
    client.query_and_wait(
        f"CREATE MODEL {dataset}.m OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2, STANDARDIZE_FEATURES=FALSE) "
        f"AS SELECT x FROM {dataset}.points"
    )
    yield f"{dataset}.m"
    client.delete_dataset(dataset, delete_contents=True, not_found_ok=True)


def _load(folder: Path):  # the SavedModel's serving signature
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf.saved_model.load(str(folder)).signatures["serving_default"], tf


def test_export_kmeans_to_gcs_then_serve_by_hand(client, servers, model, tmp_path: Path) -> None:
    gcs = storage_client(servers["storage"].url, PROJECT)
    bucket = gcs.create_bucket(f"models-{uuid.uuid4().hex[:8]}")
    job = client.query(f"EXPORT MODEL {model} OPTIONS(URI = 'gs://{bucket.name}/exports/m/')")
    job.result()
    assert job.statement_type == "EXPORT_MODEL"
    names = sorted(b.name for b in gcs.list_blobs(bucket.name, prefix="exports/m/"))
    assert "exports/m/saved_model.pb" in names
    assert "exports/m/variables/variables.index" in names
    assert any(n.startswith("exports/m/variables/variables.data-") for n in names)
    for name in names:  # as a user would fetch it
        local = tmp_path / "m" / name.removeprefix("exports/m/")
        local.parent.mkdir(parents=True, exist_ok=True)
        bucket.blob(name).download_to_filename(str(local))
    serve, tf = _load(tmp_path / "m")
    out = serve(x=tf.constant([0.0, 12.0, math.nan], tf.float64))
    assert out["CENTROID_ID"].numpy().tolist() == [2, 1, 1]
    assert out["NEAREST_CENTROIDS_ID"].numpy().tolist() == [[2, 1], [1, 2], [1, 2]]
    distances = out["NEAREST_CENTROIDS_DISTANCE"].numpy().ravel().tolist()
    assert distances == pytest.approx([1.0, 11.5, 0.5, 11.0, 4.5, 6.0])


def test_export_pca_to_a_local_folder_matches_ml_predict(client, servers, model) -> None:
    dataset = model.split(".")[0]
    client.query_and_wait(
        f"CREATE MODEL {dataset}.p OPTIONS(MODEL_TYPE='PCA', NUM_PRINCIPAL_COMPONENTS=1) "
        f"AS SELECT x, 2 * x + 1 AS y FROM {dataset}.points"
    )
    exports: Path = servers["exports"]
    client.query_and_wait(f"EXPORT MODEL {dataset}.p OPTIONS(URI = 'file://{exports}/pca')")
    client.query_and_wait(f"EXPORT MODEL {dataset}.p OPTIONS(URI = 'relative/pca')")  # inside the export folder
    assert (exports / "pca" / "saved_model.pb").is_file()
    assert (exports / "relative" / "pca" / "saved_model.pb").is_file()
    assert not [p for p in exports.iterdir() if p.name.startswith(".export-")]  # no work folder left
    expected = [
        r["principal_component_1"]
        for r in client.query_and_wait(
            f"SELECT * FROM ML.PREDICT(MODEL {dataset}.p, (SELECT x, 2 * x + 1 AS y FROM {dataset}.points)) ORDER BY x"
        )
    ]
    serve, tf = _load(exports / "pca")
    xs = tf.constant(XS, tf.float64)
    got = serve(x=xs, y=2 * xs + 1)["principal_component_1"].numpy().tolist()
    assert got == pytest.approx(expected)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ("", "URI"),
        ("OPTIONS(URI = 'file:///etc/hyp-model')", "export folder"),
        ("OPTIONS(URI = '../outside')", "export folder"),
        ("OPTIONS(URI = 's3://bucket/m')", "s3://bucket/m"),
        ("OPTIONS(URI = 'gs://no-such-bucket-here/m')", "no-such-bucket-here"),
        ("OPTIONS(URI = 'gs://b/m', TRIAL_ID = 1)", "TRIAL_ID"),
    ],
)
def test_export_bad_destinations_name_what_is_wrong_and_write_nothing(client, servers, model, options, named) -> None:
    before = sorted(p.name for p in servers["home"].rglob("*"))
    with pytest.raises(exceptions.BadRequest, match=named):
        client.query_and_wait(f"EXPORT MODEL {model} {options}")
    assert sorted(p.name for p in servers["home"].rglob("*")) == before
    assert not Path("/etc/hyp-model").exists()


def test_export_of_a_missing_model_is_not_found(client, model) -> None:
    dataset = model.split(".")[0]
    with pytest.raises(exceptions.NotFound, match=f"Model {PROJECT}:{dataset}.nope"):
        client.query_and_wait(f"EXPORT MODEL {dataset}.nope OPTIONS(URI = 'gs://b/m')")


def test_export_autoencoder_answers_as_ml_detect_anomalies(client, servers, model) -> None:
    dataset = model.split(".")[0]
    query = f"SELECT x, 2 * x + 1 AS y FROM {dataset}.points"
    client.query_and_wait(
        f"CREATE MODEL {dataset}.a OPTIONS(MODEL_TYPE='AUTOENCODER', HIDDEN_UNITS=[4, 1, 4], MAX_ITERATIONS=2) "
        f"AS {query}"
    )
    exports: Path = servers["exports"]
    client.query_and_wait(f"EXPORT MODEL {dataset}.a OPTIONS(URI = 'autoencoder')")
    expected = [
        r["mean_squared_error"]
        for r in client.query_and_wait(
            f"SELECT x, mean_squared_error FROM ML.DETECT_ANOMALIES(MODEL {dataset}.a, "
            f"STRUCT(0.1 AS contamination), ({query})) ORDER BY x"
        )
    ]
    serve, tf = _load(exports / "autoencoder")
    xs = tf.constant(XS, tf.float64)
    out = serve(x=xs, y=2 * xs + 1)
    assert out["mean_squared_error"].numpy().tolist() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert out["latent_col_1"].shape == (len(XS),)


def test_export_kmeans_with_a_string_feature_takes_the_raw_strings(client, servers, model) -> None:
    """A STRING feature is one-hot encoded inside the exported model over the training vocabulary (a, b, c and
    NULL): fed the raw strings ('' for NULL, an unseen value as ML.PREDICT takes it), it answers ML.PREDICT."""
    dataset = model.split(".")[0]
    kinds = ["a", "a", "b", "c", "c", None, "c"]
    client.query_and_wait(
        f"CREATE TABLE {dataset}.labelled AS SELECT * FROM UNNEST(["
        + ", ".join(
            f"STRUCT({x} AS x, {repr(k) if k else 'CAST(NULL AS STRING)'} AS kind)"
            for x, k in zip(XS, kinds, strict=True)
        )
        + "])"
    )
    client.query_and_wait(
        f"CREATE MODEL {dataset}.s OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=3) "
        f"AS SELECT x, kind FROM {dataset}.labelled"
    )
    exports: Path = servers["exports"]
    client.query_and_wait(f"EXPORT MODEL {dataset}.s OPTIONS(URI = 'strings')")
    probe = [(0.0, "a"), (12.0, "c"), (5.0, None), (1.0, "never-seen"), (None, "b")]
    literal = ", ".join(
        f"STRUCT({i} AS id, {'CAST(NULL AS FLOAT64)' if x is None else x} AS x, "
        f"{repr(k) if k else 'CAST(NULL AS STRING)'} AS kind)"
        for i, (x, k) in enumerate(probe)
    )
    expected = list(
        client.query_and_wait(
            f"SELECT * FROM ML.PREDICT(MODEL {dataset}.s, (SELECT * FROM UNNEST([{literal}]))) ORDER BY id"
        )
    )
    serve, tf = _load(exports / "strings")
    out = serve(
        x=tf.constant([math.nan if x is None else x for x, _ in probe], tf.float64),
        kind=tf.constant([k or "" for _, k in probe], tf.string),
    )
    assert out["CENTROID_ID"].numpy().tolist() == [r["CENTROID_ID"] for r in expected]
    distances = out["NEAREST_CENTROIDS_DISTANCE"].numpy().tolist()
    for row, got, ids in zip(expected, distances, out["NEAREST_CENTROIDS_ID"].numpy().tolist(), strict=True):
        assert ids == [d["CENTROID_ID"] for d in row["NEAREST_CENTROIDS_DISTANCE"]]
        assert got == pytest.approx([d["DISTANCE"] for d in row["NEAREST_CENTROIDS_DISTANCE"]])
