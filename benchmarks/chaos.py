"""Whole-stack chaos (issue 18): kill -9 every service of a `hyp up` stack in turn while the load generator
publishes, let `hyp up` bring each back, then count by message id what reached the warehouse.

    nice -n 19 .venv/bin/python benchmarks/chaos.py [--rate 2000] [--port-offset 3119] [--services pubsub,detector,...]

1. `hyp up --detach --home <temp> --port-offset N`: the whole stack, load generator at ``--rate``;
2. a subscription of our own on the events topic records every message id published from then on (exact: the
   emulator delivers each accepted message to it, whatever happens to the stack's consumers);
3. for each service: kill -9 its process group, wait (bounded) until `hyp up` has restarted it and it answers
   its health check (downtime), then until every subscription's oldest unacked message is under 5 s again
   (time to catch up);
4. SIGSTOP the generator, wait (bounded) until every backlog is empty, and look every recorded message up in
   ``cloud_run``, ``dataflow`` and ``pubsub_direct`` (every event) and the verdict tables (every purchase)
   through the warehouse's query function: lost and duplicated, attributed to the kill they followed.

The load generator is not killed: it is the publisher (the user's code on GCP, not a service of the stack);
a kill -9 of it loses only events it had not published yet, which nobody acknowledged, so there is nothing
to count. ``init`` is a one-shot job.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from teardown import stop_on_signals

from services.stack import definition as d
from services.testing import stack_chaos as chaos
from services.testing.local_stack import LocalHypStack

KILLED = ("pubsub", "detector", "processor", "endpoint", "mlflow", "orchestrator", "console", "bigquery", "storage")


def render(result: chaos.ChaosRun, rate: float) -> str:
    tables = chaos.EVENT_TABLES
    lines = [
        f"Whole stack at {rate:g} events/s; {result.published:,} events recorded. Lost and duplicates are per table "
        f"({' / '.join(tables)}), counted by message id for the events published after that kill and before the next.",
        "",
        "| service killed | downtime (s) | events lost (target 0) | duplicates | time to catch up (s) | load at kill |",
        "|---|---:|---|---|---:|---:|",
    ]
    lost = {t: result.lost_by_phase(t) for t in tables}
    dups = {t: result.duplicates_by_phase(t) for t in tables}
    for phase, k in [("before", None), *[(k.service, k) for k in result.kills]]:
        lost_cell = " / ".join(str(lost[t].get(phase, 0)) for t in tables)
        dup_cell = " / ".join(str(dups[t].get(phase, 0)) for t in tables)
        if k is None:
            lines.append(f"| (before the first kill) | | {lost_cell} | {dup_cell} | | |")
            continue
        catch = f"{k.catch_up_s:.1f}" if k.catch_up_s is not None else "not within the bound"
        lines.append(f"| {k.service} | {k.downtime_s:.1f} | {lost_cell} | {dup_cell} | {catch} | {k.load:.1f} |")
    lines += ["", "| table | expected | lost | duplicates |", "|---|---:|---:|---:|"]
    for t, c in result.counts.items():
        lines.append(f"| {t} | {c.expected:,} | {len(c.lost):,} | {sum(c.duplicates.values()):,} |")
    lines += ["", "| labelled anomalies | recorded | with a verdict | flagged |", "|---|---:|---:|---:|"]
    for a in result.anomalies:
        lines.append(f"| {a.table} | {a.labelled:,} | {a.scored:,} | {a.flagged:,} |")
    drain = f"{result.drain_s:.1f} s" if result.drain_s is not None else "**not within the bound**"
    down = ", ".join(f"{n} ({why})" for n, why in result.down.items()) or "none"
    loads = result.loads
    lines += [
        "",
        f"After the generator stopped, every backlog empty in {drain}; services down at the end: {down}; "
        f"recorder pulls retried: {result.recorder_errors}; load average (1 min) {min(loads):.1f}-{max(loads):.1f}.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=2000.0, help="load generator events/s")
    ap.add_argument("--port-offset", type=int, default=None, help="hyp up --port-offset (default: a free one)")
    ap.add_argument("--home", type=Path, default=None, help="stack home (default: a fresh temporary folder)")
    ap.add_argument("--services", default=",".join(KILLED), help="services to kill, in order, comma-separated")
    ap.add_argument("--settle", type=float, default=30.0, help="seconds of recording before the first kill")
    ap.add_argument("--restart-timeout", type=float, default=300.0)
    ap.add_argument("--catch-up-timeout", type=float, default=300.0)
    ap.add_argument("--drain-timeout", type=float, default=600.0)
    args = ap.parse_args(argv)
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up
    services = [s for s in args.services.split(",") if s]
    unknown = sorted(set(services) - set(d.SERVICE_NAMES) | ({"loadgen", "init"} & set(services)))
    if unknown:
        ap.error(f"cannot kill {', '.join(unknown)} (choose from {', '.join(KILLED)})")

    from services.warehouse.query import query

    tmp = Path(tempfile.mkdtemp(prefix="hyp-chaos-"))
    home = args.home or tmp / "home"
    env = {"HYP_LOADGEN_RATE": f"{args.rate:g}"}
    t0 = time.monotonic()
    stack = LocalHypStack(list(d.SERVICE_NAMES), home=home, env=env, timeout=900, port_offset=args.port_offset)
    try:
        stack.start()
        print(f"hyp up healthy in {time.monotonic() - t0:.1f} s (port offset {stack.offset})", file=sys.stderr)
        result = chaos.run(
            stack,
            services,
            partial(query, stack.warehouse_dir),
            settle_s=args.settle,
            restart_timeout=args.restart_timeout,
            catch_up_timeout=args.catch_up_timeout,
            drain_timeout=args.drain_timeout,
            log=lambda line: print(line, file=sys.stderr, flush=True),
        )
    finally:
        stack.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    print(render(result, args.rate))
    command = " ".join(["python", "benchmarks/chaos.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"\n`{command}`; load average at the end {os.getloadavg()[0]:.1f}; {time.monotonic() - t0:.0f} s in all")
    failed = any(c.lost for c in result.counts.values()) or result.down or result.drain_s is None
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
