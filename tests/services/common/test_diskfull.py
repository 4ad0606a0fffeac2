"""What counts as a full disk: the errno family, however deep the library wrapped it, and SQLite's own code."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from services.common.diskfull import disk_full, refusal


def _raised(make) -> BaseException:
    try:
        make()
    except BaseException as exc:
        return exc
    raise AssertionError("nothing raised")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_the_errno_family_is_a_full_disk_even_wrapped(code: int) -> None:
    def wrapped() -> None:
        try:
            raise OSError(code, "write")
        except OSError as exc:
            raise RuntimeError("the library's own error") from exc

    found = disk_full(_raised(wrapped))
    assert found is not None and found.errno == code


def test_other_failures_are_not() -> None:
    assert disk_full(PermissionError(errno.EACCES, "denied")) is None
    assert disk_full(ValueError("bad")) is None
    assert disk_full(None) is None


def test_sqlite_says_it_in_its_own_words(tmp_path: Path) -> None:
    con = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    con.execute("CREATE TABLE t (b BLOB)")
    con.execute(f"PRAGMA max_page_count = {con.execute('PRAGMA page_count').fetchone()[0]}")

    def fill() -> None:
        for _ in range(100_000):
            con.execute("INSERT INTO t VALUES (randomblob(64))")

    full = disk_full(_raised(fill))
    assert full is not None and full.errno == errno.ENOSPC
    assert refusal("hyp x", full).startswith("hyp x cannot write its data folder (No space left on device);")
