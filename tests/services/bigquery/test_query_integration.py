"""Queries through Google's client: jobs.insert (query()), jobs.query (query_and_wait()), getQueryResults
with paging, BigQuery Standard SQL translated to DuckDB, parameters, and what is refused with a 400."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from google.api_core import exceptions
from google.cloud import bigquery

from tests.services.bigquery.conftest import PROJECT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/query"),
]

SF = bigquery.SchemaField
SCHEMA = [
    SF("event_datetime", "TIMESTAMP"),
    SF("event", "STRING"),
    SF("user_id", "STRING"),
    SF(
        "ecommerce",
        "RECORD",
        fields=[
            SF("items", "RECORD", mode="REPEATED", fields=[SF("item_id", "STRING"), SF("price", "FLOAT")]),
            SF("purchase", "RECORD", fields=[SF("tax", "FLOAT"), SF("value", "NUMERIC")]),
        ],
    ),
]


def _purchase(i: int) -> dict:
    return {
        "event_datetime": f"2024-05-0{1 + i % 3}T12:00:00Z",
        "event": "purchase",
        "user_id": f"u{i}",
        "ecommerce": {
            "items": [{"item_id": f"i{i}", "price": 1.0}, {"item_id": f"j{i}", "price": 2.0}],
            "purchase": {"tax": i / 10, "value": f"{i}.50"},
        },
    }


@pytest.fixture
def events(client, dataset) -> str:
    table = bigquery.Table(f"{PROJECT}.{dataset}.cloud_run", schema=SCHEMA)
    table.time_partitioning = bigquery.TimePartitioning(field="event_datetime")
    client.create_table(table)
    rows = [_purchase(i) for i in range(10)] + [{"event_datetime": "2024-05-01T00:00:00Z", "event": "view"}] * 5
    assert client.insert_rows_json(table, rows) == []
    return f"{PROJECT}.{dataset}.cloud_run"


def test_struct_field_access_backticked_names(client, events) -> None:
    """The workshop's training query shape: `project.dataset.table` and ecommerce.purchase.tax."""
    sql = f"SELECT ecommerce.purchase.tax, ecommerce.purchase.value FROM `{events}` WHERE event = 'purchase' ORDER BY 1"
    rows = list(client.query(sql).result())
    assert [r["tax"] for r in rows] == [i / 10 for i in range(10)]
    assert rows[3]["value"] == Decimal("3.5")


def test_query_and_wait_and_types(client, events, dataset) -> None:
    sql = f"SELECT user_id, event_datetime FROM {dataset}.cloud_run WHERE user_id = 'u4'"
    (row,) = list(client.query_and_wait(sql))
    assert row["event_datetime"] == dt.datetime(2024, 5, 2, 12, tzinfo=dt.UTC)


def test_bigquery_functions(client, events) -> None:
    sql = f"""
        SELECT COUNTIF(event = 'view') AS views, COUNT(*) AS total, SAFE_CAST('x' AS INT64) AS bad,
               SAFE_CAST('7' AS INT64) AS good
        FROM `{events}`"""
    (row,) = list(client.query(sql).result())
    assert (row["views"], row["total"], row["bad"], row["good"]) == (5, 15, None, 7)
    assert isinstance(row["views"], int)  # INT64, as BigQuery's COUNTIF


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/standard-sql/date_functions#date_add")
def test_date_add_and_date_sub_return_a_date(client) -> None:
    """DATE_ADD/DATE_SUB take and return a DATE in BigQuery (DuckDB's DATE + INTERVAL is a TIMESTAMP)."""
    sql = """SELECT DATE_ADD(DATE '2024-01-31', INTERVAL 3 DAY) AS a,
                    DATE_SUB(DATE '2024-03-31', INTERVAL 1 MONTH) AS b, DATE_ADD(DATE '2024-01-01', INTERVAL 2 WEEK)"""
    job = client.query(sql)
    (row,) = list(job.result())
    assert [f.field_type for f in job.result().schema] == ["DATE", "DATE", "DATE"]
    assert tuple(row.values()) == (dt.date(2024, 2, 3), dt.date(2024, 2, 29), dt.date(2024, 1, 15))


