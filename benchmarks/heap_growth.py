"""What grew in each traced process's Python heap between two snapshots (benchmarks/heaptrace).

    .venv/bin/python benchmarks/heap_growth.py SNAPSHOT_DIR [--from 1] [--to -1] [--by lineno|traceback] [--top 12]

For every process that wrote snapshots (``<pid>-<n>-<command>.snap``), compares snapshot ``--from`` with
``--to`` (indexes into its snapshots in time order; the first few minutes are start-up and caches filling, so
compare from the second) and prints the traced total of both and the allocation sites that grew most: size,
count of live blocks, site (``--by traceback``: the whole stack of each).
"""

from __future__ import annotations

import argparse
import collections
import tracemalloc
from pathlib import Path

IGNORED = [tracemalloc.Filter(False, "*tracemalloc*"), tracemalloc.Filter(False, "*sitecustomize*")]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--from", dest="first", type=int, default=1, help="index of the earlier snapshot (default 1)")
    p.add_argument("--to", dest="last", type=int, default=-1, help="index of the later snapshot (default: last)")
    p.add_argument("--by", choices=("lineno", "traceback"), default="lineno")
    p.add_argument("--top", type=int, default=12)
    args = p.parse_args(argv)
    by_pid: dict[str, list[Path]] = collections.defaultdict(list)
    for f in sorted(args.folder.glob("*.snap")):
        by_pid[f.name.split("-")[0]].append(f)
    if not by_pid:
        raise SystemExit(f"no snapshots in {args.folder}")
    for files in by_pid.values():
        try:
            a, b = files[args.first], files[args.last]
        except IndexError:
            a = b = files[-1]
        if a == b:
            print(f"== {files[-1].name}: {len(files)} snapshot(s), not enough to compare")
            continue
        before, after = (tracemalloc.Snapshot.load(str(f)).filter_traces(IGNORED) for f in (a, b))
        totals = [sum(s.size for s in snap.statistics("filename")) / 2**20 for snap in (before, after)]
        print(
            f"== {b.name.split('-', 2)[2][:-5]} (pid {b.name.split('-')[0]}), {a.name} -> {b.name}: "
            f"traced {totals[0]:.1f} -> {totals[1]:.1f} MiB"
        )
        for d in after.compare_to(before, args.by)[: args.top]:
            if args.by == "traceback":
                print(f"  {d.size_diff / 1024:+.0f} KiB in {d.count_diff:+d} blocks")
                print("\n".join("      " + line for line in d.traceback.format()))
            else:
                print(f"  {d.size_diff / 1024:+9.0f} KiB {d.count_diff:+8d} blocks  {d.traceback}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
