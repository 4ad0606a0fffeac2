"""The kit's BigQuery and Cloud Storage clients: ready to use against real `hyp bigquery` / `hyp storage`
processes, without touching the test process's environment."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from services.stack import definition as d
from services.testing.gcp import LocalGcp
from services.testing.stack import HypStack

pytestmark = [pytest.mark.integration, pytest.mark.local_only("the test kit's client factories")]

PROJECT = "kit-project"
EMULATOR_VARIABLES = ("BIGQUERY_EMULATOR_HOST", "STORAGE_EMULATOR_HOST")


@pytest.fixture(scope="module")
def gcp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalGcp]:
    with LocalGcp(tmp_path_factory.mktemp("gcp"), project=PROJECT) as services:
        yield services


def round_trip(bigquery, storage) -> None:
    """Rows in and out of BigQuery, an object in and out of Cloud Storage, through Google's own clients."""
    from google.cloud import bigquery as bq

    dataset = f"kit_{uuid.uuid4().hex[:8]}"
    bigquery.create_dataset(dataset)
    table = bigquery.create_table(bq.Table(f"{PROJECT}.{dataset}.t", schema=[bq.SchemaField("n", "INTEGER")]))
    assert bigquery.insert_rows_json(table, [{"n": 1}, {"n": 2}]) == []
    rows = bigquery.query(f"SELECT sum(n) AS total FROM `{PROJECT}.{dataset}.t`").result()
    assert [r["total"] for r in rows] == [3]

    bucket = storage.create_bucket(f"kit-{uuid.uuid4().hex[:8]}")
    bucket.blob("a/b.txt").upload_from_string(b"hello")
    assert storage.bucket(bucket.name).blob("a/b.txt").download_as_bytes() == b"hello"
    assert [b.name for b in storage.list_blobs(bucket.name, prefix="a/")] == ["a/b.txt"]


def test_local_services_hand_out_ready_clients(gcp: LocalGcp) -> None:
    before = {k: os.environ.get(k) for k in EMULATOR_VARIABLES}
    bigquery, storage = gcp.bigquery_client(), gcp.storage_client()
    assert bigquery.project == PROJECT and storage.project == PROJECT
    round_trip(bigquery, storage)
    assert {k: os.environ.get(k) for k in EMULATOR_VARIABLES} == before
    assert (gcp.warehouse_dir / "_bigquery").exists()  # BigQuery's tables in the warehouse folder, as in a stack


def test_hyp_stack_clients_point_at_its_published_ports(gcp: LocalGcp, monkeypatch: pytest.MonkeyPatch) -> None:
    """HypStack's addresses and clients, with compose's port lookup answered by the local processes (Docker
    cannot run here: this stands in for `docker compose port` only; the services are real)."""
    published = {("bigquery", d.BIGQUERY_PORT): gcp.bigquery.port, ("storage", d.STORAGE_PORT): gcp.storage.port}
    stack = HypStack(["bigquery", "storage"], env={"HYP_PROJECT": PROJECT})
    monkeypatch.setattr(stack.compose, "get_service_port", lambda service, port: published[(service, port)])
    assert stack.bigquery_url == gcp.bigquery_url and stack.storage_url == gcp.storage_url
    round_trip(stack.bigquery_client(), stack.storage_client())
