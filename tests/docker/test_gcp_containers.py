"""`hyp bigquery` and `hyp storage` in their containers (the `hyp_gcp` fixture): healthy, and Google's own clients
from the kit work against the published ports unchanged."""

from __future__ import annotations

import uuid

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.local_only("the compose services under testcontainers")]


def test_bigquery_client_round_trip(hyp_gcp, hyp_bigquery_client):
    from google.cloud import bigquery

    dataset = f"tc_{uuid.uuid4().hex[:8]}"
    hyp_bigquery_client.create_dataset(dataset)
    table_id = f"{hyp_gcp.project}.{dataset}.t"
    table = hyp_bigquery_client.create_table(bigquery.Table(table_id, schema=[bigquery.SchemaField("n", "INTEGER")]))
    assert hyp_bigquery_client.insert_rows_json(table, [{"n": 2}, {"n": 3}]) == []
    rows = hyp_bigquery_client.query(f"SELECT sum(n) AS total FROM `{table_id}`").result()
    assert [r["total"] for r in rows] == [5]


def test_storage_client_round_trip(hyp_storage_client):
    bucket = hyp_storage_client.create_bucket(f"tc-{uuid.uuid4().hex[:8]}")
    bucket.blob("x.txt").upload_from_string(b"in a container")
    assert hyp_storage_client.bucket(bucket.name).blob("x.txt").download_as_bytes() == b"in a container"


@pytest.mark.parametrize("service", ["bigquery", "storage"])
def test_runs_as_non_root(hyp_gcp, service):
    out, _, code = hyp_gcp.compose.exec_in_container(["id", "-u"], service)
    assert code == 0 and out.strip() == "10001"
