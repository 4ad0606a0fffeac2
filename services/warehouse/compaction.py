"""Compaction: merge a partition's small files into one, without blocking writers.

Only files already present when compaction starts are merged; files appended
meanwhile are left for the next run. The merged file is renamed into place,
then its sources are removed; a reader listing files in that instant can see
both, so compaction is meant for quiet periods (documented in the README).
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from services.warehouse.tables import table
from services.warehouse.writer import to_arrow, write_atomic


def compact(warehouse_dir: str | os.PathLike[str], table_name: str, *, min_files: int = 2) -> dict[str, int]:
    """Compact every partition of a table with at least ``min_files`` files; return counts."""
    table(table_name)
    merged_partitions = removed = 0
    for partition in sorted((Path(warehouse_dir) / table_name).glob("date=*")):
        sources = sorted(partition.glob("*.parquet"))
        if len(sources) < min_files:
            continue
        data = pa.concat_tables([to_arrow(table_name, pq.read_table(f)) for f in sources])
        write_atomic(data, partition)
        for f in sources:
            f.unlink()
        merged_partitions += 1
        removed += len(sources)
    return {"partitions": merged_partitions, "files_merged": removed}
