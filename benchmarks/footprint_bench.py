"""Footprint of the whole local stack over a long run: CPU, memory, backlogs, files, logs, restart time.

    .venv/bin/python benchmarks/footprint_bench.py [--minutes 60] [--rate 200] [--root PATH] [--home DIR]
        [--port-offset N]

What it does, on this machine, with `hyp up` (the README's main command, detached so it can be measured):

1. starts the whole stack from an empty home (load generator at ``--rate``) and times it to healthy;
2. after ``--warmup`` seconds, samples every service's CPU time (its whole process group, from /proc) over
   ``--window`` seconds: CPU at the rate;
3. keeps it running for ``--minutes`` in all, noting once a minute each service's RSS, every subscription's
   backlog and oldest unacknowledged message, the files per warehouse table and the bytes of log written;
4. pauses the load generator (SIGSTOP: no events, nothing else changes), waits, samples CPU again: the floor;
5. times ``SELECT count(*) FROM cloud_run`` and a ``GROUP BY`` through the warehouse's own query function;
6. stops the stack and starts it again on the same home: the second start's time to healthy.

``--port-offset N`` is passed to `hyp up` and every port the script probes moves the same way, so the run can
share the machine with a stack on the default ports (the docker tier's, another engineer's).

``--root`` runs another checkout of this repository (e.g. a git worktree of an older commit) with this
venv's Python, so the code before and after a change are measured the same way on the same machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from teardown import stop_on_signals

from services.common.processes import cpu_seconds

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
PAGE = os.sysconf("SC_PAGE_SIZE")
KEEPER = "up"  # `hyp up --detach`'s supervising process: its tree holds every service, so it is not one of them


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def tree(pid: int) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_seconds_of(pids: list[int]) -> float:
    """CPU time of these processes (those that ended meanwhile count nothing)."""
    total = 0.0
    for pid in pids:
        try:
            total += cpu_seconds(pid)
        except OSError:
            continue
    return total


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except OSError:
            continue
    return total / 2**20


def pss_mib(pids: list[int]) -> float:
    """Proportional set size: shared pages (numpy, pyarrow, Python itself) split between the processes mapping them."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


