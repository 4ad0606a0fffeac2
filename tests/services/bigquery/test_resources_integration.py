"""Datasets and tables through Google's own client against `hyp bigquery`: create, get, list, update,
delete, schemas, naming rules, and the exception classes the client raises against GCP."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from tests.services.bigquery.conftest import PROJECT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/rest/v2/tables"),
]

SF = bigquery.SchemaField

WORKSHOP_LIKE = [
    SF("event_datetime", "TIMESTAMP", mode="REQUIRED"),
    SF("event", "STRING"),
    SF("day", "DATE"),
    SF("amount", "NUMERIC"),
    SF("payload", "JSON"),
    SF("tags", "STRING", mode="REPEATED"),
    SF(
        "ecommerce",
        "RECORD",
        fields=[
            SF("items", "RECORD", mode="REPEATED", fields=[SF("item_id", "STRING"), SF("price", "FLOAT")]),
            SF("purchase", "STRUCT", fields=[SF("tax", "FLOAT64"), SF("transaction_id", "STRING")]),
        ],
    ),
]


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/rest/v2/datasets")
def test_dataset_lifecycle(client) -> None:
    created = client.create_dataset(bigquery.Dataset(f"{PROJECT}.lifecycle_ds"))
    assert created.dataset_id == "lifecycle_ds" and created.project == PROJECT
    with pytest.raises(exceptions.Conflict):
        client.create_dataset("lifecycle_ds")
    assert client.create_dataset("lifecycle_ds", exists_ok=True).dataset_id == "lifecycle_ds"
    assert "lifecycle_ds" in [d.dataset_id for d in client.list_datasets()]
    fetched = client.get_dataset("lifecycle_ds")
    fetched.description = "events of the workshop"
    assert client.update_dataset(fetched, ["description"]).description == "events of the workshop"
    assert client.get_dataset("lifecycle_ds").description == "events of the workshop"
    client.delete_dataset("lifecycle_ds")
    with pytest.raises(exceptions.NotFound, match="Dataset test-project:lifecycle_ds"):
        client.get_dataset("lifecycle_ds")
    client.delete_dataset("lifecycle_ds", not_found_ok=True)


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/rest/v2/datasets/list")
def test_list_datasets_pages(client) -> None:
    names = [f"page_ds_{i}" for i in range(5)]
    for name in names:
        client.create_dataset(name)
    try:
        pages = client.list_datasets(max_results=None, page_size=2).pages
        sizes = [len(list(page)) for page in pages]
        assert max(sizes) == 2 and sum(sizes) >= 5
        assert set(names) <= {d.dataset_id for d in client.list_datasets(page_size=2)}
    finally:
        for name in names:
            client.delete_dataset(name, not_found_ok=True)


def test_emulator_host_or_api_endpoint(bigquery_server) -> None:
    """client_options' api_endpoint works as well as BIGQUERY_EMULATOR_HOST."""
    other = bigquery.Client(
        project=PROJECT,
        credentials=AnonymousCredentials(),
        client_options={"api_endpoint": bigquery_server.url},
    )
    with pytest.raises(exceptions.NotFound):
        other.get_dataset("never_created")


def test_table_with_nested_schema_round_trips(client, dataset) -> None:
    table = bigquery.Table(f"{PROJECT}.{dataset}.cloud_run", schema=WORKSHOP_LIKE)
    table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field="event_datetime")
    table.description = "raw events"
    created = client.create_table(table)
    fetched = client.get_table(f"{dataset}.cloud_run")
    for got in (created, fetched):
        assert got.time_partitioning.field == "event_datetime" and got.time_partitioning.type_ == "DAY"
        assert got.num_rows == 0 and got.description == "raw events"
        # legacy type names, as tables.get answers them
        assert [f.field_type for f in got.schema] == [
            "TIMESTAMP", "STRING", "DATE", "NUMERIC", "JSON", "STRING", "RECORD",
        ]  # fmt: skip
        assert got.schema[0].mode == "REQUIRED" and got.schema[5].mode == "REPEATED"
        ecommerce = got.schema[6]
        assert [f.name for f in ecommerce.fields] == ["items", "purchase"]
        assert ecommerce.fields[0].mode == "REPEATED" and ecommerce.fields[1].field_type == "RECORD"
        assert ecommerce.fields[1].fields[0].field_type == "FLOAT"
    assert [t.table_id for t in client.list_tables(dataset)] == ["cloud_run"]


