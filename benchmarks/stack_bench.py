"""Whole-stack benchmark: start-up times and memory, as a markdown table.

    .venv/bin/python benchmarks/stack_bench.py [--skip-docker] [--skip-local] [--warm-runs N]

Measures, on this machine:
- ``docker compose up --wait`` until every service is healthy, images already built (the build is done
  first and not timed), and the containers' memory (``docker stats``) once healthy;
- ``hyp up`` until the first anomaly is detected, from an empty data folder (the first champion is
  trained) and again with the registry already filled (second starts, ``--warm-runs`` times, best reported),
  with each service's healthy time and the load average;
- the resident memory (RSS) of every process of the local stack once detections flow.
The stack runs under its own compose project / data folder and is removed afterwards.
"""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from teardown import stop_on_signals  # noqa: E402  (beside this script)

from services.common.processes import wait_for  # noqa: E402
from services.stack import definition as d  # noqa: E402
from services.stack import processes as p  # noqa: E402
from services.stack.summary import warehouse_stats  # noqa: E402
from services.testing.hyp import run_hyp  # noqa: E402
from services.testing.stack import port_override  # noqa: E402

PY = sys.executable


def _mib(text: str) -> float:
    m = re.match(r"([\d.]+)\s*([KMG]i?B|B)", text.strip())
    if not m:
        return 0.0
    factor = {"B": 1 / 2**20, "KiB": 1 / 1024, "KB": 1 / 1024, "MiB": 1, "MB": 1, "GiB": 1024, "GB": 1024}[m[2]]
    return float(m[1]) * factor


def bench_compose(rows: list[tuple[str, str, str]]) -> None:
    services = [s.name for s in d.SERVICES]
    with tempfile.TemporaryDirectory() as tmp:
        override = Path(tmp) / "ports.yml"
        override.write_text(port_override(services))
        base = ["docker", "compose", "-p", "hyp-bench", "-f", str(ROOT / "docker-compose.yml"), "-f", str(override)]
        subprocess.run([*base, "build", "--quiet"], cwd=ROOT, check=True)
        t0 = time.monotonic()
        up = subprocess.run([*base, "up", "--wait", "--quiet-pull"], cwd=ROOT, capture_output=True, text=True)
        elapsed = time.monotonic() - t0
        try:
            if up.returncode != 0:
                raise SystemExit(f"docker compose up --wait failed:\n{up.stderr[-2000:]}")
            rows.append(("`docker compose up --wait`, images built, to all healthy", f"{elapsed:.1f} s", "<= 60 s"))
            # let the load generator run a little so memory reflects a working stack
            time.sleep(20)
            ids = subprocess.run([*base, "ps", "-q"], cwd=ROOT, capture_output=True, text=True).stdout.split()
            stats = subprocess.run(
                ["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", *ids],
                capture_output=True,
                text=True,
            ).stdout
            total = sum(_mib(line.split(" ", 1)[1].split("/")[0]) for line in stats.splitlines() if " " in line)
            rows.append(("compose stack memory (docker stats, all containers, no TensorFlow)", f"{total:,.0f} MiB", ""))
        finally:
            subprocess.run([*base, "down", "-v", "--timeout", "20"], cwd=ROOT, capture_output=True)


def _hyp_up_until_detection(home: Path) -> tuple[float, str]:
    """Seconds from `hyp up` to its first detection, and its per-service timeline ("pubsub 2.0, ...")."""
    cmd = [PY, "-m", "services.cli", "up", "--home", str(home), "--expect-detections", "1", "--duration", "300"]
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as up:
        try:
            stdout, stderr = up.communicate(timeout=900)
        except BaseException:  # the bench stopped or timed out: not SIGKILL (subprocess.run's), which strands the stack
            up.terminate()  # a foreground hyp up stops every service it started on SIGTERM
            up.communicate(timeout=120)
            raise
    m = re.search(r"first detection ([\d.]+) s", stdout)
    if up.returncode != 0 or not m:
        raise SystemExit(f"hyp up did not show a detection:\n{stdout[-2000:]}\n{stderr[-2000:]}")
    steps = re.findall(r"^\s+(\w+)\s+(?:healthy|done)\s+([\d.]+) s$", stderr, re.MULTILINE)
    return float(m[1]), ", ".join(f"{name} {at}" for name, at in steps)


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def _session_rss_mib(leaders: list[int]) -> float:
    """RSS of every process in the sessions the stack's services lead (each service is its own session)."""
    return sum(_rss_by_session(leaders).values())


