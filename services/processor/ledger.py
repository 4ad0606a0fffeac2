"""Which messages already left their rows in the warehouse: redelivery must not add a second row.

The warehouse itself is the durable record: at start the ledger reads the message ids the
processor wrote to ``cloud_run`` and ``cloud_run_anomaly`` (one DuckDB scan), so idempotency
holds across restarts and crashes, with no second store to keep in step. Each table is tracked
on its own: a crash between the two appends redoes only the missing one. Memory: one id per
processed message (about 100 bytes each; ten million messages ~ 1 GB, so compaction of old
partitions or a retention window is the next step if a deployment runs that long).
"""

from __future__ import annotations

import os
from pathlib import Path

SOURCE = "processor"
TABLES = ("cloud_run", "cloud_run_anomaly")


class Ledger:
    def __init__(self) -> None:
        self.done: dict[str, set[str]] = {t: set() for t in TABLES}
        self.deadlettered: set[str] = set()  # this process only: a restart may dead-letter a bad event again

    def load(self, warehouse_dir: str | os.PathLike[str]) -> int:
        """Read the processor's message ids back from the warehouse; return how many."""
        from services.warehouse.query import files, query

        for table in TABLES:
            if not files(warehouse_dir, table):
                continue
            ids = query(
                Path(warehouse_dir), f"SELECT DISTINCT message_id FROM {table} WHERE source = '{SOURCE}'"
            ).column("message_id")
            self.done[table].update(v for v in ids.to_pylist() if v is not None)
        return sum(len(s) for s in self.done.values())

    def has(self, table: str, message_id: str) -> bool:
        return message_id in self.done[table]

    def add(self, table: str, message_ids: list[str]) -> None:
        self.done[table].update(message_ids)
