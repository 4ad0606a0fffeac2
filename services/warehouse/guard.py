"""A query is confined to the warehouse: the one place that decides what SQL over it may touch.

Two calls, used by every reader (``services.warehouse.query``, so ``hyp sql``, the console's SQL box and
the stack's own readers) and meant for any new one (``hyp bigquery``):

- :func:`confined_connection` returns an in-memory DuckDB connection that can open files under the
  warehouse folder only. DuckDB enforces it, not a list of forbidden words: ``allowed_directories`` is
  the warehouse, ``enable_external_access`` is off (every other path, URL, ``ATTACH``, ``COPY``,
  ``EXPORT DATABASE``, ``INSTALL``/``LOAD``, extension auto-install/auto-load; ``getenv`` does not
  exist), and ``lock_configuration`` is on, so no ``SET``/``PRAGMA``/``RESET`` in a query turns any of
  it back on.
- :func:`check_read_only` refuses any statement but a query (``SELECT``, ``DESCRIBE``, ``SUMMARIZE``,
  ``EXPLAIN`` of a query). Inside the warehouse folder DuckDB could still write (``COPY ... TO`` a new
  Parquet file would become a live file of a table), so user SQL must pass this check too.

:func:`refusal` turns a DuckDB error into the one line a user sees.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import duckdb

from services.warehouse.tables import WarehouseError

_EXPLAIN = re.compile(r"\s*EXPLAIN(\s+ANALYZE)?\s+", re.IGNORECASE)
_KEYWORD = re.compile(r"\s*([A-Za-z]+)")
_NOT_ALLOWED = " - file system operations are disabled by configuration"


def confined_connection(warehouse_dir: str | os.PathLike[str]) -> duckdb.DuckDBPyConnection:
    """An in-memory connection that reads files under ``warehouse_dir`` only, with its settings locked.

    Views over the warehouse's files can still be (re)made on it (``query.refresh``); anything outside
    the folder, any extension and any change of setting raise ``duckdb.Error`` (see :func:`refusal`).
    """
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    try:  # in this order: allowed_directories is settable only while external access is on
        root = os.path.abspath(warehouse_dir).replace("'", "''")
        con.execute(f"SET allowed_directories = ['{root}']")
        with contextlib.suppress(duckdb.Error):  # a DuckDB without ICU has no zones: it is UTC already
            con.execute("SET GLOBAL TimeZone = 'UTC'")  # BigQuery's default zone; the warehouse's naive times are UTC
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


@dataclass
class _Base:
    connection: duckdb.DuckDBPyConnection
    users: int = 0  # cursors open now


_BASES: OrderedDict[str, _Base] = OrderedDict()  # warehouse folder -> its confined database, most recent last
_RETIRED: list[_Base] = []  # pushed out of _BASES, closed once their last cursor is
_BASES_LOCK = threading.Lock()
MAX_BASES = 4  # warehouse folders with a database kept open (a server has one; a test run has many)


@contextlib.contextmanager
def confined_cursor(warehouse_dir: str | os.PathLike[str]) -> Iterator[duckdb.DuckDBPyConnection]:
    """A new connection to this process's confined database of ``warehouse_dir`` (made on first use).

    The same confinement as :func:`confined_connection` (the settings are the database's, locked), without
    paying for a new database per query (tens of milliseconds): the cursor's registered relations and TEMP
    views are its own, gone when it is closed on leaving the ``with``.
    """
    root = os.path.abspath(warehouse_dir)
    with _BASES_LOCK:
        base = _BASES.pop(root, None) or _Base(confined_connection(root))
        _BASES[root] = base
        while len(_BASES) > MAX_BASES:
            _RETIRED.append(_BASES.popitem(last=False)[1])
        base.users += 1
        cursor = base.connection.cursor()
    try:
        yield cursor
    finally:
        cursor.close()
        with _BASES_LOCK:
            base.users -= 1
            for old in [r for r in _RETIRED if r.users == 0]:
                _RETIRED.remove(old)
                old.connection.close()


def check_read_only(sql: str) -> None:
    """Raise WarehouseError unless every statement only reads (an EXPLAIN's statement included)."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise WarehouseError(f"sql: {_first_line(exc)}") from None
    if not statements:
        raise WarehouseError("sql: empty query")
    for statement in statements:
        refused = _refused(statement.type.name, statement.query)
        if refused:
            raise WarehouseError(f"sql: only SELECT is allowed here, got {refused}")


def _refused(kind: str, text: str) -> str | None:
    """None for a query; otherwise the statement's name as typed (INSTALL, not DuckDB's kind LOAD)."""
    if kind == "SELECT":
        return None
    if kind == "EXPLAIN":  # EXPLAIN ANALYZE runs its statement: that one must be a query too
        match = _EXPLAIN.match(text)
        if match is None:
            return "EXPLAIN with options"
        try:
            inner = duckdb.extract_statements(text[match.end() :])
        except duckdb.Error:
            return "EXPLAIN with options"
        names = [_refused(s.type.name, s.query) for s in inner]
        refused = [n for n in names if n]
        return f"EXPLAIN {refused[0]}" if refused or not inner else None
    word = _KEYWORD.match(text)
    return word.group(1).upper() if word else kind


def refusal(exc: duckdb.Error) -> str:
    """One line for a failed query, saying what was refused when the confinement refused it."""
    line = _first_line(exc)
    if isinstance(exc, duckdb.PermissionException) or "configuration has been locked" in line:
        line = line.removeprefix("Permission Error: ").removeprefix("Invalid Input Error: ")
        line = line.replace(_NOT_ALLOWED, "").replace('""', '"')
        return f"sql: refused, a query reads the warehouse only: {line}"
    return f"sql: {line}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
