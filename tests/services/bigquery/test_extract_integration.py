"""``extract_table`` through Google's client against `hyp bigquery` as a real process, to a local
destination (a path or ``file://`` inside the export folder): CSV, newline-delimited JSON and Parquet,
gzip, BigQuery's ``*`` shard name; Cloud Storage and every path outside the folder get BigQuery's 400."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from google.api_core import exceptions
from google.cloud import bigquery

from tests.services.bigquery.conftest import PROJECT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/exporting-data"),
]

SF = bigquery.SchemaField
ROWS = [
    {"id": 1, "name": "a,b", "at": "2026-11-01T12:00:00Z", "ok": True},
    {"id": 2, "name": None, "at": "2026-11-02T08:30:00Z", "ok": False},
]


@pytest.fixture
def table(client, dataset) -> str:
    schema = [SF("id", "INTEGER"), SF("name", "STRING"), SF("at", "TIMESTAMP"), SF("ok", "BOOLEAN")]
    client.create_table(bigquery.Table(f"{PROJECT}.{dataset}.t", schema=schema))
    assert client.insert_rows_json(f"{dataset}.t", ROWS) == []
    return f"{dataset}.t"


@pytest.fixture
def exports(warehouse_dir: Path) -> Path:
    return warehouse_dir / "_exports"


def extract(client, table: str, uri: str, **config) -> bigquery.ExtractJob:
    job = client.extract_table(table, uri, job_config=bigquery.ExtractJobConfig(**config))
    job.result()
    return job


def test_csv_to_a_relative_path_with_a_shard_wildcard(client, table: str, exports: Path) -> None:
    job = extract(client, table, f"{table}/part-*.csv")
    assert job.state == "DONE" and job.destination_uri_file_counts == [1]
    lines = (exports / table / "part-000000000000.csv").read_text().splitlines()
    assert lines == ["id,name,at,ok", '1,"a,b",2026-11-01 12:00:00 UTC,true', "2,,2026-11-02 08:30:00 UTC,false"]
    extract(client, table, f"{table}/plain.csv", print_header=False, field_delimiter=";")
    assert (exports / table / "plain.csv").read_text().splitlines()[0] == "1;a,b;2026-11-01 12:00:00 UTC;true"


def test_json_gzip_and_parquet_to_file_uris(client, table: str, exports: Path) -> None:
    target = exports / "file-uri" / "rows.json.gz"
    extract(client, table, f"file://{target}", destination_format="NEWLINE_DELIMITED_JSON", compression="GZIP")
    rows = [json.loads(line) for line in gzip.decompress(target.read_bytes()).splitlines()]
    assert rows == [
        {"id": 1, "name": "a,b", "at": "2026-11-01 12:00:00 UTC", "ok": True},
        {"id": 2, "at": "2026-11-02 08:30:00 UTC", "ok": False},
    ]
    parquet = exports / "file-uri" / "rows.parquet"
    extract(client, table, f"file://{parquet}", destination_format="PARQUET")
    assert pq.read_table(parquet).select(["id", "name"]).to_pylist() == [
        {"id": 1, "name": "a,b"},
        {"id": 2, "name": None},
    ]


@pytest.mark.parametrize(
    ("uri", "config", "message"),
    [
        ("gs://bucket/out.csv", {}, "Invalid extract destination URI"),
        ("https://example.com/out.csv", {}, "Invalid extract destination URI"),
        ("file:///etc/hyp-extract.csv", {}, "writes exports only under"),
        ("../../outside.csv", {}, "writes exports only under"),
        ("a-*-*.csv", {}, "one wildcard"),
        ("out.avro", {"destination_format": "AVRO"}, "AVRO"),
    ],
)
def test_other_destinations_get_bigquerys_error_and_nothing_is_written(
    client, table: str, warehouse_dir: Path, uri: str, config: dict, message: str
) -> None:
    before = sorted(p for p in warehouse_dir.parent.rglob("*") if "_bigquery" not in p.parts)
    with pytest.raises(exceptions.BadRequest, match=message):
        extract(client, table, uri, **config)
    assert sorted(p for p in warehouse_dir.parent.rglob("*") if "_bigquery" not in p.parts) == before
    assert not Path("/etc/hyp-extract.csv").exists()


def test_a_nested_table_is_not_extracted_as_csv(client, dataset: str, exports: Path) -> None:
    nested = [SF("id", "INTEGER"), SF("tags", "STRING", mode="REPEATED")]
    client.create_table(bigquery.Table(f"{PROJECT}.{dataset}.n", schema=nested))
    assert client.insert_rows_json(f"{dataset}.n", [{"id": 1, "tags": ["x", "y"]}]) == []
    with pytest.raises(exceptions.BadRequest, match=r"nested schema\. Field: tags"):
        extract(client, f"{dataset}.n", "nested.csv")
    extract(client, f"{dataset}.n", "nested.json", destination_format="NEWLINE_DELIMITED_JSON")
    assert json.loads((exports / "nested.json").read_text()) == {"id": 1, "tags": ["x", "y"]}
