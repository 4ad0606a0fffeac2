"""Load held (issue 18): the largest rate the whole stack sustains for N minutes with backlogs flat and 0 lost.

    nice -n 19 .venv/bin/python benchmarks/load_held.py [--minutes 10] [--rates 500,1000,2000,3000] [--probe 60]

The stack is `hyp up --detach` on a private home and port offset without its load generator; the generator is
run here (the same `hyp loadgen --to pubsub` command `hyp up` runs), so the rate can be stepped without
restarting the stack. A subscription of our own records every message id published (services/testing/
stack_chaos.py).

1. for each rate (ascending): run the generator ``--probe`` seconds; the step holds if the generator reached 95%
   of the rate and in the probe's second half every subscription's oldest unacked message stayed under 5 s;
   stop the generator and let the backlogs empty (bounded) before the next step; stop at the first step that
   does not hold;
2. at the best rate that held: ``--minutes`` minutes, sampling the backlogs every 5 s and each service's CPU
   (its process tree, benchmarks/footprint_bench.py's helpers) over a minute in the middle; its backlogs are
   flat if every subscription's oldest unacked message is under 5 s in the run's last minute (the share of
   samples at 5 s or more is reported beside it);
3. stop, let the backlogs empty, and look every recorded message up in the warehouse by message id (lost must
   be 0 in every event table).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from footprint_bench import ROOT, Stack, cpu_seconds_of, tree
from teardown import die_with_parent, stop_on_signals

from services.common.processes import wait_for
from services.stack import definition as d
from services.testing import stack_chaos as chaos
from services.testing.local_stack import LocalHypStack

FLAT_OLDEST_S = chaos.CAUGHT_UP_OLDEST_S
BACKLOG_EVERY_S = 5.0  # seconds between backlog samples
REACHED = 0.95  # the generator must publish at least this share of the rate


class Generator:
    """``hyp loadgen --to pubsub --rate R`` against the stack's emulator, as `hyp up` runs it."""

    def __init__(self, stack: LocalHypStack, rate: float, log: Path) -> None:
        env = {**os.environ, "PUBSUB_EMULATOR_HOST": stack.pubsub_host, "PYTHONPATH": str(ROOT)}
        cmd = [
            sys.executable,
            "-m",
            "services.cli",
            "loadgen",
            "--to",
            "pubsub",
            "--rate",
            f"{rate:g}",
            "--no-progress",
        ]
        self.out = log.open("ab")
        self.process = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self.out, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )

    def cpu_s(self) -> float:
        return cpu_seconds_of(tree(self.process.pid))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.out.close()


def sample_backlogs(
    stack: LocalHypStack, seconds: float, every: float = BACKLOG_EVERY_S
) -> list[dict[str, dict[str, float]]]:
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        samples.append(chaos.subscriptions(stack))
        time.sleep(min(every, max(0.0, deadline - time.monotonic())))
    return samples


def worst_oldest(samples: list[dict[str, dict[str, float]]]) -> float:
    return max((s["oldest_s"] for sample in samples for s in sample.values()), default=float("inf"))


def worst_subscription(samples: list[dict[str, dict[str, float]]]) -> str:
    """The subscription whose oldest unacked message was the oldest (the one that did not keep up)."""
    pairs = [(s["oldest_s"], name) for sample in samples for name, s in sample.items()]
    return max(pairs)[1] if pairs else "?"


def drain(stack: LocalHypStack, timeout: float) -> float | None:
    t0 = time.monotonic()
    try:
        wait_for(lambda: chaos.drained(stack), timeout, "every backlog to be empty", interval=1.0)
    except TimeoutError:
        return None
    return time.monotonic() - t0


def published_rate(recorder: chaos.Recorder, since: float) -> float:
    """Events/s the emulator accepted since ``since``, from the first to the last (the generator's own start-up,
    several seconds on a loaded machine, is not held against the rate)."""
    times = [p.publish_s for p in list(recorder.published.values()) if p.publish_s >= since]
    return len(times) / (max(times) - min(times)) if len(times) > 1 else 0.0