def test_unnest(client, events) -> None:
    sql = f"SELECT item.item_id, item.price FROM `{events}` AS e, UNNEST(e.ecommerce.items) AS item ORDER BY 1"
    rows = list(client.query(sql).result())
    assert len(rows) == 20 and rows[0]["item_id"] == "i0" and rows[0]["price"] == 1.0


def test_paging_and_dataframe(client, events) -> None:
    job = client.query(f"SELECT user_id FROM `{events}` WHERE event = 'purchase'")
    pages = list(job.result(page_size=4).pages)
    assert [p.num_items for p in pages] == [4, 4, 2]
    frame = job.to_dataframe(create_bqstorage_client=False)
    assert sorted(frame["user_id"]) == sorted(f"u{i}" for i in range(10))


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/parameterized-queries")
def test_named_and_positional_parameters(client, events) -> None:
    named = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("ev", "STRING", "purchase"),
            bigquery.ScalarQueryParameter("min_tax", "FLOAT64", 0.75),
        ]
    )
    sql = f"SELECT user_id FROM `{events}` WHERE event = @ev AND ecommerce.purchase.tax > @min_tax ORDER BY 1"
    assert [r["user_id"] for r in client.query(sql, job_config=named).result()] == ["u8", "u9"]
    positional = bigquery.QueryJobConfig(query_parameters=[bigquery.ArrayQueryParameter(None, "STRING", ["u1", "u2"])])
    sql = f"SELECT COUNT(*) AS n FROM `{events}` WHERE user_id IN UNNEST(?)"
    assert next(iter(client.query(sql, job_config=positional).result()))["n"] == 2