def _rss_by_session(leaders: list[int], field: str = "VmRSS:", field_file: str = "status") -> dict[int, float]:
    """RSS (MiB) per session leader, summed over every process of its session (or PSS: "Pss:", "smaps_rollup")."""
    total_kib: dict[int, int] = dict.fromkeys(leaders, 0)
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            session = int(fields[3])  # field 6 of stat: session id
            if session not in total_kib:
                continue
            for line in (proc / field_file).read_text().splitlines():
                if line.startswith(field):
                    total_kib[session] += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return {leader: kib / 1024 for leader, kib in total_kib.items()}


def bench_local(rows: list[tuple[str, str, str]], notes: list[str], warm_runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "hyp"
        cold, steps = _hyp_up_until_detection(home)
        rows.append(("`hyp up` to the first detection, empty registry (trains a champion)", f"{cold:.1f} s", ""))
        notes.append(f"- empty registry: first detection {cold:.1f} s (load {_load()}); healthy/done at: {steps}")
        warm: list[float] = []
        for i in range(warm_runs):
            seconds, steps = _hyp_up_until_detection(home)
            warm.append(seconds)
            notes.append(f"- restart {i + 1}: first detection {seconds:.1f} s (load {_load()}); healthy at: {steps}")
        runs = ", ".join(f"{w:.1f}" for w in warm)
        what = f"`hyp up` to the first detection, second start (best of {len(warm)}: {runs} s)"
        rows.append((what, f"{min(warm):.1f} s", "<= 20 s"))
        # memory: detached stack, once detections flow
        started = run_hyp("up", "--detach", "--home", str(home), timeout=600)
        if started.returncode != 0:
            raise SystemExit(f"hyp up --detach exited with {started.returncode}:\n{started.stderr[-3000:]}")
        try:
            before = warehouse_stats(home / "warehouse")
            start_flagged = before.flagged if before else 0

            def detecting() -> bool:
                stats = warehouse_stats(home / "warehouse")
                return stats is not None and stats.flagged > start_flagged

            try:
                wait_for(detecting, 180, "a new detection in the warehouse", interval=2.0)
            except TimeoutError as exc:
                notes.append(f"- memory measured without new detections: {exc}")
            time.sleep(15)  # steady state with events flowing
            recorded = p.recorded(home / "run")
            by_leader = _rss_by_session([pid for pid, _ in recorded.values()])
            rss = sum(by_leader.values())
            what = f"local stack RSS, {len(recorded)} services, all processes, no TensorFlow"
            rows.append((what, f"{rss:,.0f} MiB", "<= 1,536 MiB"))
            each = ", ".join(f"{name} {by_leader[pid]:,.0f}" for name, (pid, _) in recorded.items())
            pss = sum(_rss_by_session(list(by_leader), "Pss:", "smaps_rollup").values())
            what = "local stack PSS (shared library pages counted once, split between the processes mapping them)"
            rows.append((what, f"{pss:,.0f} MiB", ""))
            notes.append(f"- RSS per service (MiB, load {_load()}): {each}")
        finally:
            run_hyp("down", "--home", str(home), timeout=300)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-docker", action="store_true", help="leave out the compose measurements")
    ap.add_argument("--skip-local", action="store_true", help="leave out the hyp up measurements")
    ap.add_argument("--warm-runs", type=int, default=2, help="second starts to time (the best is reported)")
    args = ap.parse_args(argv)
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up
    if args.warm_runs < 1:
        ap.error("--warm-runs must be at least 1")
    rows: list[tuple[str, str, str]] = []
    notes: list[str] = []
    if not args.skip_local:
        bench_local(rows, notes, args.warm_runs)
    if not args.skip_docker:
        bench_compose(rows)
    command = [".venv/bin/python", "benchmarks/stack_bench.py", *(argv or sys.argv[1:])]
    print(f"Command: `{shlex.join(command)}`")
    print()
    print("| measure | result | target |")
    print("|---|---|---|")
    for what, result, target in rows:
        print(f"| {what} | {result} | {target or '-'} |")
    if notes:
        print()
        print("\n".join(notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