def test_table_errors(client, dataset) -> None:
    schema = [SF("a", "STRING")]
    client.create_table(bigquery.Table(f"{PROJECT}.{dataset}.t", schema=schema))
    with pytest.raises(exceptions.Conflict, match="Already Exists: Table"):
        client.create_table(bigquery.Table(f"{PROJECT}.{dataset}.t", schema=schema))
    with pytest.raises(exceptions.NotFound, match="Table"):
        client.get_table(f"{dataset}.missing")
    with pytest.raises(exceptions.NotFound, match="Dataset"):
        client.create_table(bigquery.Table(f"{PROJECT}.no_such_dataset.t", schema=schema))
    with pytest.raises(exceptions.BadRequest, match="still in use"):
        client.delete_dataset(dataset)  # not empty without delete_contents
    client.delete_table(f"{dataset}.t")
    with pytest.raises(exceptions.NotFound):
        client.delete_table(f"{dataset}.t")
    client.delete_table(f"{dataset}.t", not_found_ok=True)


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/schemas#column_names")
@pytest.mark.parametrize(
    "fields",
    [
        [SF("1starts_with_digit", "STRING")],
        [SF("has-dash", "STRING")],
        [SF("_PARTITIONTIME", "TIMESTAMP")],
        [SF("dup", "STRING"), SF("DUP", "STRING")],
        [SF("r", "RECORD")],  # a RECORD without fields
        [SF("x", "NOT_A_TYPE")],
    ],
)
def test_bad_schemas_are_refused(client, dataset, fields) -> None:
    with pytest.raises(exceptions.BadRequest):
        client.create_table(bigquery.Table(f"{PROJECT}.{dataset}.bad", schema=fields))
    with pytest.raises(exceptions.NotFound):
        client.get_table(f"{dataset}.bad")


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/datasets#dataset-naming")
def test_bad_names_are_refused(client, dataset) -> None:
    with pytest.raises(exceptions.BadRequest, match="Invalid dataset ID"):
        client.create_dataset("has-dash")
    with pytest.raises(exceptions.BadRequest, match="Invalid table ID"):
        client.create_table(bigquery.Table(f"{PROJECT}.{dataset}.semi;colon", schema=[SF("a", "STRING")]))
    # dashes and spaces are allowed in table names
    client.create_table(bigquery.Table(f"{PROJECT}.{dataset}.with-dash and space", schema=[SF("a", "STRING")]))
    assert client.get_table(f"{PROJECT}.{dataset}.with-dash and space").table_id == "with-dash and space"


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/managing-table-schemas")
def test_schema_update_adds_and_relaxes_only(client, dataset) -> None:
    table = client.create_table(
        bigquery.Table(f"{PROJECT}.{dataset}.evolve", schema=[SF("a", "STRING", mode="REQUIRED"), SF("b", "INTEGER")])
    )
    table.schema = [SF("a", "STRING"), SF("b", "INTEGER"), SF("c", "FLOAT")]
    updated = client.update_table(table, ["schema"])
    assert [(f.name, f.mode) for f in updated.schema] == [("a", "NULLABLE"), ("b", "NULLABLE"), ("c", "NULLABLE")]
    updated.schema = [SF("a", "STRING"), SF("b", "STRING"), SF("c", "FLOAT")]
    with pytest.raises(exceptions.BadRequest, match="changed type"):
        client.update_table(updated, ["schema"])
    assert client.get_table(f"{dataset}.evolve").schema[1].field_type == "INTEGER"


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/partitioned-tables")
def test_partitioning_column_must_be_a_time(client, dataset) -> None:
    table = bigquery.Table(f"{PROJECT}.{dataset}.p", schema=[SF("a", "STRING")])
    table.time_partitioning = bigquery.TimePartitioning(field="a")
    with pytest.raises(exceptions.BadRequest, match="TIMESTAMP, DATE or DATETIME"):
        client.create_table(table)
