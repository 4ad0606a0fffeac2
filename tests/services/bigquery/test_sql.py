"""The BigQuery -> DuckDB translation alone (no process): table names resolved, parameters renamed,
what cannot be carried over refused by name."""

from __future__ import annotations

import pytest

from services.bigquery.errors import BigQueryError
from services.bigquery.sql import TableRef, translate


def test_tables_resolve_to_relations_with_their_names_as_aliases() -> None:
    t = translate("SELECT cloud_run.event FROM `p-1.ecommerce_sink.cloud_run`", "default-p")
    assert t.tables == {"__bq_table_0": TableRef("p-1", "ecommerce_sink", "cloud_run")}
    assert t.sql == "SELECT cloud_run.event FROM __bq_table_0 AS cloud_run"
    assert translate("SELECT 1 FROM d.t", "home-p").tables["__bq_table_0"] == TableRef("home-p", "d", "t")
    assert translate("SELECT 1 FROM t", "home-p", "d").tables["__bq_table_0"] == TableRef("home-p", "d", "t")


def test_ctes_are_not_tables() -> None:
    t = translate("WITH c AS (SELECT x FROM d.t) SELECT * FROM c", "p-1")
    assert list(t.tables.values()) == [TableRef("p-1", "d", "t")]


def test_functions_and_parameters() -> None:
    t = translate("SELECT COUNTIF(a > @lim), SAFE_CAST(b AS INT64) FROM d.t WHERE c = @lim", "p-1")
    assert "COUNT_IF" in t.sql and "TRY_CAST" in t.sql and t.named == ["lim"] and "$lim" in t.sql
    p = translate("SELECT 1 FROM d.t WHERE a IN UNNEST(?) AND b = ?", "p-1")
    assert p.positional == 2 and "$__p0" in p.sql and "$__p1" in p.sql and "?" not in p.sql


@pytest.mark.parametrize(
    "sql, message",
    [
        ("SELECT 1 FROM t", "must be qualified"),
        ("DELETE FROM d.t WHERE true", "DELETE"),
        ("SELECT 1; SELECT 2", "one statement"),
        ("SELECT * FROM ML.PREDICT(MODEL `d.m`, TABLE d.t)", "table functions"),
        ("SELECT @a, ?", "mix named and positional"),
        ("SELECT * FROM `region-us`.INFORMATION_SCHEMA.JOBS", "INFORMATION_SCHEMA"),
        ("SELEC 1", "Syntax error"),
    ],
)
def test_refusals_name_the_construct(sql: str, message: str) -> None:
    with pytest.raises(BigQueryError, match=message) as caught:
        translate(sql, "p-1")
    assert (caught.value.code, caught.value.reason) == (400, "invalidQuery")
