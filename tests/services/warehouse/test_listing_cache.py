"""A partition's listing is reused while its folder is unchanged (no per-file stat, footer or damage check per
query) and made again when a commit, merge or quarantine changes the folder."""

from __future__ import annotations

import os

import pytest

from services.warehouse import append, live, tables
from services.warehouse.query import files
from tests.services.warehouse.test_warehouse import rows

pytestmark = pytest.mark.local_only("hyp-local's warehouse listing")

TABLE = "cloud_run_anomaly"


def _age(folder) -> None:
    """The folder as an old partition has it: last changed a minute ago (past live.RACY_NS)."""
    st = folder.stat()
    os.utime(folder, ns=(st.st_atime_ns, st.st_mtime_ns - 60 * 10**9))


def test_an_unchanged_partition_is_listed_from_memory_and_a_commit_lists_it_again(tmp_path, monkeypatch):
    monkeypatch.setattr(live, "RECHECK_S", 3600.0)
    first, second = (append(tmp_path, TABLE, rows(5, start=5 * i))[0] for i in range(2))
    assert files(tmp_path, TABLE) == [first, second]  # checked (and the check recorded in the folder)
    _age(first.parent)
    assert files(tmp_path, TABLE) == [first, second]  # the folder changed: listed again, nothing to check
    second.write_bytes(b"not parquet")  # damaged in place: the folder does not change
    assert files(tmp_path, TABLE) == [first, second]  # reused: no file was looked at again
    third = append(tmp_path, TABLE, rows(5, start=10))[0]  # a commit renames into the folder
    assert files(tmp_path, TABLE) == [first, third]  # listed again: the damaged file is moved aside
    assert [p.name for p in live.quarantined(tmp_path, TABLE)] == [second.name]


def test_a_new_process_does_not_decode_the_checked_files_again(tmp_path, monkeypatch):
    monkeypatch.setattr(live, "RECHECK_S", 0.0)  # every call lists: this test is about the record
    (only,) = append(tmp_path, TABLE, rows(5))
    assert files(tmp_path, TABLE) == [only]
    record = only.parent / live.CHECKED_NAME
    assert only.name in record.read_text()  # what the next process (hyp sql) reads instead of decoding
    st = only.stat()
    data = bytearray(only.read_bytes())
    data[4:200] = os.urandom(196)  # a damaged page, same size, and the mtime put back: the record's key
    only.write_bytes(bytes(data))
    os.utime(only, ns=(st.st_atime_ns, st.st_mtime_ns))
    live._listings.clear()  # as a new process starts
    live._pages_ok.clear()
    assert files(tmp_path, TABLE) == [only]  # trusted from the record: not decoded again
    os.utime(only, ns=(st.st_atime_ns, st.st_mtime_ns + 1))  # changed in place: checked again
    assert files(tmp_path, TABLE) == []


def test_a_listing_is_made_again_after_recheck_s(tmp_path, monkeypatch):
    monkeypatch.setattr(live, "RECHECK_S", 0.0)
    (only,) = append(tmp_path, TABLE, rows(5))
    _age(only.parent)
    assert files(tmp_path, TABLE) == [only]
    only.write_bytes(b"not parquet")
    assert files(tmp_path, TABLE) == []


def _events(verdicts: list[dict]) -> list[dict]:
    """The verdict rows' columns that the event tables have too."""
    columns = set(tables.TABLES["cloud_run"].schema.names)
    return [{k: v for k, v in r.items() if k in columns} for r in verdicts]


