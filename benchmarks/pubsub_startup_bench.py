"""Start-up of the Docker-free Pub/Sub emulator: seconds from spawning ``hyp pubsub --port P`` to the first
successful ListTopics through google-cloud-pubsub, median of N runs per tree, trees alternated in one run.

Each run spawns ``python -m services.cli pubsub --port P`` (this venv's Python, the tree as cwd and
PYTHONPATH, the stack's default topology, memory only), waits until the gRPC port accepts a connection,
then calls ``PublisherClient.list_topics`` (a fresh client per try, no retry, so gRPC's reconnect backoff
does not count) until it answers. The client library is imported before the clock starts. Not a test.

    git -C /work/main worktree add /tmp/pubsub-before HEAD
    nice -n 19 .venv/bin/python benchmarks/pubsub_startup_bench.py --repo /tmp/pubsub-before --repo . --runs 5
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from google.api_core import exceptions
from google.cloud import pubsub_v1

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from teardown import die_with_parent, stop_on_signals  # noqa: E402  (beside this script)

from services.common.processes import free_port, stop_group  # noqa: E402

PROJECT = "hyp-startup-bench"
TIMEOUT_S = 60.0


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def _answers(port: int) -> bool:
    os.environ["PUBSUB_EMULATOR_HOST"] = f"127.0.0.1:{port}"  # the client's plaintext channel, as a user's test
    client = pubsub_v1.PublisherClient()
    try:
        list(client.list_topics(request={"project": f"projects/{PROJECT}"}, retry=None, timeout=2.0))
        return True
    except exceptions.GoogleAPICallError:
        return False
    finally:
        client.transport.close()


# Clean-up: every emulator is stopped in once()'s finally (SIGTERM to its group, SIGKILL after 10 s); so that it
# also runs when the bench itself is stopped, and a kill -9 of the bench takes the emulator with it, main calls
# teardown.stop_on_signals() and each emulator starts with teardown.die_with_parent (PR_SET_PDEATHSIG).


def cpu_s(pid: int) -> float:
    """The process's user + system CPU seconds so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def once(repo: Path, workdir: Path, topology: str | None) -> tuple[float, float]:
    """Seconds from spawn to the first ListTopics answer of one emulator started from ``repo``, and the
    emulator's CPU seconds by then (the figure that holds on a busy machine)."""
    port = free_port()
    rest = free_port()
    env = {k: v for k, v in os.environ.items() if k != "PUBSUB_EMULATOR_HOST"}
    env["PYTHONPATH"] = str(repo)
    cmd = [sys.executable, "-m", "services.cli", "pubsub", "--port", str(port), "--rest-port", str(rest)]
    if topology is not None:
        cmd += ["--topology", topology]
    with open(workdir / f"pubsub-{port}.log", "wb") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd,
            cwd=repo,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # a C call (looked up before the fork) and a getppid between fork and exec
        )
    try:
        while time.perf_counter() - t0 < TIMEOUT_S:
            if proc.poll() is not None:
                raise SystemExit(f"hyp pubsub from {repo} exited with {proc.returncode}")
            if _accepts(port) and _answers(port):
                return time.perf_counter() - t0, cpu_s(proc.pid)
            time.sleep(0.005)
        raise SystemExit(f"hyp pubsub from {repo} did not answer ListTopics in {TIMEOUT_S:.0f} s")
    finally:
        stop_group(proc, timeout=10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", action="append", type=Path, help="tree to start (repeat: alternated)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--topology", default=None, help="'none': no topics, as pytest-hyp-local's fixture")
    args = parser.parse_args(argv)
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up
    repos = [r.resolve() for r in (args.repo or [REPO])]
    runs: dict[Path, list[tuple[float, float]]] = {r: [] for r in repos}
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="pubsub-startup-") as tmp:
        for _ in range(args.runs):
            for repo in repos:
                runs[repo].append(once(repo, Path(tmp), args.topology))
    load = f"load {load0:.1f}-{os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs, {platform.node()}"
    print(f"| tree | median s to ListTopics | min-max s | median CPU s by then | runs |  ({load})")
    print("|---|---|---|---|---|")
    for repo, rs in runs.items():
        wall, cpu = [r[0] for r in rs], [r[1] for r in rs]
        print(
            f"| {repo} | {statistics.median(wall):.2f} | {min(wall):.2f}-{max(wall):.2f} "
            f"| {statistics.median(cpu):.2f} | {len(rs)} |"
        )
    print("\n`nice -n 19 .venv/bin/python benchmarks/pubsub_startup_bench.py " + " ".join(sys.argv[1:]) + "`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
