"""The BigQuery -> DuckDB translation alone (no process): table names resolved, parameters renamed,
what cannot be carried over refused by name."""

from __future__ import annotations

import pytest

from services.bigquery.errors import BigQueryError
from services.bigquery.sql import TableRef, Translations, check_query_only, engine_error, translate


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


def test_unnamed_columns_are_named_as_bigquery_names_them() -> None:
    t = translate("SELECT count(*), a, t.b, ecommerce.purchase.tax, max(c) AS m, 1 + 1 FROM d.t", "p-1")
    assert t.sql.startswith("SELECT COUNT(*) AS f0_, a, t.b, ecommerce.purchase.tax, MAX(c) AS m, 1 + 1 AS f1_ ")
    assert translate("SELECT 1 UNION ALL SELECT 2", "p-1").sql == "SELECT 1 AS f0_ UNION ALL SELECT 2"


def test_a_dml_target_the_caller_binds_is_kept() -> None:
    t = translate("UPDATE __target AS t SET a = s.a FROM d.s WHERE t.id = s.id", "p-1", keep={"__target"})
    assert list(t.tables.values()) == [TableRef("p-1", "d", "s")] and "UPDATE __target AS t" in t.sql
    with pytest.raises(BigQueryError, match="only queries"):
        translate("UPDATE d.t SET a = 1 WHERE true", "p-1")


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("INSTALL httpfs", "INSTALL"),
        ("ATTACH '/tmp/x.db'", "ATTACH"),
        ("EXPLAIN ANALYZE COPY (SELECT 1) TO '/tmp/x'", "EXPLAIN COPY"),
        ("SELECT 1; DELETE FROM d.t WHERE true", "DELETE"),
        ("MERGE d.t USING d.s ON true WHEN MATCHED THEN DELETE", "MERGE"),
        ("  ", "empty"),
    ],
)
def test_read_only_callers_refuse_any_statement_but_a_query_by_its_name(sql: str, named: str) -> None:
    with pytest.raises(BigQueryError, match=named):
        check_query_only(sql)
    check_query_only("WITH c AS (SELECT 1) SELECT * FROM c")
    check_query_only("(SELECT 1)")


def test_duckdb_errors_in_bigquerys_words() -> None:
    assert (
        engine_error('sql: Binder Error: Referenced column "tax" not found in FROM clause!') == "Unrecognized name: tax"
    )
    assert (
        engine_error("Catalog Error: Scalar Function with name getenv does not exist!") == "Function not found: getenv"
    )
    assert engine_error("sql: Conversion Error: x") == "Conversion Error: x"


def test_kept_translations_are_keyed_by_text_project_dataset_and_prefix_and_bounded() -> None:
    kept = Translations(size=2)
    a = kept.translate("SELECT 1 FROM t", "p-1", "a")
    assert kept.translate("SELECT 1 FROM t", "p-1", "a") is a  # the same text again: the kept one
    b = kept.translate("SELECT 1 FROM t", "p-1", "b")
    assert a.tables["__bq_table_0"] == TableRef("p-1", "a", "t")
    assert b.tables["__bq_table_0"] == TableRef("p-1", "b", "t")
    v = kept.translate("SELECT 1 FROM t", "p-1", "b", prefix="v_")  # a view's: its own relation names
    assert "v___bq_table_0" in v.tables and kept.get("SELECT 1 FROM t", "p-1", "a") is None  # a: least recently used
    assert len(kept.kept) == 2
    with pytest.raises(BigQueryError, match="must be qualified"):  # an error is not kept
        kept.translate("SELECT 1 FROM t", "p-1")
    assert len(kept.kept) == 2 and kept.get("SELECT 1 FROM t", "p-1") is None