def test_files_with_one_schema_share_one_schema_object_and_another_schema_gets_its_own(tmp_path, monkeypatch):
    monkeypatch.setattr(live, "_schemas", {})
    first, second = (append(tmp_path, TABLE, rows(5, start=5 * i))[0] for i in range(2))
    same = append(tmp_path, "dataflow_anomaly", rows(5, start=10))[0]  # another table with the verdicts' schema
    other = append(tmp_path, "cloud_run", _events(rows(5, start=15)))[0]  # the events' schema
    listed = live.live_footers(tmp_path, TABLE)  # what the listing cache keeps
    assert [f.path for f in listed] == [first, second]
    first_s, second_s = (f.schema for f in listed)
    assert first_s is second_s is live.footer(same)[2]
    other_s = live.footer(other)[2]
    assert other_s is not first_s and other_s != first_s
    assert other_s is live.footer(other)[2]  # a second read of the file: the cached entry, same instance
    assert first_s.equals(tables.TABLES[TABLE].schema) and other_s.equals(tables.TABLES["cloud_run"].schema)
    assert len(live._schemas) == 2


def test_the_schema_table_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(live, "_schemas", {})
    monkeypatch.setattr(live, "MAX_SCHEMAS", 1)
    verdicts = append(tmp_path, TABLE, rows(5))[0]
    kept = live.footer(verdicts)[2]
    other = append(tmp_path, "cloud_run", _events(rows(5)))[0]
    other_s = live.footer(other)[2]
    assert list(live._schemas.values()) == [other_s]  # the table was emptied: one distinct schema at the most
    assert live.footer(verdicts)[2] is kept  # the cached entry keeps the instance it holds


def test_what_is_known_of_files_compaction_removed_is_forgotten_at_the_next_listing(tmp_path, monkeypatch):
    """Round 23's soak: the footer, page-check and covers caches were bounded by a count only, so a long-running
    reader kept tens of thousands of gone files' entries. They now hold the files a listing finds."""
    from services.warehouse.compaction import Compactor

    monkeypatch.setattr(live, "RECHECK_S", 0.0)
    _fresh_stores(monkeypatch)
    for round_ in range(3):
        for i in range(6):
            append(tmp_path, TABLE, rows(5, start=100 * round_ + 5 * i))
        assert len(files(tmp_path, TABLE)) >= 6
        for _ in range(3):
            Compactor(tmp_path, grace_s=0, quiet_s=0, min_files=2).run_once()
        listed = files(tmp_path, TABLE)
        on_disk = [n for p in live.partitions(tmp_path, TABLE) for n in live.committed(p)]
        assert len(listed) <= len(on_disk) < 6 * (round_ + 1), on_disk  # merged, and the merged inputs deleted
        assert len(live._footers) == len(on_disk)  # not every file seen so far
        assert len(live._pages_ok) == len(on_disk)
        assert len(live._covers_of) <= len(on_disk)
    assert sum(r["n"] for r in query_counts(tmp_path)) == 90  # every row once


def query_counts(root):
    from services.warehouse.query import query

    return query(root, f"SELECT count(*) AS n FROM {TABLE}").to_pylist()


def test_a_compactor_that_never_queries_forgets_the_files_it_merged_away(tmp_path, monkeypatch):
    """The processor and detector compact their tables and seldom list them: what compaction learns (covers,
    checked pages of the files it writes) goes when the files do, at its own next pass."""
    from services.warehouse.compaction import Compactor

    _fresh_stores(monkeypatch)
    compactor = Compactor(tmp_path, grace_s=0, quiet_s=0, min_files=2)
    for round_ in range(8):
        for i in range(4):
            append(tmp_path, TABLE, rows(3, start=100 * round_ + 3 * i))
        for _ in range(2):
            compactor.run_once()
        on_disk = [n for p in live.partitions(tmp_path, TABLE) for n in live.committed(p)]
        known = len(live._footers) + len(live._pages_ok) + len(live._covers_of)
        assert known <= 3 * len(on_disk), (known, on_disk)  # not the 4 more files of every round
    assert len(live._pages_ok) >= 1  # compaction did record what it wrote


def _fresh_stores(monkeypatch) -> None:
    """What the listing module knows of files, emptied for this test (as in a new process)."""
    for store in (live._footers, live._pages_ok, live._covers_of):
        monkeypatch.setattr(store, "_by_partition", {})
        monkeypatch.setattr(store, "_entries", 0)
