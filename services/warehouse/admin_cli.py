"""`hyp warehouse compact|stats`: housekeeping for the Parquet tables."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from services.warehouse.compaction import compact
from services.warehouse.query import files, query
from services.warehouse.settings import get_settings
from services.warehouse.tables import TABLES, WarehouseError


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="hyp warehouse", description="Warehouse housekeeping.")
    parser.add_argument("--warehouse-dir", help="warehouse folder (env HYP_WAREHOUSE_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compact", help="merge each partition's files into one")
    c.add_argument("--table", choices=list(TABLES), help="one table (default: all)")
    c.add_argument("--min-files", type=int, default=2)
    sub.add_parser("stats", help="files and rows per table")
    args = parser.parse_args(argv)
    root = args.warehouse_dir or get_settings().warehouse_dir
    try:
        if args.command == "compact":
            for name in [args.table] if args.table else list(TABLES):
                result = compact(root, name, min_files=args.min_files)
                print(f"{name}: {result['files_merged']} files merged in {result['partitions']} partitions")
        else:
            for name in TABLES:
                rows = query(root, f"SELECT count(*) AS n FROM {name}").column("n")[0].as_py()
                print(f"{name}: {len(files(root, name))} files, {rows} rows")
    except WarehouseError as exc:
        print(f"hyp warehouse: {exc}", file=sys.stderr)
        return 2
    return 0
