"""A query is confined to the warehouse: DuckDB's file, extension and settings statements are refused in
``query`` (``read_only=True``, what ``hyp sql`` and the console's SQL box run) and through ``hyp sql`` as a
real process; the warehouse's own tables stay readable."""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from services.common.names import LABEL_SQL
from services.testing.hyp import run_hyp
from services.warehouse import WarehouseError, append
from services.warehouse.query import QueryTimeout, connect, files, query, refresh

pytestmark = pytest.mark.local_only(
    "hyp sql runs DuckDB SQL, which can reach files; BigQuery SQL has no file functions"
)

SECRET = "hyp-confinement-secret-7f3a"


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    """A warehouse with rows, beside a sibling folder (same name prefix) holding a secret file."""
    root = tmp_path / "wh"
    append(
        root,
        "pubsub_direct",
        [
            {
                "subscription_name": "s",
                "message_id": str(i),
                "publish_time": datetime(2026, 11, 22, 10, 0, i),
                "data": "{}",
                "attributes": '{"anomaly": "1"}' if i % 3 == 0 else "{}",
            }
            for i in range(6)
        ],
    )
    sibling = tmp_path / "wh2"
    sibling.mkdir()
    (sibling / "secret.csv").write_text(f"k\n{SECRET}\n")
    (tmp_path / "secret.txt").write_text(SECRET)
    return root


# (SQL, what its one-line error names) for each construct that must be refused; {root} is the warehouse,
# {outside} the folder holding it (and a secret file beside it).
REFUSED = [
    ("SELECT content FROM read_text('/etc/hostname')", "/etc/hostname"),
    ("SELECT * FROM read_csv('/etc/passwd', sep = ':')", "/etc/passwd"),
    ("SELECT * FROM read_parquet('/etc/passwd')", "/etc/passwd"),
    ("SELECT * FROM read_json('/etc/passwd')", "/etc/passwd"),
    ("SELECT * FROM read_blob('/etc/hostname')", "/etc/hostname"),
    ("SELECT * FROM '/etc/passwd'", "/etc/passwd"),
    ("SELECT * FROM glob('/etc/*')", "/etc/*"),
    ("SELECT * FROM sniff_csv('/etc/passwd')", "/etc/passwd"),
    ("SELECT content FROM read_text('{outside}/secret.txt')", "secret.txt"),
    ("SELECT content FROM read_text('{root}/../secret.txt')", "secret.txt"),
    ("SELECT * FROM read_csv('{outside}/wh2/secret.csv')", "secret.csv"),
    ("SELECT content FROM read_text('http://127.0.0.1:9/x')", "http://127.0.0.1:9/x"),
    ("SELECT getenv('HOME')", "getenv"),
    ("COPY (SELECT 1) TO '{outside}/out.csv'", "COPY"),
    ("COPY (SELECT 1) TO '{root}/pubsub_direct/date=2026-11-22/evil.parquet'", "COPY"),
    ("EXPLAIN ANALYZE COPY (SELECT 1) TO '{root}/pubsub_direct/date=2026-11-22/e.parquet'", "EXPLAIN COPY"),
    ("ATTACH '{outside}/x.db'", "ATTACH"),
    ("INSTALL httpfs", "INSTALL"),
    ("LOAD httpfs", "LOAD"),
    ("EXPORT DATABASE '{outside}/export'", "EXPORT"),
    ("IMPORT DATABASE '{outside}/export'", "IMPORT"),
    ("SET enable_external_access = true", "SET"),
    ("PRAGMA enable_external_access = true", "PRAGMA"),
    ("RESET lock_configuration", "RESET"),
    ("SELECT 1; SET allowed_directories = ['/']", "SET"),
]


def refused_sql(root: Path) -> list[tuple[str, str]]:
    return [(sql.format(root=root, outside=root.parent), named) for sql, named in REFUSED]


def assert_nothing_written(root: Path) -> None:
    assert not (root.parent / "out.csv").exists() and not (root.parent / "x.db").exists()
    assert not (root.parent / "export").exists()
    assert len(files(root, "pubsub_direct")) == 1  # nothing was written into the warehouse


def test_each_construct_is_refused_in_one_line_naming_it(warehouse: Path) -> None:
    for sql, named in refused_sql(warehouse):
        with pytest.raises(WarehouseError) as caught:
            query(warehouse, sql, read_only=True)
        message = str(caught.value)
        assert named in message and "\n" not in message and SECRET not in message, (sql, message)
    assert_nothing_written(warehouse)


def test_duckdb_itself_refuses_outside_files_and_setting_changes(warehouse: Path) -> None:
    """Without the read-only check too (the stack's own readers, ``hyp bigquery``): DuckDB's settings hold."""
    con = connect(warehouse)
    try:
        for sql in (
            "SELECT content FROM read_text('/etc/hostname')",
            f"SELECT * FROM read_csv('{warehouse.parent}/wh2/secret.csv')",
            f"COPY (SELECT 1) TO '{warehouse.parent}/out.csv'",
            "LOAD httpfs",
        ):
            with pytest.raises(duckdb.PermissionException):
                con.execute(sql)
        for sql in (
            "SET enable_external_access = true",
            "SET allowed_directories = ['/']",
            "RESET enable_external_access",
            "SET lock_configuration = false",
            "SET autoload_known_extensions = true",
        ):
            with pytest.raises(duckdb.InvalidInputException, match="locked"):
                con.execute(sql)
        setting = "SELECT value FROM duckdb_settings() WHERE name = 'enable_external_access'"
        assert con.execute(setting).fetchall() == [("false",)]
    finally:
        con.close()
    assert not (warehouse.parent / "out.csv").exists()


