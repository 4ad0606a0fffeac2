"""RSS per entry of the warehouse's footer cache (services/warehouse/live.py ``_footer``), over real files.

    .venv/bin/python benchmarks/footer_cache_rss.py --warehouse HOME/warehouse [--copies 6] [--root PATH ...]

Each ``--root`` (a checkout, e.g. a git worktree of an older commit; default this one) is measured in a fresh
process of this venv's Python with that checkout first on the path: every Parquet file of the warehouse is read
through ``_footer`` ``--copies`` times under distinct keys (mtime + i, as a file rewritten in place would be), so
the cache holds files x copies entries, as a long-running service's does once it has seen that many files. RSS is
read from /proc after ``gc.collect()`` and ``malloc_trim(0)`` (what the allocator could give back is not counted),
before and after; the same reads without keeping anything (``_footer.__wrapped__``) give the floor. Since round 23
the cache keeps one entry per file on disk (a file's copies under other mtimes replace each other), so a checkout
after it reports one entry per file; KiB per entry compares the same.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from teardown import stop_on_signals

ROOT = Path(__file__).resolve().parents[1]

_MEASURE = r"""
import ctypes, gc, json, os, sys, time
from pathlib import Path

from services.warehouse import live

files, copies, keep = [Path(p) for p in json.loads(sys.argv[1])], int(sys.argv[2]), sys.argv[3] == "cache"
libc, page = ctypes.CDLL(None), os.sysconf("SC_PAGE_SIZE")

def rss() -> int:
    gc.collect()
    libc.malloc_trim(0)
    return int(Path("/proc/self/statm").read_text().split()[1]) * page

lru = hasattr(live._footer, "cache_clear")  # before round 23: an lru_cache keyed by (path, mtime, size)
uncached = live._footer.__wrapped__ if lru else (lambda path, mtime_ns, size: live._read_footer(path))
read = live._footer if keep else uncached
clear = live._footer.cache_clear if lru else live._footers.clear
stats = [(str(f), f.stat()) for f in files]
read(stats[0][0], -1, stats[0][1].st_size)  # first use (imports, the allocator's arenas): not counted
clear()
before, cpu = rss(), time.process_time()
for i in range(copies):
    for path, st in stats:
        read(path, st.st_mtime_ns + i, st.st_size)
cpu = time.process_time() - cpu
after = rss()
entries = live._footer.cache_info().currsize if lru else len(live._footers)
answers = [read(path, st.st_mtime_ns + i, st.st_size) for i in range(copies) for path, st in stats]  # cache hits
schemas = len({id(a[1]) for a in answers if not isinstance(a, str)}) if keep else 0
print(json.dumps({"reads": len(answers), "entries": entries, "bytes": after - before, "schemas": schemas,
                  "cpu_s": cpu}))
"""


def measure(root: Path, files: list[Path], copies: int, mode: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, json.dumps([str(f) for f in files]), str(copies), mode],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warehouse", type=Path, required=True, help="a warehouse folder (a stack home's warehouse/)")
    ap.add_argument("--copies", type=int, default=6, help="entries per file (distinct keys)")
    ap.add_argument("--root", type=Path, action="append", default=[], help="checkout to measure (repeatable)")
    args = ap.parse_args(argv)
    stop_on_signals()
    files = sorted(p for p in args.warehouse.glob("*/date=*/*.parquet"))
    if not files:
        raise SystemExit(f"no Parquet files under {args.warehouse}")
    lines = [
        f"{len(files):,} files under {args.warehouse}, {args.copies} entries per file",
        "",
        "| checkout | reads | entries kept | schema objects held | RSS kept (MiB) | KiB per entry "
        "| CPU per read (us) | without caching: KiB per read |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for root in args.root or [ROOT]:
        cached = measure(root.resolve(), files, args.copies, "cache")
        floor = measure(root.resolve(), files, args.copies, "none")
        lines.append(
            f"| {root} | {cached['reads']:,} | {cached['entries']:,} | {cached['schemas']:,} "
            f"| {cached['bytes'] / 2**20:.1f} "
            f"| {cached['bytes'] / 1024 / max(1, cached['entries']):.2f} "
            f"| {1e6 * cached['cpu_s'] / max(1, cached['reads']):.0f} "
            f"| {floor['bytes'] / 1024 / max(1, floor['reads']):.2f} |"
        )
    print("\n".join(lines))
    cmd = " ".join(["python", "benchmarks/footer_cache_rss.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"\n`{cmd}`; load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