def step(stack: LocalHypStack, recorder: chaos.Recorder, rate: float, seconds: float, log: Path) -> dict:
    """The generator at ``rate`` for ``seconds``: the rate reached and the worst oldest unacked of the second half."""
    t0 = time.time()
    gen = Generator(stack, rate, log)
    try:
        first = sample_backlogs(stack, seconds / 2)
        second = sample_backlogs(stack, seconds / 2)
    finally:
        gen.stop()
    recorder.drain(idle_s=2.0)
    reached = published_rate(recorder, t0)
    worst = worst_oldest(second)
    held = reached >= REACHED * rate and worst < FLAT_OLDEST_S
    return {
        "rate": rate,
        "reached": reached,
        "worst_oldest_s": worst,
        "first_half": worst_oldest(first),
        "worst": worst_subscription(second),
        "held": held,
    }


def held_run(stack: LocalHypStack, recorder: chaos.Recorder, rate: float, minutes: float, log: Path) -> dict:
    fstack = Stack(ROOT, stack.home, rate, port_offset=stack.offset)  # footprint_bench's view of the services' pids
    t0, m0 = time.time(), time.monotonic()
    gen = Generator(stack, rate, log)
    samples: list[dict[str, dict[str, float]]] = []
    cpu: dict[str, float] = {}
    loads = [os.getloadavg()[0]]
    try:
        samples += sample_backlogs(stack, max(0.0, minutes * 60 / 2 - 30))
        trees = {n: tree(p) for n, p in fstack.pids().items()}
        before = {n: cpu_seconds_of(t) for n, t in trees.items()}
        gen0, c0 = gen.cpu_s(), time.monotonic()
        samples += sample_backlogs(stack, 60)
        elapsed = time.monotonic() - c0
        cpu = {n: 100 * (cpu_seconds_of(trees[n]) - before[n]) / elapsed for n in trees}
        cpu["loadgen (this script's)"] = 100 * (gen.cpu_s() - gen0) / elapsed
        loads.append(os.getloadavg()[0])
        samples += sample_backlogs(stack, max(0.0, minutes * 60 - (time.monotonic() - m0)))
        loads.append(os.getloadavg()[0])
    finally:
        gen.stop()
    recorder.drain(idle_s=2.0)
    reached = published_rate(recorder, t0)
    subs = sorted({n for s in samples for n in s})
    last = samples[-max(1, round(60 / BACKLOG_EVERY_S)) :]  # the run's last minute
    per_sub = {
        n: (
            max(s.get(n, {}).get("oldest_s", 0.0) for s in samples),
            max(s.get(n, {}).get("backlog", 0) for s in samples),
            # flat: how often it was behind, and whether it still was at the end
            sum(s.get(n, {}).get("oldest_s", 0.0) >= FLAT_OLDEST_S for s in samples) / max(1, len(samples)),
            max(s.get(n, {}).get("oldest_s", 0.0) for s in last),
        )
        for n in subs
    }
    return {"rate": rate, "reached": reached, "cpu": cpu, "subs": per_sub, "loads": loads, "t0": t0}


def render(steps: list[dict], held: dict | None, counts: dict, drain_s: float | None, minutes: float) -> str:
    lines = [
        "| rate asked (events/s) | published/s | oldest unacked, worst (first half / second half, s) | held |",
        "|---:|---:|---|---|",
    ]
    for s in steps:
        lag = f"{s['first_half']:.1f} / {s['worst_oldest_s']:.1f} ({s['worst']})"
        lines.append(f"| {s['rate']:g} | {s['reached']:.0f} | {lag} | {'yes' if s['held'] else 'no'} |")
    lines += held_lines(held, minutes) if held is not None else ["", "No rate held: no held run."]
    lines += [
        "",
        "| table (every message recorded, all steps) | expected | lost | duplicates |",
        "|---|---:|---:|---:|",
    ]
    for t, c in counts.items():
        lines.append(f"| {t} | {c.expected:,} | {len(c.lost):,} | {sum(c.duplicates.values()):,} |")
    empty = f"{drain_s:.1f} s" if drain_s is not None else "not within the bound"
    lines.append(f"\nBacklogs empty {empty} after the end.")
    return "\n".join(lines)