def test_the_warehouse_stays_readable(warehouse: Path) -> None:
    grouped = query(
        warehouse,
        f"SELECT {LABEL_SQL} AS anomaly, count(*) AS n FROM ecommerce_sink.pubsub_direct GROUP BY 1 ORDER BY 1",
        read_only=True,
    )
    assert grouped.to_pylist() == [{"anomaly": False, "n": 4}, {"anomaly": True, "n": 2}]
    assert query(warehouse, "SELECT count(*) AS n FROM cloud_run", read_only=True).to_pylist() == [{"n": 0}]
    direct = files(warehouse, "pubsub_direct")[0]  # the warehouse's own files, read by path
    assert query(warehouse, f"SELECT count(*) AS n FROM read_parquet('{direct}')").to_pylist() == [{"n": 6}]
    assert query(warehouse, "DESCRIBE pubsub_direct", read_only=True).num_rows > 0
    assert query(warehouse, "EXPLAIN ANALYZE SELECT count(*) FROM pubsub_direct", read_only=True).num_rows == 1


def test_a_long_lived_confined_connection_sees_new_files(warehouse: Path) -> None:
    con = connect(warehouse)
    try:
        append(
            warehouse, "pubsub_direct", [{"message_id": "new", "publish_time": datetime(2026, 11, 23), "data": "{}"}]
        )
        refresh(con, warehouse)
        assert con.execute("SELECT count(*) FROM pubsub_direct").fetchall() == [(7,)]
    finally:
        con.close()


def test_a_relative_warehouse_folder_is_confined_too(warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(warehouse.parent)
    assert query("wh", "SELECT count(*) AS n FROM pubsub_direct").to_pylist() == [{"n": 6}]
    with pytest.raises(WarehouseError, match=r"secret\.txt"):
        query("wh", "SELECT content FROM read_text('secret.txt')")


def test_a_runaway_query_is_stopped_inside_duckdb(warehouse: Path) -> None:
    caught: list[BaseException] = []

    def run() -> None:
        try:
            query(warehouse, "SELECT count(*) FROM range(1000000000000) a, pubsub_direct", timeout_s=0.5)
        except BaseException as exc:
            caught.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(120)  # bound: without the interrupt this query runs for hours
    assert not worker.is_alive() and len(caught) == 1 and isinstance(caught[0], QueryTimeout), caught
    assert "no answer within 0.5 s" in str(caught[0])
    assert query(warehouse, "SELECT count(*) AS n FROM pubsub_direct", timeout_s=30).to_pylist() == [{"n": 6}]


@pytest.mark.integration
@pytest.mark.parametrize(("template", "named"), REFUSED, ids=[sql[:40] for sql, _ in REFUSED])
def test_hyp_sql_refuses_with_exit_2_and_one_line(warehouse: Path, template: str, named: str) -> None:
    sql = template.format(root=warehouse, outside=warehouse.parent)
    done = run_hyp("sql", "--warehouse-dir", str(warehouse), sql, timeout=60)
    err = done.stderr.strip()
    assert done.returncode == 2 and done.stdout == "", done
    assert err.startswith("hyp sql: ") and named in err and len(err.splitlines()) == 1, err
    assert SECRET not in err
    assert_nothing_written(warehouse)


@pytest.mark.integration
def test_hyp_sql_still_answers_over_the_warehouse(warehouse: Path) -> None:
    done = run_hyp(
        "sql", "--warehouse-dir", str(warehouse), "--format", "csv",
        f"SELECT {LABEL_SQL} AS anomaly, count(*) AS n FROM pubsub_direct GROUP BY 1 ORDER BY 1",
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["anomaly,n", "False,4", "True,2"]


def test_a_cursor_of_the_shared_database_is_confined_and_keeps_its_views_to_itself(warehouse: Path) -> None:
    """``guard.confined_cursor`` (what ``hyp bigquery``'s jobs run on): the database's locked settings hold on
    every cursor, in UTC; one cursor's TEMP views and registered relations are not another's."""
    from services.warehouse import guard

    with guard.confined_cursor(warehouse) as one, guard.confined_cursor(warehouse) as two:
        for sql in (
            "SELECT content FROM read_text('/etc/hostname')",
            f"SELECT * FROM read_csv('{warehouse.parent}/wh2/secret.csv')",
            f"COPY (SELECT 1) TO '{warehouse.parent}/out.csv'",
        ):
            with pytest.raises(duckdb.PermissionException):
                one.execute(sql)
        for sql in ("SET enable_external_access = true", "SET GLOBAL TimeZone = 'Europe/Berlin'", "RESET TimeZone"):
            with pytest.raises(duckdb.InvalidInputException, match="locked"):
                two.execute(sql)
        assert two.execute("SELECT current_setting('TimeZone')").fetchall() == [("UTC",)]
        one.execute("CREATE TEMP VIEW mine AS SELECT 1 AS x")
        with pytest.raises(duckdb.CatalogException):
            two.execute("SELECT * FROM mine")
    with guard.confined_cursor(warehouse) as three, pytest.raises(duckdb.CatalogException):
        three.execute("SELECT * FROM mine")  # gone with its cursor
    assert not (warehouse.parent / "out.csv").exists()


def test_cursors_of_folders_pushed_out_stay_usable_until_closed(tmp_path: Path) -> None:
    from services.warehouse import guard

    with guard.confined_cursor(tmp_path / "first") as first:
        for i in range(guard.MAX_BASES + 2):  # more folders than databases kept: the first is pushed out
            with guard.confined_cursor(tmp_path / f"other{i}") as other:
                assert other.execute("SELECT 1").fetchall() == [(1,)]
        assert first.execute("SELECT 2").fetchall() == [(2,)]
    assert len(guard._BASES) <= guard.MAX_BASES and not guard._RETIRED
