"""Pub/Sub emulator RSS under a growing unread backlog, memory only and with --data-dir, for one or more trees.

Publishes 200-byte messages (raw gRPC, 1000 per request) to a topic whose one subscription is never read,
samples the emulator's RSS every ``--every`` messages, and stops at ``--messages`` or at the first
RESOURCE_EXHAUSTED (the memory budget), then drains ``--drain`` messages with one raw StreamingPull.
With ``--restart`` (data-dir mode) the emulator is killed with SIGKILL once the backlog is built and started
again on its data dir: the time until it serves, its CPU seconds and RSS then (peak and settled) are
reported, and the drain runs on the restarted emulator.
The emulator's CPU time per message published and drained (from /proc) is the before/after figure that
holds on a busy machine, where wall-clock rates swing with the load. Prints a markdown table and the
command that made it. Not a test.

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
from typing import Any

import grpc
from google.pubsub_v1 import types

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from pubsub_bench import PROJECT, Raw, bench_raw_drain, rss_mib, start  # noqa: E402  (shared start and stubs)

from services.common.processes import cpu_seconds, stop_group  # noqa: E402


def fill(
    repo: Path, data_dir: bool, total: int, every: int, env_budget: str | None, drain: int, restart: bool = False
) -> dict[str, Any]:
    """One emulator from repo; publish until total or RESOURCE_EXHAUSTED; RSS samples and the outcome."""
    old = os.environ.get("HYP_PUBSUB_MEMORY_BUDGET_MB")
    if env_budget is not None:
        os.environ["HYP_PUBSUB_MEMORY_BUDGET_MB"] = env_budget
    try:
        with tempfile.TemporaryDirectory() as tmp:
            proc, host, _rest = start(Path(tmp), repo, data_dir)
            try:
                raw = Raw(host)
                out = _fill(proc.pid, raw, total, every)
                if restart and data_dir:
                    raw.channel.close()
                    proc.kill()
                    proc.wait()
                    t0 = time.perf_counter()
                    proc, host, _rest = start(Path(tmp), repo, data_dir, timeout_s=3600)
                    out["restart_s"] = time.perf_counter() - t0
                    out["restart_cpu_s"] = cpu_seconds(proc.pid)
                    out["restart_peak"] = _peak_rss_mib(proc.pid)
                    time.sleep(3)  # a compaction pass (every 2 s) after the start
                    out["restart_rss"] = rss_mib(proc.pid)
                    raw = Raw(host)
                n = min(drain, out["sent"])
                cpu0 = cpu_seconds(proc.pid)
                out["drain_rate"] = bench_raw_drain(raw, f"projects/{PROJECT}/subscriptions/backlog", n) if n else 0.0
                out["drain_cpu_us"] = (cpu_seconds(proc.pid) - cpu0) / n * 1e6 if n else 0.0
                return out
            finally:
                stop_group(proc, timeout=60)
    finally:
        if old is None:
            os.environ.pop("HYP_PUBSUB_MEMORY_BUDGET_MB", None)
        else:
            os.environ["HYP_PUBSUB_MEMORY_BUDGET_MB"] = old


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _fill(pid: int, raw: Raw, total: int, every: int) -> dict[str, Any]:
    topic, sub = f"projects/{PROJECT}/topics/backlog", f"projects/{PROJECT}/subscriptions/backlog"
    raw.create_topic(types.Topic(name=topic))
    raw.create_sub(types.Subscription(name=sub, topic=topic))
    req = raw.batch(topic, 1000)
    samples: list[tuple[int, float]] = [(0, rss_mib(pid))]
    sent, refused, peak = 0, "", samples[0][1]
    start, cpu0 = time.perf_counter(), cpu_seconds(pid)
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
    elapsed, cpu = time.perf_counter() - start, cpu_seconds(pid) - cpu0
    end = rss_mib(pid)
    return {
        "sent": sent,
        "samples": samples,
        "end": end,
        "peak": max(peak, end),
        "refused": refused,
        "s": elapsed,
        "publish_cpu_us": cpu / sent * 1e6 if sent else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=2_000_000, help="backlog to build (stops earlier when refused)")
    p.add_argument("--every", type=int, default=500_000, help="RSS sample interval, messages")
    p.add_argument("--repo", type=Path, action="append", help="tree to run the emulator from (repeat to compare)")
    p.add_argument("--modes", default="memory,data-dir", help="comma-separated: memory, data-dir")
    p.add_argument("--drain", type=int, default=300_000, help="messages to drain afterwards (CPU per message)")
    p.add_argument("--budget-mb", help="HYP_PUBSUB_MEMORY_BUDGET_MB for the runs (default: the tree's default)")
    p.add_argument("--restart", action="store_true", help="data-dir: kill -9 and restart before the drain")
    args = p.parse_args(argv)
    rows = []
    for repo in args.repo or [REPO]:
        for mode in args.modes.split(","):
            r = fill(
                repo.resolve(), mode == "data-dir", args.messages, args.every, args.budget_mb, args.drain, args.restart
            )
            curve = ", ".join(f"{n // 1000:,}k: {rss:.0f}" for n, rss in r["samples"])
            rows.append((repo.resolve().name, mode, r, curve))
    cmd = ["nice -n 19 .venv/bin/python", "benchmarks/pubsub_backlog_bench.py", *(argv or sys.argv[1:])]
    print(f"`{' '.join(cmd)}`")
    print(f"on {platform.node()} ({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end)\n")
    print(
        "| tree | mode | backlog built | RSS at the end | publish: rate, emulator CPU | drain: rate, emulator CPU "
        "| refused | restart: serving after, CPU, RSS peak / settled | RSS (MiB) by backlog |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for tree, mode, r, curve in rows:
        rate = r["sent"] / r["s"] if r["s"] else 0.0
        print(
            f"| {tree} | {mode} | {r['sent']:,} | {r['end']:.0f} MiB (peak {r['peak']:.0f}) "
            f"| {rate:,.0f} msg/s, {r['publish_cpu_us']:.1f} us/msg "
            f"| {r['drain_rate']:,.0f} msg/s, {r['drain_cpu_us']:.1f} us/msg | {r['refused'] or 'no'} "
            f"| {_restart_cell(r)} | {curve} |"
        )
    return 0


def _restart_cell(r: dict[str, Any]) -> str:
    if "restart_s" not in r:
        return "-"
    return (
        f"{r['restart_s']:.1f} s, {r['restart_cpu_s']:.1f} CPU s, {r['restart_peak']:.0f} / {r['restart_rss']:.0f} MiB"
    )


if __name__ == "__main__":
    raise SystemExit(main())
