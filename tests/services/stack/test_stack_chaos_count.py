"""The chaos run's arithmetic (services/testing/stack_chaos.py): what counts as lost or duplicated, which kill a
message is attributed to, which labelled anomalies were scored. Tables are DuckDB over Arrow data here; the
chaos runs read the warehouse's own query function."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from services.testing.stack_chaos import Kill, Published, anomalies, by_phase, count, phase_of

PUBLISHED = {
    "1": Published(100.0, "view_item", False),
    "2": Published(200.0, "purchase", False),
    "3": Published(300.0, "purchase", True),
    "4": Published(400.0, "purchase", True),
}
KILLS = [Kill("detector", 150.0, 10.0, 5.0, 1.0), Kill("processor", 350.0, 10.0, 5.0, 1.0)]


def query_over(tables: dict[str, pa.Table]) -> Any:
    con = duckdb.connect()
    for name, table in tables.items():
        con.register(name, table)
    return lambda sql: con.sql(sql).to_arrow_table()


def test_lost_and_duplicates_are_counted_by_message_id_per_table() -> None:
    query = query_over(
        {
            # "1" twice, "4" missing, "x" (published before recording) ignored
            "cloud_run": pa.table({"message_id": ["1", "1", "2", "3", "x"]}),
            "cloud_run_anomaly": pa.table({"message_id": ["2", "3", "4"], "anomaly": [False, True, False]}),
        }
    )
    counts = count(PUBLISHED, query, ("cloud_run", "cloud_run_anomaly"))
    assert (counts["cloud_run"].expected, counts["cloud_run"].lost, counts["cloud_run"].duplicates) == (
        4,
        ["4"],
        {"1": 1},
    )
    # only purchases belong in a verdict table: the view_item "1" is not lost there
    assert (counts["cloud_run_anomaly"].expected, counts["cloud_run_anomaly"].lost) == (3, [])
    found = anomalies(PUBLISHED, query, "cloud_run_anomaly")
    assert (found.labelled, found.scored, found.flagged) == (2, 2, 1)


def test_a_message_belongs_to_the_last_kill_before_its_publish_time() -> None:
    assert [phase_of(PUBLISHED[m].publish_s, KILLS) for m in "1234"] == ["before", "detector", "detector", "processor"]
    assert by_phase(["1", "3", "4"], PUBLISHED, KILLS) == {"before": 1, "detector": 1, "processor": 1}
    assert by_phase({"2": 2, "4": 1}, PUBLISHED, KILLS) == {"detector": 2, "processor": 1}