@pytest.mark.parametrize(
    "sql, message",
    [
        ("SELEC 1", "Syntax error"),
        ("SELECT * FROM read_csv('/etc/passwd')", "not supported"),
        ("SELECT * FROM unqualified", "must be qualified with a dataset"),
        ("SELECT no_such_function(1)", "no_such_function"),
        ("DELETE FROM d.t", "must have a WHERE clause"),  # DML itself: test_dml_integration.py
        ("UPDATE d.t SET a = 1", "must have a WHERE clause"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("SELECT * FROM ML.GENERATE_TEXT(MODEL `d.m`, TABLE d.t)", "not supported"),  # ML.PREDICT: test_ml_*
    ],
)
def test_refused_queries_are_bad_requests(client, sql, message) -> None:
    with pytest.raises(exceptions.BadRequest, match=message):
        client.query(sql).result()
    with pytest.raises(exceptions.BadRequest, match=message):
        client.query_and_wait(sql)


def test_unknown_table_is_not_found(client, dataset) -> None:
    with pytest.raises(exceptions.NotFound, match="Table"):
        client.query_and_wait(f"SELECT * FROM `{PROJECT}.{dataset}.nothing`")


@pytest.mark.local_only("DuckDB's file functions are refused: a query reads the table's own files only")
def test_file_functions_are_refused(client, events) -> None:
    for sql in ("SELECT read_text('/etc/passwd')", "SELECT * FROM glob('/etc/*')", "SELECT getenv('HOME')"):
        with pytest.raises(exceptions.BadRequest):
            client.query_and_wait(sql)


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/running-queries#dry-run")
def test_dry_run_estimates_bytes(client, events) -> None:
    job = client.query(f"SELECT user_id FROM `{events}`", job_config=bigquery.QueryJobConfig(dry_run=True))
    assert job.total_bytes_processed and job.total_bytes_processed > 0


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/information-schema-columns")
def test_information_schema_tables_and_columns(client, events, dataset) -> None:
    tables = client.query_and_wait(
        f"SELECT table_name, table_type FROM `{PROJECT}.{dataset}.INFORMATION_SCHEMA.TABLES`"
    )
    assert [tuple(r.values()) for r in tables] == [("cloud_run", "BASE TABLE")]
    sql = f"""SELECT column_name, data_type, is_partitioning_column FROM {dataset}.INFORMATION_SCHEMA.COLUMNS
              WHERE table_name = 'cloud_run' ORDER BY ordinal_position"""
    assert [tuple(r.values()) for r in client.query_and_wait(sql)] == [
        ("event_datetime", "TIMESTAMP", "YES"),
        ("event", "STRING", "NO"),
        ("user_id", "STRING", "NO"),
        (
            "ecommerce",
            "STRUCT<items ARRAY<STRUCT<item_id STRING, price FLOAT64>>, purchase STRUCT<tax FLOAT64, value NUMERIC>>",
            "NO",
        ),
    ]
    with pytest.raises(exceptions.BadRequest, match="INFORMATION_SCHEMA"):
        client.query_and_wait(f"SELECT * FROM {dataset}.INFORMATION_SCHEMA.JOBS")


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/views")
def test_views(client, events, dataset) -> None:
    view = bigquery.Table(f"{PROJECT}.{dataset}.purchases")
    view.view_query = f"SELECT user_id, ecommerce.purchase.tax AS tax FROM `{events}` WHERE event = 'purchase'"
    created = client.create_table(view)
    assert created.table_type == "VIEW" and [f.name for f in created.schema] == ["user_id", "tax"]
    over = bigquery.Table(f"{PROJECT}.{dataset}.big_tax")
    over.view_query = f"SELECT user_id FROM {dataset}.purchases WHERE tax >= 0.8"  # a view over a view
    client.create_table(over)
    rows = client.query_and_wait(f"SELECT user_id FROM `{PROJECT}.{dataset}.big_tax` ORDER BY 1")
    assert [r["user_id"] for r in rows] == ["u8", "u9"]
    with pytest.raises(exceptions.BadRequest, match="VIEW"):
        list(client.list_rows(f"{dataset}.purchases", selected_fields=[bigquery.SchemaField("user_id", "STRING")]))
    bad = bigquery.Table(f"{PROJECT}.{dataset}.broken")
    bad.view_query = "SELECT nope FROM"
    with pytest.raises(exceptions.BadRequest):
        client.create_table(bad)


def test_default_dataset(client, events, dataset) -> None:
    config = bigquery.QueryJobConfig(default_dataset=f"{PROJECT}.{dataset}")
    rows = client.query("SELECT COUNT(*) AS n FROM cloud_run", job_config=config).result()
    assert next(iter(rows))["n"] == 15


def test_the_same_query_text_follows_its_default_dataset_parameters_and_views(client, events, dataset) -> None:
    """The server keeps the translation of a query's text (sql.Translations): the same text must still read the
    default dataset of each request, its parameters and a view's current query."""
    other = f"ds_{dataset}_b"
    client.create_dataset(other)
    try:
        table = bigquery.Table(f"{PROJECT}.{other}.cloud_run", schema=SCHEMA)
        client.create_table(table)
        assert client.insert_rows_json(table, [_purchase(i) for i in range(2)]) == []
        sql = "SELECT COUNT(*) AS n FROM cloud_run"
        counts = []
        for home in (dataset, other, dataset, other):
            config = bigquery.QueryJobConfig(default_dataset=f"{PROJECT}.{home}")
            counts.append(next(iter(client.query_and_wait(sql, job_config=config)))["n"])
        assert counts == [15, 2, 15, 2]
        by_user = f"SELECT COUNT(*) AS n FROM `{events}` WHERE user_id = @u"
        for user, n in (("u1", 1), ("nobody", 0), ("u1", 1)):
            config = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("u", "STRING", user)])
            assert next(iter(client.query_and_wait(by_user, job_config=config)))["n"] == n
        view = bigquery.Table(f"{PROJECT}.{other}.chosen")
        view.view_query = f"SELECT user_id FROM `{events}` WHERE event = 'purchase'"
        client.create_table(view)
        over_view = f"SELECT COUNT(*) AS n FROM `{PROJECT}.{other}.chosen`"
        assert next(iter(client.query_and_wait(over_view)))["n"] == 10
        client.delete_table(view)
        view.view_query = f"SELECT user_id FROM `{events}` WHERE event = 'view'"
        client.create_table(view)
        assert next(iter(client.query_and_wait(over_view)))["n"] == 5
    finally:
        client.delete_dataset(other, delete_contents=True, not_found_ok=True)


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/rest/v2/JobCreationReason")
def test_job_creation_optional_answers_a_small_result_without_a_job(client, events) -> None:
    """query_and_wait with JOB_CREATION_OPTIONAL: rows that fit the first page come back with a queryId and no
    job (nothing to get or list); more rows than a page make a job whose further pages the client reads."""
    optional = bigquery.Client(
        project=PROJECT,
        credentials=client._credentials,
        client_options={"api_endpoint": client._connection.API_BASE_URL},
        default_job_creation_mode="JOB_CREATION_OPTIONAL",
    )
    sql = f"SELECT user_id FROM `{events}` WHERE event = 'purchase' ORDER BY user_id"
    rows = optional.query_and_wait(sql)
    assert rows.job_id is None and rows.query_id and rows.total_rows == 10
    users = [r["user_id"] for r in rows]
    assert users == sorted(f"u{i}" for i in range(10))
    assert rows.query_id not in {job.job_id for job in client.list_jobs()}
    paged = optional.query_and_wait(sql, page_size=3)  # maxResults 3: the result needs a job
    assert paged.job_id is not None and [r["user_id"] for r in paged] == users
    assert client.get_job(paged.job_id).state == "DONE"
    (dml,) = [optional.query_and_wait(f"UPDATE `{events}` SET user_id = 'v' WHERE user_id = 'u1'")]
    assert dml.job_id is None and dml.num_dml_affected_rows == 1
    with pytest.raises(exceptions.BadRequest, match="Unrecognized name"):
        optional.query_and_wait(f"SELECT nope FROM `{events}`")


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/standard-sql/data-definition-language")
def test_ddl_and_insert(client, events, dataset) -> None:
    client.query_and_wait(
        f"CREATE TABLE {dataset}.made (id INT64 NOT NULL, tags ARRAY<STRING>, info STRUCT<tax FLOAT64, note STRING>)"
    )
    made = client.get_table(f"{dataset}.made")
    assert [(f.name, f.field_type, f.mode) for f in made.schema] == [
        ("id", "INTEGER", "REQUIRED"), ("tags", "STRING", "REPEATED"), ("info", "RECORD", "NULLABLE"),
    ]  # fmt: skip
    job = client.query(f"INSERT INTO {dataset}.made (id, tags) VALUES (1, ['a']), (2, [])")
    job.result()
    assert job.num_dml_affected_rows == 2
    client.query_and_wait(f"INSERT {dataset}.made SELECT 3, ['x', 'y'], STRUCT(0.5 AS tax, 'n' AS note)")
    rows = client.query_and_wait(f"SELECT id, ARRAY_LENGTH(tags) AS n, info.tax FROM {dataset}.made ORDER BY id")
    assert [tuple(r.values()) for r in rows] == [(1, 1, None), (2, 0, None), (3, 2, 0.5)]
    with pytest.raises(exceptions.BadRequest, match="id"):  # NOT NULL column left out
        client.query_and_wait(f"INSERT INTO {dataset}.made (tags) VALUES (['z'])")
    assert client.get_table(f"{dataset}.made").num_rows == 3

    sql = f"SELECT user_id, ecommerce.purchase.tax FROM `{events}` WHERE event = 'purchase'"
    client.query_and_wait(f"CREATE TABLE {dataset}.taxes AS {sql}")
    assert client.get_table(f"{dataset}.taxes").num_rows == 10
    with pytest.raises(exceptions.Conflict):
        client.query_and_wait(f"CREATE TABLE {dataset}.taxes AS SELECT 1 AS a")
    client.query_and_wait(f"CREATE TABLE IF NOT EXISTS {dataset}.taxes AS SELECT 1 AS a")
    client.query_and_wait(f"CREATE OR REPLACE TABLE {dataset}.taxes AS SELECT 1 AS a")
    assert client.get_table(f"{dataset}.taxes").num_rows == 1

    client.query_and_wait(f"CREATE VIEW {dataset}.v AS SELECT a + 1 AS b FROM {dataset}.taxes")
    assert next(iter(client.query_and_wait(f"SELECT b FROM {dataset}.v")))["b"] == 2
    client.query_and_wait(f"DROP VIEW {dataset}.v")
    client.query_and_wait(f"DROP TABLE {dataset}.taxes")
    client.query_and_wait(f"DROP TABLE IF EXISTS {dataset}.taxes")
    with pytest.raises(exceptions.NotFound):
        client.query_and_wait(f"DROP TABLE {dataset}.taxes")


