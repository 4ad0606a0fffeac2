"""Load jobs through Google's client: load_table_from_json / _file (NDJSON, CSV) / _dataframe (Parquet),
multipart and resumable uploads, create and write dispositions, bad records."""

from __future__ import annotations

import io

import pytest
from google.api_core import exceptions
from google.cloud import bigquery

from tests.services.bigquery.conftest import PROJECT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#jobconfigurationload"),
]

SF = bigquery.SchemaField


def test_load_json_into_a_new_table_with_autodetect(client, dataset) -> None:
    rows = [
        {"user_id": f"u{i}", "n": i, "tax": i / 2, "purchase": {"value": 1.5, "items": ["a", "b"]}} for i in range(5)
    ]
    job = client.load_table_from_json(rows, f"{PROJECT}.{dataset}.loaded")
    job.result()
    assert job.output_rows == 5
    table = client.get_table(f"{dataset}.loaded")
    assert [(f.name, f.field_type) for f in table.schema] == [
        ("user_id", "STRING"), ("n", "INTEGER"), ("tax", "FLOAT"), ("purchase", "RECORD"),
    ]  # fmt: skip
    assert table.schema[3].fields[1].mode == "REPEATED"
    got = client.query_and_wait(f"SELECT SUM(n) AS s, MAX(purchase.value) AS v FROM {dataset}.loaded")
    assert [tuple(r.values()) for r in got] == [(10, 1.5)]


def test_load_json_appends_to_an_existing_table(client, dataset) -> None:
    client.create_table(bigquery.Table(f"{PROJECT}.{dataset}.t", schema=[SF("a", "STRING"), SF("b", "INTEGER")]))
    client.load_table_from_json([{"a": "x", "b": 1}], f"{PROJECT}.{dataset}.t").result()
    client.load_table_from_json([{"a": "y", "b": 2}], f"{PROJECT}.{dataset}.t").result()
    assert client.get_table(f"{dataset}.t").num_rows == 2


def test_bad_records_fail_the_load_and_write_nothing(client, dataset) -> None:
    client.create_table(bigquery.Table(f"{PROJECT}.{dataset}.t", schema=[SF("b", "INTEGER", mode="REQUIRED")]))
    job = client.load_table_from_json([{"b": 1}, {"b": "not an int"}], f"{PROJECT}.{dataset}.t")
    with pytest.raises(exceptions.BadRequest, match="row 2"):
        job.result()
    assert client.get_table(f"{dataset}.t").num_rows == 0
    config = bigquery.LoadJobConfig(max_bad_records=1)
    client.load_table_from_json([{"b": 1}, {"b": "x"}], f"{PROJECT}.{dataset}.t", job_config=config).result()
    assert client.get_table(f"{dataset}.t").num_rows == 1


def test_csv_with_header_and_schema(client, dataset) -> None:
    data = b"name,amount,day\nalice,1.5,2024-01-02\nbob,,2024-01-03\n"
    config = bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.CSV,
        skip_leading_rows=1,
        schema=[SF("name", "STRING"), SF("amount", "NUMERIC"), SF("day", "DATE")],
    )
    client.load_table_from_file(io.BytesIO(data), f"{PROJECT}.{dataset}.csv", job_config=config).result()
    rows = sorted(client.list_rows(f"{dataset}.csv"), key=lambda r: r["name"])
    assert [(r["name"], r["amount"] is None, str(r["day"])) for r in rows] == [
        ("alice", False, "2024-01-02"), ("bob", True, "2024-01-03"),
    ]  # fmt: skip


def test_csv_autodetect_names_columns_from_the_header(client, dataset) -> None:
    config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.CSV, skip_leading_rows=1, autodetect=True)
    data = io.BytesIO(b"user,count\nu1,3\nu2,4\n")
    client.load_table_from_file(data, f"{PROJECT}.{dataset}.auto", job_config=config).result()
    schema = client.get_table(f"{dataset}.auto").schema
    assert [(f.name, f.field_type) for f in schema] == [("user", "STRING"), ("count", "INTEGER")]


def test_dataframe_load_through_parquet(client, dataset) -> None:
    pandas = pytest.importorskip("pandas")
    frame = pandas.DataFrame(
        {"user_id": ["a", "b"], "value": [1.25, 2.5], "ts": pandas.to_datetime(["2024-01-01", "2024-01-02"], utc=True)}
    )
    client.load_table_from_dataframe(frame, f"{PROJECT}.{dataset}.frame").result()
    table = client.get_table(f"{dataset}.frame")
    assert table.num_rows == 2 and {f.name: f.field_type for f in table.schema}["ts"] == "TIMESTAMP"


def test_resumable_upload_and_write_empty(client, dataset) -> None:
    schema = [SF("a", "STRING")]
    client.create_table(bigquery.Table(f"{PROJECT}.{dataset}.t", schema=schema))
    data = b"".join(b'{"a": "%d"}\n' % i for i in range(1000))
    config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON)
    # size unknown: the client uses a resumable upload
    client.load_table_from_file(io.BytesIO(data), f"{PROJECT}.{dataset}.t", job_config=config, size=None).result()
    assert client.get_table(f"{dataset}.t").num_rows == 1000
    config.write_disposition = bigquery.WriteDisposition.WRITE_EMPTY
    with pytest.raises(exceptions.Conflict):
        client.load_table_from_file(io.BytesIO(data), f"{PROJECT}.{dataset}.t", job_config=config).result()
    assert client.get_table(f"{dataset}.t").num_rows == 1000


def test_create_never_and_truncate(client, dataset) -> None:
    config = bigquery.LoadJobConfig(create_disposition=bigquery.CreateDisposition.CREATE_NEVER)
    with pytest.raises(exceptions.NotFound):
        client.load_table_from_json([{"a": 1}], f"{PROJECT}.{dataset}.absent", job_config=config).result()
    client.load_table_from_json([{"a": 1}, {"a": 2}], f"{PROJECT}.{dataset}.t2").result()
    config = bigquery.LoadJobConfig(write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE)
    client.load_table_from_json([{"a": 3}], f"{PROJECT}.{dataset}.t2", job_config=config).result()
    assert [r["a"] for r in client.list_rows(f"{dataset}.t2")] == [3]


@pytest.mark.local_only("the in-memory bound on one upload (HYP_BIGQUERY_MAX_UPLOAD_BYTES) is hyp-local's")
def test_an_upload_over_the_bound_is_refused(tmp_path) -> None:
    import os

    from google.auth.credentials import AnonymousCredentials

    from services.testing.hyp import HypProcess

    env = dict(os.environ, HYP_WAREHOUSE_DIR=str(tmp_path / "wh"), HYP_BIGQUERY_MAX_UPLOAD_BYTES="4096")
    with HypProcess("bigquery", log_path=tmp_path / "bq.log", env=env).start(60) as server:
        small = bigquery.Client(
            project=PROJECT, credentials=AnonymousCredentials(), client_options={"api_endpoint": server.url}
        )
        small.create_dataset("d")
        data = b"".join(b'{"a": "%d"}\n' % i for i in range(1000))  # about 12 KB
        config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON, autodetect=True)
        with pytest.raises(exceptions.BadRequest, match="exceeds the limit"):
            small.load_table_from_file(io.BytesIO(data), f"{PROJECT}.d.t", job_config=config, size=None).result()
        with pytest.raises(exceptions.NotFound):
            small.get_table(f"{PROJECT}.d.t")
