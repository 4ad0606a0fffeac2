"""The newest purchases, kept up to date by reading only the warehouse files added since the last look.

The sensors used to re-read every file of ``cloud_run`` each tick. :class:`RecentWindow` keeps at most
``rows`` purchases in memory and, on :meth:`update`, folds in only the live files it has not seen
(``services.warehouse.query.files``). A file that replaces others (compaction) holds rows already
seen: rows are merged with ``DISTINCT``, so a re-read never duplicates one, and the window is the
same as a full ``ORDER BY event_datetime DESC LIMIT rows`` over the whole table.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pyarrow as pa

from services.warehouse.query import files

COLUMNS = "event_datetime, tax, shipping, value, transaction_id, message_id"
_WHERE = "event = 'purchase' AND tax IS NOT NULL AND shipping IS NOT NULL AND value IS NOT NULL"


class RecentWindow:
    def __init__(self, warehouse_dir: str | os.PathLike[str], rows: int, table: str = "cloud_run") -> None:
        self.warehouse_dir = Path(warehouse_dir)
        self.rows = rows
        self.events_table = table
        self.table: pa.Table | None = None  # newest first, at most ``rows``
        self._seen: set[str] = set()  # the live files already folded in (pruned to the live ones)

    def update(self) -> bool:
        """Fold in the files added since the last call; return whether any were."""
        live = [str(p) for p in files(self.warehouse_dir, self.events_table)]
        new = [p for p in live if p not in self._seen]
        self._seen = set(live)
        if not new:
            return False
        sources = ", ".join("'" + p.replace("'", "''") + "'" for p in new)
        sql = f"SELECT {COLUMNS} FROM read_parquet([{sources}], union_by_name=true) WHERE {_WHERE}"
        if self.table is not None:
            sql += f" UNION SELECT {COLUMNS} FROM current"  # UNION (not ALL): a compacted file's rows count once
        con = duckdb.connect(":memory:")
        try:
            if self.table is not None:
                con.register("current", self.table)
            self.table = con.sql(
                f"SELECT * FROM ({sql}) ORDER BY event_datetime DESC LIMIT {int(self.rows)}"
            ).to_arrow_table()
        finally:
            con.close()
        return True

    def __len__(self) -> int:
        return 0 if self.table is None else self.table.num_rows
