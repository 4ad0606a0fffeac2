"""`hyp warehouse compact|stats`: housekeeping for the Parquet tables."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from services.common.config import Command, ConfigError
from services.warehouse.compaction import Compactor
from services.warehouse.query import files, query
from services.warehouse.settings import WarehouseSettings
from services.warehouse.tables import TABLES, WarehouseError


def command() -> Command[WarehouseSettings]:
    cli = Command("warehouse", WarehouseSettings, description="Warehouse housekeeping.")
    parser = cli.parser
    cli.flag("warehouse_dir", help="warehouse folder")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("compact", help="merge small files (safe while the stack runs; one compactor at a time)")
    c.add_argument("--min-files", type=int, default=8, help="merge a size tier once it has this many files")
    c.add_argument(
        "--grace-s", type=float, default=60.0, help="keep replaced files this long for readers (0 when nothing runs)"
    )
    c.add_argument(
        "--quiet-s", type=float, default=600.0, help="merge a partition whole once it has had no new file this long"
    )
    sub.add_parser("stats", help="files and rows per table")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    cli = command()
    try:
        args, settings = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)
    root = settings.warehouse_dir
    try:
        if args.command == "compact":
            compactor = Compactor(root, min_files=args.min_files, grace_s=args.grace_s, quiet_s=args.quiet_s)
            try:
                result = compactor.run_once()
            finally:
                compactor.stop()
            if result["skipped"]:
                print("hyp warehouse: another process owns compaction (it runs in the stack); nothing done")
                return 1
            print(
                f"{result['files_merged']} files merged into {result['merged']}, "
                f"{result['files_removed']} replaced files removed, {result['live_files']} live files"
            )
        else:
            for name in TABLES:
                rows = query(root, f"SELECT count(*) AS n FROM {name}").column("n")[0].as_py()
                print(f"{name}: {len(files(root, name))} files, {rows} rows")
    except WarehouseError as exc:
        print(f"hyp warehouse: {exc}", file=sys.stderr)
        return 2
    return 0