def held_lines(held: dict, minutes: float) -> list[str]:
    lines = [
        "",
        f"Held run: {minutes:g} min at {held['rate']:g} events/s asked, {held['reached']:.0f}/s published; "
        f"load average {min(held['loads']):.1f}-{max(held['loads']):.1f}.",
        "",
        "| service | CPU over a minute mid-run (% of a core) |",
        "|---|---:|",
    ]
    for n, v in sorted(held["cpu"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {n} | {v:.0f} |")
    lines.append(f"| **total** | **{sum(held['cpu'].values()):.0f}** |")
    lines += [
        "",
        f"| subscription | worst oldest unacked (s) | largest backlog | samples at >= {FLAT_OLDEST_S:g} s "
        "| worst oldest, last minute (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for n, (oldest, backlog, behind, last) in held["subs"].items():
        lines.append(f"| {n} | {oldest:.1f} | {backlog:,} | {100 * behind:.1f}% | {last:.1f} |")
    flat = all(last < FLAT_OLDEST_S for *_, last in held["subs"].values())
    lines.append(
        f"\nBacklogs flat at the end (every oldest unacked under {FLAT_OLDEST_S:g} s in the last minute): "
        f"{'yes' if flat else '**no**'}."
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="the held run at the best rate")
    ap.add_argument("--rates", default="500,1000,2000,3000,4000", help="rates to step through, ascending")
    ap.add_argument("--probe", type=float, default=60.0, help="seconds per step")
    ap.add_argument("--min-rate", type=float, default=25.0, help="when no rate holds, halve down to this")
    ap.add_argument("--port-offset", type=int, default=None, help="hyp up --port-offset (default: a free one)")
    ap.add_argument("--drain-timeout", type=float, default=300.0)
    args = ap.parse_args(argv)
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up
    rates = [float(r) for r in args.rates.split(",") if r]

    from services.warehouse.query import query

    tmp = Path(tempfile.mkdtemp(prefix="hyp-load-held-"))
    services = [s for s in d.SERVICE_NAMES if s != "loadgen"]
    stack = LocalHypStack(services, home=tmp / "home", timeout=900, port_offset=args.port_offset)
    log = tmp / "loadgen.log"
    steps: list[dict] = []
    held: dict | None = None
    try:
        stack.start()
        print(f"hyp up (without loadgen) healthy, port offset {stack.offset}", file=sys.stderr)
        recorder = chaos.Recorder(stack)
        try:
            todo = list(rates)
            while todo:
                rate = todo.pop(0)
                s = step(stack, recorder, rate, args.probe, log)
                steps.append(s)
                print(f"step {rate:g}/s: {s}", file=sys.stderr, flush=True)
                if drain(stack, args.drain_timeout) is None:
                    break
                if not s["held"]:
                    # the lowest rate asked did not hold either: halve it (down to --min-rate) to find one that does
                    lower = rate / 2
                    if not any(x["held"] for x in steps) and lower >= args.min_rate:
                        todo = [lower]
                        continue
                    break
            best = max((s["rate"] for s in steps if s["held"]), default=None)
            if best is not None:
                held = held_run(stack, recorder, best, args.minutes, log)
                print(f"held: {held}", file=sys.stderr, flush=True)
            drain_s = drain(stack, args.drain_timeout)
            recorder.drain()
        finally:
            recorder.stop()
        counts = chaos.count(recorder.published, partial(query, stack.warehouse_dir), chaos.EVENT_TABLES)
    finally:
        stack.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(render(steps, held, counts, drain_s, args.minutes))
    command = " ".join(["python", "benchmarks/load_held.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"\n`{command}`; load average at the end {os.getloadavg()[0]:.1f}")
    return 0 if held is not None and not any(c.lost for c in counts.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
