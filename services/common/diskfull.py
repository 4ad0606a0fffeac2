"""A write the disk refused: no space (ENOSPC), a quota (EDQUOT) or the file size limit (EFBIG, how the tests
stand in for a full disk). Every store that writes (Pub/Sub's log, the warehouse, BigQuery's tables, Cloud
Storage's objects) answers it with a retryable error that says so, and keeps nothing of the failed write:
space coming back is all it takes to recover.
"""

from __future__ import annotations

import errno
import os

DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
SQLITE_FULL = 13  # "database or disk is full" (sqlite3.Error.sqlite_errorcode, primary code in the low byte)


def disk_full(exc: BaseException | None) -> OSError | None:
    """The disk-full ``OSError`` that ``exc`` is or was raised from (pyarrow and others wrap it; SQLite's
    SQLITE_FULL counts as ENOSPC), else None."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, OSError) and exc.errno in DISK_FULL:
            return exc
        if (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF == SQLITE_FULL:  # SQLite says it in its own words
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def refusal(service: str, exc: OSError) -> str:
    """The message an API gives for a refused write: what happened and what to do."""
    return (
        f"{service} cannot write its data folder ({os.strerror(exc.errno or 0)}); nothing of this request was kept. "
        "Free disk space and retry."
    )
