"""The corruption tier for the warehouse (issue 18): Parquet files with a truncated tail, a zeroed footer,
garbage bytes, and a damaged page behind an intact footer. Every reader (DuckDB queries, hyp bigquery's
catalog, the compactor) serves what is intact, moves the damaged file aside with its reason, and loses no row
that was intact; a damaged merged file gives its rows back from the files it replaced while they are on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.warehouse import append, live
from services.warehouse.compaction import Compactor
from services.warehouse.live import QUARANTINE_DIR, quarantined
from services.warehouse.query import files, query
from tests.services.warehouse.test_warehouse import rows

pytestmark = pytest.mark.local_only("hyp-local's warehouse files")

TABLE = "cloud_run_anomaly"


@pytest.fixture(autouse=True)
def _recheck_at_once(monkeypatch):
    """These tests damage a file in place (its folder unchanged) right after a query listed it: the listing is
    checked again at once instead of within live.RECHECK_S. test_listing_cache tests the reuse itself."""
    monkeypatch.setattr(live, "RECHECK_S", 0.0)


def _count(warehouse: Path) -> int:
    return query(warehouse, f"SELECT count(*) AS n FROM {TABLE}").to_pylist()[0]["n"]


def _three_files(warehouse: Path) -> list[Path]:
    written = [append(warehouse, TABLE, rows(10, start=10 * i))[0] for i in range(3)]
    assert _count(warehouse) == 30
    return written


def _truncate(path: Path) -> None:
    os.truncate(path, path.stat().st_size - 7)


def _zero_footer(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.seek(size - 64)
        fh.write(b"\0" * 64)


def _garbage(path: Path) -> None:
    path.write_bytes(os.urandom(path.stat().st_size))


@pytest.mark.parametrize("damage", [_truncate, _zero_footer, _garbage], ids=["truncated", "zeroed-footer", "garbage"])
def test_queries_serve_the_intact_files_and_move_the_damaged_one_aside(tmp_path, damage):
    _, second, _ = _three_files(tmp_path)
    damage(second)
    assert _count(tmp_path) == 20  # the intact rows, every one
    assert second not in files(tmp_path, TABLE)
    [moved] = quarantined(tmp_path, TABLE)
    assert moved.name == second.name and QUARANTINE_DIR in moved.parts
    assert moved.with_name(moved.name + ".reason").read_text().strip()
    assert _count(tmp_path) == 20  # and again, from the listing without it


def test_compaction_merges_around_a_damaged_file(tmp_path):
    _, second, _ = _three_files(tmp_path)
    _truncate(second)
    Compactor(tmp_path, grace_s=0, min_files=2).run_once()
    assert _count(tmp_path) == 20
    assert [p.name for p in quarantined(tmp_path, TABLE)] == [second.name]


def test_a_damaged_page_behind_an_intact_footer_is_moved_aside_by_the_compactor(tmp_path):
    _, second, _ = _three_files(tmp_path)
    data = bytearray(second.read_bytes())
    data[4:200] = os.urandom(196)  # the first column chunk's pages; the footer at the end is untouched
    second.write_bytes(bytes(data))
    compactor = Compactor(tmp_path, grace_s=0, min_files=2)
    compactor.run_once()  # the merge fails on the damaged file and moves it aside
    compactor.run_once()  # the next run merges what is left
    assert [p.name for p in quarantined(tmp_path, TABLE)] == [second.name]
    assert _count(tmp_path) == 20
    assert len(files(tmp_path, TABLE)) == 1  # the two intact files, merged


def test_a_damaged_merged_file_gives_its_rows_back_from_the_files_it_replaced(tmp_path):
    _three_files(tmp_path)
    Compactor(tmp_path, grace_s=3600, min_files=2).run_once()  # merged; the sources stay for the grace period
    [merged] = files(tmp_path, TABLE)
    assert merged.name.endswith(".merged.parquet")
    _zero_footer(merged)
    assert _count(tmp_path) == 30  # every row, from the three sources
    assert [p.name for p in quarantined(tmp_path, TABLE)] == [merged.name]


def _damage_page(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[4:200] = os.urandom(196)  # the first column chunk's pages; the footer at the end is untouched
    path.write_bytes(bytes(data))


def test_a_damaged_page_in_a_file_no_merge_reads_is_moved_aside_by_queries(tmp_path):
    _, second, _ = _three_files(tmp_path)  # no compactor: only queries read the file
    _damage_page(second)
    assert _count(tmp_path) == 20  # the intact rows, every one
    [moved] = quarantined(tmp_path, TABLE)
    assert moved.name == second.name
    assert "page" in moved.with_name(moved.name + ".reason").read_text()
    assert _count(tmp_path) == 20


def test_a_damaged_page_in_a_merged_file_gives_its_rows_back_from_the_files_it_replaced(tmp_path):
    _three_files(tmp_path)
    Compactor(tmp_path, grace_s=3600, min_files=2).run_once()
    [merged] = files(tmp_path, TABLE)
    _damage_page(merged)
    assert _count(tmp_path) == 30
    assert [p.name for p in quarantined(tmp_path, TABLE)] == [merged.name]


@pytest.mark.integration
@pytest.mark.local_only("hyp-local's warehouse files, damaged on disk, behind Google's BigQuery client")
def test_hyp_bigquery_serves_the_intact_rows_of_a_table_with_a_damaged_page(tmp_path):
    from services.testing.bigquery import bigquery_client
    from services.testing.hyp import HypProcess

    warehouse = tmp_path / "warehouse"
    _, second, _ = _three_files(warehouse)
    _damage_page(second)  # while hyp bigquery is down (its footer still says 10 rows)
    env = dict(os.environ, HYP_WAREHOUSE_DIR=str(warehouse), HYP_PROJECT="test-project")
    with HypProcess("bigquery", log_path=tmp_path / "bigquery.log", env=env).start(60) as server:
        client = bigquery_client(server.url, "test-project")
        table = f"test-project.ecommerce_sink.{TABLE}"
        (row,) = client.query_and_wait(f"SELECT count(*) AS n FROM `{table}`")
        assert row["n"] == 20
        assert len(list(client.list_rows(table))) == 20
    assert [p.name for p in quarantined(warehouse, TABLE)] == [second.name]