@dataclass
class Stack:
    root: Path
    home: Path
    rate: float
    log: list[str] = field(default_factory=list)
    port_offset: int = 0  # hyp up --port-offset: every port moved, so the run can share a machine with another stack

    def hyp(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(self.root)}
        return subprocess.run(
            [PY, "-m", "services.cli", *args], cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout
        )

    def up(self) -> float:
        t0 = time.monotonic()
        offset = ("--port-offset", str(self.port_offset)) if self.port_offset else ()
        out = self.hyp("up", "--detach", "--home", str(self.home), "--rate", f"{self.rate:g}", *offset)
        if out.returncode != 0:
            raise SystemExit(f"hyp up failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
        return time.monotonic() - t0

    def down(self) -> None:
        self.hyp("down", "--home", str(self.home), timeout=300)

    def pids(self) -> dict[str, int]:
        out = {}
        for f in sorted((self.home / "run").glob("*.pid")):
            if f.stem == KEEPER:
                continue
            try:
                out[f.stem] = int(f.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                continue
        return out


def sample_cpu(stack: Stack, seconds: float) -> dict[str, float]:
    """% of one core per service over ``seconds`` (its process tree)."""
    pids = stack.pids()
    trees = {n: tree(p) for n, p in pids.items()}
    before = {n: cpu_seconds_of(t) for n, t in trees.items()}
    t0 = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    return {n: 100 * (cpu_seconds_of(trees[n]) - before[n]) / elapsed for n in trees}


def subscriptions(port_offset: int = 0) -> list[dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{8086 + port_offset}/admin/state", timeout=5) as resp:
            return json.load(resp).get("subscriptions", [])
    except OSError:
        return []


def files_per_table(home: Path) -> dict[str, int]:
    wh = home / "warehouse"
    if not wh.exists():
        return {}
    return {t.name: len(list(t.glob("date=*/*.parquet"))) for t in sorted(wh.iterdir()) if t.is_dir()}


def log_bytes(home: Path) -> int:
    run = home / "run"
    return sum(f.stat().st_size for f in run.glob("*.log*")) + sum(f.stat().st_size for f in run.glob("*.out*"))


def time_query(stack: Stack, sql: str) -> float:
    code = (
        "import sys,time;from services.warehouse.query import query;t=time.perf_counter();"
        f"query(sys.argv[1], {sql!r});print(time.perf_counter()-t)"
    )
    env = {**os.environ, "PYTHONPATH": str(stack.root)}
    out = subprocess.run(
        [PY, "-c", code, str(stack.home / "warehouse")], cwd=stack.root, env=env, capture_output=True, text=True
    )
    if out.returncode != 0:
        return float("nan")
    return float(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout to run (default: this one)")
    ap.add_argument("--home", type=Path, default=None, help="stack home (default: a fresh temporary folder)")
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--minutes", type=float, default=60.0, help="total run time at the rate")
    ap.add_argument("--warmup", type=float, default=60.0)
    ap.add_argument("--window", type=float, default=60.0, help="CPU sampling window, seconds")
    ap.add_argument("--label", default=None, help="column label in the table (default: the root's git commit)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    ap.add_argument("--port-offset", type=int, default=0, help="hyp up --port-offset (default: the default ports)")
    ap.add_argument(
        "--compare",
        nargs=2,
        type=Path,
        metavar=("BEFORE", "AFTER"),
        help="no run: the RSS per service of two --json files side by side (at --at minutes and at the end)",
    )
    ap.add_argument("--at", type=float, default=5.0, help="with --compare: the first column's minute")
    args = ap.parse_args(argv)
    if args.compare:
        before, after = (json.loads(p.read_text()) for p in args.compare)
        print(compare(before, after, args.at))
        return 0
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up

    label = (
        args.label
        or subprocess.run(
            ["git", "-C", str(args.root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    )
    tmp = None
    if args.home is None:
        tmp = tempfile.mkdtemp(prefix="hyp-footprint-")
        args.home = Path(tmp) / "home"
    stack = Stack(args.root.resolve(), args.home.resolve(), args.rate, port_offset=args.port_offset)
    result: dict = {"label": label, "rate": args.rate, "minutes": args.minutes, "port_offset": args.port_offset}
    t_start = time.monotonic()
    try:
        result["first_up_s"] = stack.up()
        print(f"[{label}] first hyp up healthy in {result['first_up_s']:.1f} s", file=sys.stderr)
        time.sleep(args.warmup)
        result["cpu_at_rate"] = sample_cpu(stack, args.window)
        print(f"[{label}] CPU at rate: {sum(result['cpu_at_rate'].values()):.1f}%", file=sys.stderr)
        minutes: list[dict] = []
        log0, t_log0 = log_bytes(stack.home), time.monotonic()
        while time.monotonic() - t_start < args.minutes * 60:
            pids = stack.pids()
            subs = subscriptions(stack.port_offset)
            minutes.append(
                {
                    "t_min": round((time.monotonic() - t_start) / 60, 1),
                    "rss": {n: round(rss_mib(tree(p)), 1) for n, p in pids.items()},
                    "pss": {n: round(pss_mib(tree(p)), 1) for n, p in pids.items()},
                    "backlog": {s["name"].rsplit("/", 1)[-1]: s["backlog"] for s in subs},
                    "oldest_s": {s["name"].rsplit("/", 1)[-1]: s["oldest_unacked_age_s"] for s in subs},
                    "files": files_per_table(stack.home),
                    "log_bytes": log_bytes(stack.home),
                }
            )
            last = minutes[-1]
            print(
                f"[{label}] t={last['t_min']} min rss={sum(last['rss'].values()):.0f} MiB "
                f"oldest={last['oldest_s']} files={last['files']}",
                file=sys.stderr,
            )
            time.sleep(max(0.0, min(60.0, args.minutes * 60 - (time.monotonic() - t_start))))
        result["timeline"] = minutes
        hours = max(1e-9, (time.monotonic() - t_log0) / 3600)
        result["log_mb_per_hour"] = (log_bytes(stack.home) - log0) / 2**20 / hours
        result["count_s"] = time_query(stack, "SELECT count(*) FROM cloud_run")
        result["group_by_s"] = time_query(
            stack, "SELECT event, count(*) AS n, avg(value) FROM cloud_run GROUP BY event ORDER BY n DESC"
        )
        loadgen = stack.pids().get("loadgen")
        if loadgen:
            os.killpg(loadgen, signal.SIGSTOP)
        try:
            time.sleep(30)
            result["cpu_idle"] = sample_cpu(stack, args.window)
        finally:
            if loadgen:
                os.killpg(loadgen, signal.SIGCONT)
        print(f"[{label}] CPU idle: {sum(result['cpu_idle'].values()):.1f}%", file=sys.stderr)
        stack.down()
        try:
            result["second_up_s"] = stack.up()
            print(f"[{label}] second hyp up healthy in {result['second_up_s']:.1f} s", file=sys.stderr)
        except SystemExit as failed:  # the figure is that it failed, and why
            result["second_up_error"] = str(failed).strip().splitlines()[-1]
            print(f"[{label}] second hyp up failed: {result['second_up_error']}", file=sys.stderr)
    finally:
        stack.down()
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    print(render(result))
    cmd = " ".join(["python", "benchmarks/footprint_bench.py", *(argv if argv is not None else sys.argv[1:])])
    print(f"\ncommand: `{cmd}`; load average at the end {os.getloadavg()[0]:.2f}")
    return 0


def _at(r: dict, minute: float) -> dict:
    """The timeline's sample nearest ``minute``."""
    return min(r["timeline"], key=lambda m: abs(m["t_min"] - minute))


def compare(before: dict, after: dict, minute: float) -> str:
    """RSS (and, in the totals, PSS) per service of two runs, at ``minute`` and at the end, side by side."""
    b0, b1, a0, a1 = _at(before, minute), before["timeline"][-1], _at(after, minute), after["timeline"][-1]
    lb, la = before["label"], after["label"]
    lines = [
        f"| service | {lb}: RSS at {b0['t_min']:g} min (MiB) | at {b1['t_min']:g} min "
        f"| {la}: RSS at {a0['t_min']:g} min | at {a1['t_min']:g} min | {la} - {lb} at the end |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for n in sorted(set(b1["rss"]) | set(a1["rss"])):
        row = [m["rss"].get(n, 0.0) for m in (b0, b1, a0, a1)]
        lines.append(f"| {n} | " + " | ".join(f"{v:,.0f}" for v in row) + f" | {round(row[3] - row[1]):+,d} |")
    for key, name in (("rss", "**total RSS**"), ("pss", "total PSS")):
        row = [sum(m[key].values()) for m in (b0, b1, a0, a1)]
        lines.append(f"| {name} | " + " | ".join(f"{v:,.0f}" for v in row) + f" | {round(row[3] - row[1]):+,d} |")
    return "\n".join(lines)


def render(r: dict) -> str:
    last = r["timeline"][-1] if r.get("timeline") else {}
    first = r["timeline"][1] if len(r.get("timeline", [])) > 1 else last
    lines = [
        f"### {r['label']}: {r['minutes']:g} minutes at {r['rate']:g} events/s",
        "",
        "| service | CPU at rate (% of a core) | CPU, no events | RSS warm (MiB) | RSS at end | PSS at end |",
        "|---|---|---|---|---|---|",
    ]
    names = sorted(set(r.get("cpu_at_rate", {})) | set(r.get("cpu_idle", {})))
    for n in names:
        lines.append(
            f"| {n} | {r['cpu_at_rate'].get(n, 0):.1f} | {r.get('cpu_idle', {}).get(n, 0):.1f} "
            f"| {first.get('rss', {}).get(n, 0):.0f} | {last.get('rss', {}).get(n, 0):.0f} "
            f"| {last.get('pss', {}).get(n, 0):.0f} |"
        )
    lines.append(
        f"| **total** | **{sum(r['cpu_at_rate'].values()):.1f}** | **{sum(r.get('cpu_idle', {}).values()):.1f}** "
        f"| **{sum(first.get('rss', {}).values()):.0f}** | **{sum(last.get('rss', {}).values()):.0f}** "
        f"| **{sum(last.get('pss', {}).values()):.0f}** |"
    )
    second = f"{r['second_up_s']:.1f} s" if "second_up_s" in r else f"failed: {r.get('second_up_error', 'not run')}"
    worst = max((v for m in r.get("timeline", []) for v in m["oldest_s"].values()), default=0.0)
    end_oldest = ", ".join(f"{k} {v:.1f} s / {last['backlog'].get(k, 0)}" for k, v in last.get("oldest_s", {}).items())
    lines += [
        "",
        "| figure | value |",
        "|---|---|",
        f"| first `hyp up` to healthy | {r['first_up_s']:.1f} s |",
        f"| second `hyp up` to healthy, after the run | {second} |",
        f"| oldest unacked / backlog at the end, per subscription | {end_oldest} |",
        f"| worst oldest unacked in any minute | {worst:.1f} s |",
        f"| files per table at the end | {last.get('files')} |",
        f"| `SELECT count(*) FROM cloud_run` at the end | {r.get('count_s', float('nan')):.2f} s |",
        f"| `GROUP BY event` over cloud_run at the end | {r.get('group_by_s', float('nan')):.2f} s |",
        f"| log growth | {r.get('log_mb_per_hour', float('nan')):.1f} MB/hour |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
