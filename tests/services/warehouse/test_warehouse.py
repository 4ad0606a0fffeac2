import threading
from datetime import datetime

import pyarrow as pa
import pytest

from services.bigquery.sql_cli import main as sql_main
from services.warehouse import WarehouseError, append
from services.warehouse.compaction import Compactor
from services.warehouse.query import check_read_only, files, query


def rows(n, day=22, start=0):
    return [
        {
            "event_datetime": datetime(2026, 11, day, 10, 0, i % 60),
            "transaction_id": f"T{start + i}",
            "tax": 1.0,
            "shipping": 2.0,
            "value": 10.0 + i,
            "anomaly": i % 10 == 0,
            "score": 0.1,
            "model_version": "1",
            "message_id": str(start + i),
        }
        for i in range(n)
    ]


def test_append_partitions_by_date_and_queries_by_name(tmp_path):
    append(tmp_path, "cloud_run_anomaly", rows(5, day=21) + rows(3, day=22, start=5))
    assert sorted(p.parent.name for p in files(tmp_path, "cloud_run_anomaly")) == ["date=2026-11-21", "date=2026-11-22"]
    result = query(tmp_path, "SELECT count(*) AS n, sum(value) AS v FROM ecommerce_sink.cloud_run_anomaly")
    assert result.to_pylist() == [{"n": 8, "v": sum(10.0 + i for i in range(5)) + sum(10.0 + i for i in range(3))}]


def test_empty_tables_are_queryable(tmp_path):
    assert query(tmp_path, "SELECT count(*) AS n FROM cloud_run").to_pylist() == [{"n": 0}]
    assert "tax" in query(tmp_path, "SELECT * FROM cloud_run_anomaly").column_names
    # the nested record keeps its type on an empty table (the workshop's query before any event arrived)
    nested = query(tmp_path, "SELECT ecommerce.purchase.tax AS tax, ecommerce.items AS items FROM cloud_run")
    assert nested.num_rows == 0 and str(nested.schema.field("tax").type) == "double"
    assert str(nested.schema.field("items").type).startswith("list<")


def test_unknown_columns_and_tables_are_named(tmp_path):
    with pytest.raises(WarehouseError, match=r"unknown column.*bogus"):
        append(tmp_path, "cloud_run_anomaly", [{"bogus": 1, **rows(1)[0]}])
    with pytest.raises(WarehouseError, match="unknown table 'nope'"):
        append(tmp_path, "nope", rows(1))
    with pytest.raises(WarehouseError, match="cloud_run_anomaly"):
        append(tmp_path, "cloud_run_anomaly", [{**rows(1)[0], "tax": "lots"}])
    with pytest.raises(WarehouseError, match="event_datetime"):
        append(tmp_path, "cloud_run_anomaly", [{**rows(1)[0], "event_datetime": None}])


def test_concurrent_writers_and_readers_never_see_partial_files(tmp_path):
    errors: list[BaseException] = []

    def writer(k):
        try:
            for j in range(10):
                append(tmp_path, "cloud_run_anomaly", rows(100, start=k * 10_000 + j * 100))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    seen = []
    while any(t.is_alive() for t in threads):
        n = query(tmp_path, "SELECT count(*) AS n FROM cloud_run_anomaly").column("n")[0].as_py()
        assert n % 100 == 0  # whole files only
        seen.append(n)
    for t in threads:
        t.join()
    assert not errors
    assert query(tmp_path, "SELECT count(DISTINCT transaction_id) AS n FROM cloud_run_anomaly").to_pylist() == [
        {"n": 3000}
    ]


def test_compaction_keeps_every_row(tmp_path):
    for k in range(5):
        append(tmp_path, "cloud_run_anomaly", rows(10, start=k * 10))
    assert len(files(tmp_path, "cloud_run_anomaly")) == 5
    counts = Compactor(tmp_path, quiet_s=0).run_once()
    assert (counts["merged"], counts["files_merged"], counts["live_files"]) == (1, 5, 1)
    assert len(files(tmp_path, "cloud_run_anomaly")) == 1
    assert query(tmp_path, "SELECT count(*) AS n FROM cloud_run_anomaly").to_pylist() == [{"n": 50}]


def test_arrow_input_is_cast_to_the_schema(tmp_path):
    data = pa.table({"publish_time": [datetime(2026, 11, 22)], "data": ["{}"], "message_id": ["1"]})
    append(tmp_path, "pubsub_direct", data)
    assert query(tmp_path, "SELECT data FROM pubsub_direct").to_pylist() == [{"data": "{}"}]


def test_read_only_check():
    check_read_only("SELECT 1")
    with pytest.raises(WarehouseError, match="only SELECT"):
        check_read_only("DROP VIEW cloud_run")
    with pytest.raises(WarehouseError, match="sql"):
        check_read_only("SELEC oops")


def test_sql_cli_formats(tmp_path, capsys):
    append(tmp_path, "cloud_run_anomaly", rows(2))
    assert (
        sql_main(
            [
                "--warehouse-dir",
                str(tmp_path),
                "SELECT transaction_id FROM cloud_run_anomaly ORDER BY 1",
                "--format",
                "csv",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.splitlines() == ["transaction_id", "T0", "T1"]
    assert sql_main(["--warehouse-dir", str(tmp_path), "SELECT * FROM missing_table"]) == 2
    assert "missing_table" in capsys.readouterr().err