@pytest.mark.gcp_parity("https://cloud.google.com/python/docs/reference/bigquery/latest/dbapi")
def test_dbapi(client, events) -> None:
    from google.cloud.bigquery import dbapi

    connection = dbapi.connect(client)
    cursor = connection.cursor()
    cursor.execute(f"SELECT user_id FROM `{events}` WHERE user_id = %(user)s", {"user": "u3"})
    assert [tuple(row.values()) for row in cursor.fetchall()] == [("u3",)]
    cursor.execute(f"SELECT COUNT(*) FROM `{events}`")
    assert cursor.fetchone()[0] == 15
    connection.close()


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/writing-results")
def test_destination_table_and_write_dispositions(client, events, dataset) -> None:
    target = f"{PROJECT}.{dataset}.results"
    config = bigquery.QueryJobConfig(destination=target)
    sql = f"SELECT user_id, ecommerce.purchase.tax AS tax FROM `{events}` WHERE event = 'purchase'"
    assert len(list(client.query(sql, job_config=config).result())) == 10
    assert client.get_table(target).num_rows == 10
    with pytest.raises(exceptions.Conflict):  # WRITE_EMPTY, the default for a destination
        client.query(sql, job_config=config).result()
    config.write_disposition = bigquery.WriteDisposition.WRITE_APPEND
    client.query(sql, job_config=config).result()
    assert client.get_table(target).num_rows == 20
    config.write_disposition = bigquery.WriteDisposition.WRITE_TRUNCATE  # rows and schema replaced
    client.query(f"SELECT 7 AS n FROM `{events}` LIMIT 3", job_config=config).result()
    table = client.get_table(target)
    assert table.num_rows == 3 and [f.name for f in table.schema] == ["n"]
    assert [r["n"] for r in client.list_rows(target)] == [7, 7, 7]


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/managing-tables#copy-table")
def test_copy_table(client, events, dataset) -> None:
    client.copy_table(events, f"{PROJECT}.{dataset}.copy").result()
    copy = client.get_table(f"{dataset}.copy")
    assert copy.num_rows == 15 and [f.name for f in copy.schema] == [f.name for f in client.get_table(events).schema]
    with pytest.raises(exceptions.Conflict):
        client.copy_table(events, f"{PROJECT}.{dataset}.copy").result()
    config = bigquery.CopyJobConfig(write_disposition=bigquery.WriteDisposition.WRITE_APPEND)
    client.copy_table(events, f"{PROJECT}.{dataset}.copy", job_config=config).result()
    assert client.get_table(f"{dataset}.copy").num_rows == 30


