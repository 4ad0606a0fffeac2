"""The corruption tier for the warehouse (issue 18): Parquet files with a truncated tail, a zeroed footer,
garbage bytes, and a damaged page behind an intact footer. Every reader (DuckDB queries, hyp bigquery's
catalog, the compactor) serves what is intact, moves the damaged file aside with its reason, and loses no row
that was intact; a damaged merged file gives its rows back from the files it replaced while they are on disk."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.warehouse import append
from services.warehouse.compaction import Compactor
from services.warehouse.live import QUARANTINE_DIR, quarantined
from services.warehouse.query import files, query
from tests.services.warehouse.test_warehouse import rows

pytestmark = pytest.mark.local_only("hyp-local's warehouse files")

TABLE = "cloud_run_anomaly"


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
