"""The workshop's BigQuery ML statements, verbatim (project id aside), through Google's client against a
real `hyp bigquery` whose MLFLOW_TRACKING_URI is a real `hyp mlflow` (MODEL_REGISTRY='VERTEX_AI'):
the model is trained, stored in the dataset and registered; the solution's CREATE TABLE ... ML.PREDICT
labels the purchases; the clusters agree with the Python trainer's (`hyp train --model kmeans`) on the
same rows; the registered version scores as ML.DETECT_ANOMALIES does. Bad input registers nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from google.api_core import exceptions
from google.cloud import bigquery

from services.testing.hyp import HypProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity(
        "https://cloud.google.com/bigquery/docs/reference/standard-sql/bigqueryml-syntax-create-kmeans"
    ),
]

PROJECT = "workshop-project"
SF = bigquery.SchemaField
ITEM = [SF("item_id", "INTEGER"), SF("item_name", "STRING"), SF("item_price", "FLOAT"), SF("quantity", "INTEGER")]
SCHEMA = [  # the workshop's cloud_run schema (docs/architecture.md), the parts these statements read
    SF("event_datetime", "TIMESTAMP"),
    SF("event", "STRING", mode="REQUIRED"),
    SF("user_id", "STRING", mode="REQUIRED"),
    SF("client_id", "STRING"),
    SF(
        "ecommerce",
        "RECORD",
        fields=[
            SF("items", "RECORD", mode="REPEATED", fields=[SF("item_id", "INTEGER"), SF("price", "FLOAT")]),
            SF(
                "purchase",
                "RECORD",
                fields=[
                    SF("items", "RECORD", mode="REPEATED", fields=ITEM),
                    SF("coupon", "STRING"),
                    SF("tax", "FLOAT"),
                    SF("shipping", "FLOAT"),
                    SF("value", "FLOAT"),
                    SF("affiliation", "STRING"),
                    SF("currency", "STRING"),
                    SF("transaction_id", "STRING"),
                ],
            ),
        ],
    ),
]

CREATE_MODEL = """CREATE OR REPLACE MODEL
  `<project-id>.ecommerce_sink.anomaly_detection`
OPTIONS
  ( MODEL_REGISTRY = 'VERTEX_AI',
    MODEL_TYPE='KMEANS',
    NUM_CLUSTERS=2 ) AS
  SELECT
    ecommerce.purchase.tax AS tax,
    ecommerce.purchase.shipping AS shipping,
    ecommerce.purchase.value AS value
  FROM `<project-id>.ecommerce_sink.cloud_run`
  WHERE event='purchase'
;""".replace("<project-id>", PROJECT)

LABEL_DATA = """CREATE TABLE
    ecommerce_sink.anomaly_data AS (
SELECT
    (CASE
        WHEN CENTROID_ID = 1 THEN TRUE
    ELSE
    FALSE
    END
    ) AS anomaly,
    tax,
    shipping,
    value
FROM
    ML.PREDICT(MODEL `<project_id>.ecommerce_sink.anomaly_detection`,
    (
    SELECT
        ecommerce.purchase.tax AS tax,
        ecommerce.purchase.shipping AS shipping,
        ecommerce.purchase.value AS value
    FROM
        `<project_id>.ecommerce_sink.cloud_run`
    WHERE
        event='purchase') ) )
