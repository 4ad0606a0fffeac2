"""Pub/Sub emulator RSS under a growing unread backlog, memory only and with --data-dir, for one or more trees.

Publishes 200-byte messages (raw gRPC, 1000 per request) to a topic whose one subscription is never read,
samples the emulator's RSS every ``--every`` messages, and stops at ``--messages`` or at the first
RESOURCE_EXHAUSTED (the memory budget). Prints a markdown table and the command that made it. Not a test.

    nice -n 19 .venv/bin/python benchmarks/pubsub_backlog_bench.py --messages 2000000 --repo /work/pre14 --repo .
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import grpc
from google.pubsub_v1 import types

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from pubsub_bench import PROJECT, Raw, rss_mib, start  # noqa: E402  (the emulator start and stubs we compare)

from services.common.processes import stop_group  # noqa: E402


def fill(repo: Path, data_dir: bool, total: int, every: int, env_budget: str | None) -> dict[str, object]:
    """One emulator from repo; publish until total or RESOURCE_EXHAUSTED; RSS samples and the outcome."""
    old = os.environ.get("HYP_PUBSUB_MEMORY_BUDGET_MB")
    if env_budget is not None:
        os.environ["HYP_PUBSUB_MEMORY_BUDGET_MB"] = env_budget
    try:
        with tempfile.TemporaryDirectory() as tmp:
            proc, host, _rest = start(Path(tmp), repo, data_dir)
            try:
                return _fill(proc.pid, Raw(host), total, every)
            finally:
                stop_group(proc, timeout=60)
    finally:
        if old is None:
            os.environ.pop("HYP_PUBSUB_MEMORY_BUDGET_MB", None)
        else:
            os.environ["HYP_PUBSUB_MEMORY_BUDGET_MB"] = old


def _fill(pid: int, raw: Raw, total: int, every: int) -> dict[str, object]:
    topic, sub = f"projects/{PROJECT}/topics/backlog", f"projects/{PROJECT}/subscriptions/backlog"
    raw.create_topic(types.Topic(name=topic))
    raw.create_sub(types.Subscription(name=sub, topic=topic))
    req = raw.batch(topic, 1000)
    samples: list[tuple[int, float]] = [(0, rss_mib(pid))]
    sent, refused, peak = 0, "", samples[0][1]
    start = time.perf_counter()
    while sent < total:
        try:
            raw.publish_pb(req, timeout=60)
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            refused = f"after {sent:,}: {exc.details()[:90]}..."
            break
        sent += 1000
        if sent % every == 0:
            samples.append((sent, rss_mib(pid)))
            peak = max(peak, samples[-1][1])
    elapsed = time.perf_counter() - start
    end = rss_mib(pid)
    return {"sent": sent, "samples": samples, "end": end, "peak": max(peak, end), "refused": refused, "s": elapsed}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=2_000_000, help="backlog to build (stops earlier when refused)")
    p.add_argument("--every", type=int, default=500_000, help="RSS sample interval, messages")
    p.add_argument("--repo", type=Path, action="append", help="tree to run the emulator from (repeat to compare)")
    p.add_argument("--modes", default="memory,data-dir", help="comma-separated: memory, data-dir")
    p.add_argument("--budget-mb", help="HYP_PUBSUB_MEMORY_BUDGET_MB for the runs (default: the tree's default)")
    args = p.parse_args(argv)
    rows = []
    for repo in args.repo or [REPO]:
        for mode in args.modes.split(","):
            r = fill(repo.resolve(), mode == "data-dir", args.messages, args.every, args.budget_mb)
            curve = ", ".join(f"{n // 1000:,}k: {rss:.0f}" for n, rss in r["samples"])  # type: ignore[attr-defined]
            rows.append((repo.resolve().name, mode, r, curve))
    cmd = ["nice -n 19 .venv/bin/python", "benchmarks/pubsub_backlog_bench.py", *(argv or sys.argv[1:])]
    print(f"`{' '.join(cmd)}`")
    print(f"on {platform.node()} ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end)\n")
    print("| tree | mode | backlog built | RSS at the end | peak RSS | publish rate | refused | RSS (MiB) by backlog |")
    print("|---|---|---|---|---|---|---|---|")
    for tree, mode, r, curve in rows:
        rate = r["sent"] / r["s"] if r["s"] else 0.0
        print(
            f"| {tree} | {mode} | {r['sent']:,} | {r['end']:.0f} MiB | {r['peak']:.0f} MiB | {rate:,.0f} msg/s "
            f"| {r['refused'] or 'no'} | {curve} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