def test_a_column_added_later_reads_as_null_in_older_rows(client, events) -> None:
    table = client.get_table(events)
    table.schema = [*table.schema, bigquery.SchemaField("added", "STRING")]
    client.update_table(table, ["schema"])
    rows = list(client.query_and_wait(f"SELECT COUNT(*) AS n, COUNT(added) AS a FROM `{events}`"))
    assert [tuple(r.values()) for r in rows] == [(15, 0)]
    assert client.insert_rows_json(events, [{"event": "late", "added": "yes"}]) == []
    rows = list(client.query_and_wait(f"SELECT added FROM `{events}` WHERE added IS NOT NULL"))
    assert [r["added"] for r in rows] == ["yes"]


@pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/list")
def test_list_jobs_newest_first(client, events) -> None:
    first = client.query(f"SELECT count(*) AS n FROM {events}")
    first.result()
    second = client.query("SELECT 2 AS two")
    second.result()
    listed = list(client.list_jobs(max_results=2))
    assert [j.job_id for j in listed] == [second.job_id, first.job_id]
    assert all(isinstance(j, bigquery.QueryJob) and j.state == "DONE" for j in listed)
    assert listed[1].query == f"SELECT count(*) AS n FROM {events}"
    assert second.job_id in {j.job_id for j in client.list_jobs(state_filter="done", max_results=50)}
    assert not list(client.list_jobs(state_filter="running"))