;""".replace("<project_id>", PROJECT)


def _purchases(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(11)
    value = rng.lognormal(3.5, 0.6, n).round(2)
    value[::50] = 1_000_000.10  # the workshop's anomaly value
    return pd.DataFrame({"tax": (value * 0.19).round(2), "shipping": rng.choice([0.0, 4.9, 5.9], n), "value": value})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server(tmp, tracking_uri: str) -> HypProcess:
    env = dict(os.environ, HYP_WAREHOUSE_DIR=str(tmp / "warehouse"), HYP_PROJECT=PROJECT)
    env["MLFLOW_TRACKING_URI"] = tracking_uri
    return HypProcess("bigquery", log_path=tmp / "bigquery.log", env=env).start(60)


def _client(url: str, monkeypatch: pytest.MonkeyPatch) -> bigquery.Client:
    from google.auth.credentials import AnonymousCredentials

    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", url)
    return bigquery.Client(project=PROJECT, credentials=AnonymousCredentials())


@pytest.fixture(scope="module")
def server(mlflow_server, tmp_path_factory) -> Iterator[HypProcess]:
    with _server(tmp_path_factory.mktemp("bqml-workshop"), mlflow_server.tracking_uri) as process:
        yield process


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return _purchases()


@pytest.fixture
def client(server, rows, monkeypatch) -> Iterator[bigquery.Client]:
    client = _client(server.url, monkeypatch)
    client.create_dataset("ecommerce_sink", exists_ok=True)
    table = bigquery.Table(f"{PROJECT}.ecommerce_sink.cloud_run", schema=SCHEMA)
    table.time_partitioning = bigquery.TimePartitioning(field="event_datetime")
    client.create_table(table, exists_ok=True)
    if not client.get_table(table).num_rows:
        events = [
            {
                "event_datetime": "2026-11-27T08:00:00Z",
                "event": "purchase",
                "user_id": f"u{i}",
                "ecommerce": {
                    "items": [{"item_id": 12345, "price": r.value}],
                    "purchase": r._asdict() | {"currency": "EUR"},
                },
            }
            for i, r in enumerate(rows.itertuples(index=False))
        ] + [{"event_datetime": "2026-11-27T08:00:00Z", "event": "view_item", "user_id": "v"}] * 20
        assert client.insert_rows_json(table, events) == []
    return client


def _registered(tracking_uri: str, name: str) -> list[str]:
    from models import registry

    return sorted(v.version for v in registry.client(tracking_uri).search_model_versions(f"name='{name}'"))


def test_workshop_create_model_registers_and_agrees_with_the_python_trainer(client, mlflow_server, rows) -> None:
    from models.training import fit

    before = _registered(mlflow_server.tracking_uri, "anomaly_detection")
    job = client.query(CREATE_MODEL)
    job.result()
    assert job.statement_type == "CREATE_MODEL"
    assert len(_registered(mlflow_server.tracking_uri, "anomaly_detection")) == len(before) + 1
    sql_centroids = client.query_and_wait(
        "SELECT centroid_id, feature, numerical_value FROM ML.CENTROIDS(MODEL ecommerce_sink.anomaly_detection)"
    ).to_dataframe()
    python = fit("kmeans", rows, {"num_clusters": 2}, unsupervised=True).model.detector.fitted
    expected = pd.DataFrame(python.centroids())
    expected["feature"] = expected["feature"].map(dict(enumerate(("tax", "shipping", "value"))))
    merged = sql_centroids.merge(expected, on=["centroid_id", "feature"], suffixes=("_sql", "_python"))
    assert len(merged) == 6
    np.testing.assert_allclose(merged["numerical_value_sql"], merged["numerical_value_python"], rtol=1e-9)


def test_workshop_labels_purchases_with_ml_predict(client, rows) -> None:
    """The solution's rule: anomaly = (CENTROID_ID = 1); id 1 is the largest cluster here (models/kmeans.py),
    so the labels follow the trainer's clusters (on these rows: shipping 0 or not, the spikes inside)."""
    from models.training import fit

    client.query_and_wait(CREATE_MODEL.replace("MODEL_REGISTRY = 'VERTEX_AI',", ""))
    client.delete_table("ecommerce_sink.anomaly_data", not_found_ok=True)
    client.query_and_wait(LABEL_DATA)
    table = client.get_table("ecommerce_sink.anomaly_data")
    assert [(f.name, f.field_type) for f in table.schema] == [
        ("anomaly", "BOOLEAN"), ("tax", "FLOAT"), ("shipping", "FLOAT"), ("value", "FLOAT")
    ]  # fmt: skip
    counts = dict(
        client.query_and_wait("SELECT anomaly, COUNT(*) FROM ecommerce_sink.anomaly_data GROUP BY 1")
        .to_dataframe()
        .values
    )
    sizes = fit("kmeans", rows, {"num_clusters": 2}, unsupervised=True).model.detector.fitted.cluster_sizes_
    assert counts == {True: sizes[0], False: sizes[1]} and sum(counts.values()) == len(rows)


