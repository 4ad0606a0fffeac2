"""Straight into the warehouse's ``cloud_run`` table: event columns plus the labels in ``attributes``.

Rows are buffered and appended as whole Parquet files (services.warehouse.append)
every ``rows_per_file`` rows or ``flush_s`` seconds, so slow runs do not make
thousands of tiny files. Training reads the labels with SQL over ``attributes``: the
expressions in services.common.names (``LABEL_SQL``, ``ANOMALY_KIND_SQL``).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from loadgen.core import Batch
from loadgen.render import attributes_json, columns, items_columns
from loadgen.sinks import SinkError
from services.warehouse import WarehouseError, append, ecommerce

SOURCE = "loadgen"


class ParquetSink:
    def __init__(
        self,
        warehouse_dir: str | Path,
        n_users: int,
        run_id: str,
        rows_per_file: int = 200_000,
        flush_s: float = 5.0,
        table: str = "cloud_run",  # or "dataflow": the detector's event table (same columns)
    ) -> None:
        self.warehouse_dir, self.n_users, self.run_id, self.table_name = Path(warehouse_dir), n_users, run_id, table
        self.rows_per_file, self.flush_s = rows_per_file, flush_s
        self._pending: list[pa.Table] = []
        self._rows = 0
        self._last_flush = time.monotonic()
        self.files: list[Path] = []

    def table(self, batch: Batch, now: float) -> pa.Table:
        cols = columns(batch, self.n_users, now)
        stamp = pa.array(np.full(len(batch), int(now * 1e6), dtype=np.int64), pa.timestamp("us"))
        cols.update(
            publish_time=stamp,
            attributes=attributes_json(batch, self.run_id, int(now * 1000)),
            source=pa.array([SOURCE] * len(batch), pa.string()),
            ingested_at=stamp,
        )
        table = pa.table(cols)
        # the workshop's nested record from the item arrays: the writer would otherwise parse `items` back
        offsets, fields = items_columns(batch)
        return table.append_column("ecommerce", ecommerce.nest(table, ecommerce.raw_items(offsets, fields)))

    def send(self, batch: Batch, now: float) -> None:
        if len(batch):
            self._pending.append(self.table(batch, now))
            self._rows += len(batch)
        if self._rows >= self.rows_per_file or time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        data = pa.concat_tables(self._pending)
        self._pending, self._rows = [], 0
        try:
            self.files.extend(append(self.warehouse_dir, self.table_name, data))
        except (WarehouseError, OSError) as exc:
            raise SinkError(f"--out: cannot write to the warehouse at {self.warehouse_dir}: {exc}") from None

    def close(self) -> None:
        self.flush()