def test_registered_version_scores_as_detect_anomalies(client, mlflow_server, rows) -> None:
    from models import registry

    client.query_and_wait(
        CREATE_MODEL.replace(
            "MODEL_REGISTRY = 'VERTEX_AI',",
            "MODEL_REGISTRY = 'VERTEX_AI', VERTEX_AI_MODEL_ID='bqml-served', "
            "VERTEX_AI_MODEL_VERSION_ALIASES=['champion'],",
        )
    )
    served, version = registry.load_champion(mlflow_server.tracking_uri, "bqml-served")
    assert version == _registered(mlflow_server.tracking_uri, "bqml-served")[-1]
    sql = client.query_and_wait(
        "SELECT tax, shipping, value, normalized_distance FROM ML.DETECT_ANOMALIES(MODEL "
        "ecommerce_sink.anomaly_detection, STRUCT(0.01 AS contamination), (SELECT 8.4 AS tax, 4.9 AS shipping, "
        "40.0 AS value UNION ALL SELECT 190000.0, 0.0, 1000000.1)) ORDER BY value"
    ).to_dataframe()
    scored = served.predict(sql[["tax", "shipping", "value"]].astype(float))
    np.testing.assert_allclose(scored["normalized_distance"], sql["normalized_distance"], rtol=1e-9)
    assert list(scored["is_anomaly"]) == [False, True]


def test_bad_input_registers_and_stores_nothing(client, mlflow_server) -> None:
    before = _registered(mlflow_server.tracking_uri, "bad_model")
    cases = {
        "Feature column taxes has type ARRAY": "SELECT [ecommerce.purchase.tax] AS taxes, 1.0 AS tax",
        # a STRING column is one-hot encoded, and then it is not one of the served features
        "this model's features are user_id, tax": "SELECT user_id, ecommerce.purchase.tax AS tax",
        "MODEL_REGISTRY='VERTEX_AI': the endpoint serves models of tax, shipping, value": "SELECT "
        "ecommerce.purchase.tax AS tax, ecommerce.purchase.value AS value",
    }
    for message, select in cases.items():
        with pytest.raises(exceptions.BadRequest, match=message):
            client.query_and_wait(
                "CREATE MODEL ecommerce_sink.bad_model OPTIONS(MODEL_TYPE='KMEANS', MODEL_REGISTRY='VERTEX_AI') AS "
                f"{select} FROM ecommerce_sink.cloud_run WHERE event = 'purchase'"
            )
    with pytest.raises(exceptions.BadRequest, match="Option MODEL_TYPE is required"):
        client.query_and_wait("CREATE MODEL ecommerce_sink.bad_model OPTIONS(NUM_CLUSTERS=2) AS SELECT 1.0 AS x")
    assert _registered(mlflow_server.tracking_uri, "bad_model") == before == []
    with pytest.raises(exceptions.NotFound, match="Not found: Model"):
        client.query_and_wait("SELECT * FROM ML.CENTROIDS(MODEL ecommerce_sink.bad_model)")


def test_unreachable_registry_is_named_and_nothing_is_stored(tmp_path, monkeypatch) -> None:
    dead = f"http://127.0.0.1:{_free_port()}"
    with _server(tmp_path, dead) as process:
        client = _client(process.url, monkeypatch)
        client.create_dataset("ecommerce_sink", exists_ok=True)
        with pytest.raises(exceptions.BadRequest, match=f"MLFLOW_TRACKING_URI={dead} does not answer"):
            client.query_and_wait(
                "CREATE MODEL ecommerce_sink.m OPTIONS(MODEL_TYPE='KMEANS', MODEL_REGISTRY='VERTEX_AI') AS "
                "SELECT 1.0 AS tax, 2.0 AS shipping, 3.0 AS value UNION ALL SELECT 4.0, 5.0, 60.0"
            )
        with pytest.raises(exceptions.NotFound, match="Not found: Model"):
            client.query_and_wait("SELECT * FROM ML.CENTROIDS(MODEL ecommerce_sink.m)")
