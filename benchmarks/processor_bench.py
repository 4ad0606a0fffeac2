"""Benchmark: `hyp processor` under push load, this tree against another (e.g. the code before a change).

Starts the endpoint app with the processor tests' in-test model (tests/services/processor/conftest.py)
in its own process, then for each code tree and each rate starts `hyp processor` on a fresh
warehouse, pushes 3 s worth at that rate (warm-up, not measured), then N envelopes at that rate
with at most ``--concurrency`` requests in flight (what the Pub/Sub emulator's push does: a
message waits while every slot is busy). Half the events are purchases (scored on the endpoint),
half page views. Prints a markdown table: sustained pushes/s, the backlog when the last push was
due (scheduled, not yet answered: Pub/Sub's unacked count; flat means about rate x latency),
push latency p50/p99 (send to answer), the processor's CPU seconds per 1,000 pushes (utime+stime
of its process), files written (warm-up included), and the time to healthy on an empty warehouse
and on one holding ``--fill`` small commits of processor rows.

    .venv/bin/python benchmarks/processor_bench.py --tree before=/work/before --tree after=. \\
        --rates 200,2000 --duration 15 --concurrency 2000 --fill 3000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from teardown import stop_on_signals

from services.common.processes import cpu_seconds, free_port, stop_group, wait_healthy

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
WARM_UP_S = 3.0  # seconds of pushes at the rate before each measured run


# --- the endpoint (its own process: `processor_bench.py --serve-endpoint PORT`) --------------------


def serve_endpoint(port: int) -> int:
    import uvicorn

    from services.endpoint.app import create_app
    from services.endpoint.settings import EndpointSettings
    from tests.services.endpoint.helpers import FakeSource, TinyKMeans

    settings = EndpointSettings(HYP_ENDPOINT_RELOAD_INTERVAL_S="0")  # type: ignore[call-arg]  # by env name
    app = create_app(settings, FakeSource({"1": TinyKMeans()}, alias="1"))
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    return 0


# --- the push load (its own process: `processor_bench.py --load ...`) -----------------------------


def make_bodies(n: int, run: str, rate: float) -> list[bytes]:
    """Half purchases, half views; publish times as if published at the rate from now on."""
    from tests.services.processor.helpers import purchase_event, push_envelope, view_event

    now = datetime.now(UTC)
    return [
        push_envelope(
            purchase_event(20.0 + i % 50, user=f"u{i}") if i % 2 else view_event(f"u{i}"),
            f"{run}-{i}",
            now + timedelta(seconds=i / rate),
        )
        for i in range(n)
    ]


async def _push(port: int, bodies: list[bytes], rate: float, concurrency: int) -> dict:
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = 0

    async def exchange(conn: list, body: bytes) -> int:
        """One request on the worker's keep-alive connection, reconnecting once if the server closed it."""
        # Host: the processor's own name (services/common/serve.py answers any other with 400)
        head = f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        head += f"Content-Length: {len(body)}"
        for attempt in (1, 2):
            if not conn:
                conn[:] = await asyncio.open_connection("127.0.0.1", port)
            reader, writer = conn
            try:
                writer.write(head.encode() + b"\r\n\r\n" + body)
                response = await reader.readuntil(b"\r\n\r\n")
                for line in response.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length" and int(value):
                        await reader.readexactly(int(value))
                return int(response.split(b" ", 2)[1])
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()
                conn.clear()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def worker() -> None:
        nonlocal started
        conn: list = []
        try:
            while (item := await queue.get()) is not None:
                started += 1
                t0 = time.perf_counter()
                status = await exchange(conn, item[1])
                latencies.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            if conn:
                conn[1].close()

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    start = time.perf_counter()
    for i, body in enumerate(bodies):  # open loop: the schedule does not wait for answers
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, body))
    scheduled_end = time.perf_counter()
    backlog = len(bodies) - len(latencies)  # scheduled but not answered (acked) when the last one was due
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    end = time.perf_counter()
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "pushes": len(latencies),
        "seconds": end - start,
        "schedule_s": scheduled_end - start,
        "backlog": backlog,
        "p50_ms": pct(0.5),
        "p99_ms": pct(0.99),
        "statuses": statuses,
    }


def load_main(port: int, bodies_file: str, rate: float, concurrency: int) -> int:
    bodies = json.loads(Path(bodies_file).read_text())
    print(json.dumps(asyncio.run(_push(port, [b.encode() for b in bodies], rate, concurrency))))
    return 0


# --- orchestration ---------------------------------------------------------------------------------


def healthy_after(url: str, process: subprocess.Popen, timeout: float) -> float:
    """Seconds until ``url`` answers 200 (the kit's wait_healthy, which polls every 0.25 s)."""
    start = time.monotonic()
    wait_healthy(url, timeout, process=process, what="hyp processor")
    return time.monotonic() - start


def start_processor(tree: Path, warehouse: Path, endpoint_port: int, log: Path) -> tuple[subprocess.Popen, int]:
    """`hyp processor` from a code tree (cwd and PYTHONPATH: that tree's modules first). Not the kit's HypProcess,
    which runs this checkout's code; endpoint_bench's start_endpoint is the same pattern for the endpoint."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(tree),
        "HYP_WAREHOUSE_DIR": str(warehouse),
        "HYP_ENDPOINT_URL": f"http://127.0.0.1:{endpoint_port}",
        "HYP_PROCESSOR_DEADLETTER_TOPIC": "",
        "HYP_LOG_LEVEL": "WARNING",
    }
    out = open(log, "ab")  # noqa: SIM115 - open for the process's life
    cmd = [PY, "-m", "services.cli", "processor", "--port", str(port)]
    process = subprocess.Popen(cmd, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    return process, port


def run_case(tree: Path, work: Path, endpoint_port: int, rate: float, n: int, concurrency: int) -> dict:
    warehouse = Path(tempfile.mkdtemp(dir=work, prefix="wh-"))
    process, port = start_processor(tree, warehouse, endpoint_port, work / "processor.log")
    try:
        healthy_s = healthy_after(f"http://127.0.0.1:{port}/health", process, 120)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}

        def push(count: int) -> dict:
            bodies = work / "bodies.json"
            bodies.write_text(json.dumps([b.decode() for b in make_bodies(count, f"r{time.time_ns()}", rate)]))
            cmd = [PY, __file__, "--load", str(port), str(bodies), str(rate), str(concurrency)]
            done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError(f"load tool failed:\n{done.stderr[-3000:]}")
            return json.loads(done.stdout)

        push(int(rate * WARM_UP_S))  # first imports, connections, the first files: not measured
        cpu0 = cpu_seconds(process.pid)
        result = push(n)
        result["cpu_per_1000"] = (cpu_seconds(process.pid) - cpu0) / max(1, result["pushes"]) * 1000
        result["healthy_s"] = healthy_s
        result["files"] = sum(1 for _ in warehouse.rglob("*.parquet"))
        return result
    finally:
        stop_group(process)


def startup_case(tree: Path, work: Path, endpoint_port: int, fill: int) -> float:
    from tests.services.processor.helpers import fill_warehouse

    warehouse = work / f"filled-{fill}"
    if not warehouse.exists():
        fill_warehouse(warehouse, fill)
    process, port = start_processor(tree, warehouse, endpoint_port, work / "processor.log")
    try:
        return healthy_after(f"http://127.0.0.1:{port}/health", process, 300)
    except TimeoutError:
        return float("inf")
    finally:
        stop_group(process)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if str(ROOT) not in sys.path:  # the tests' helpers (in-test model, envelopes) live beside services/
        sys.path.insert(0, str(ROOT))
    if argv[:1] == ["--serve-endpoint"]:
        return serve_endpoint(int(argv[1]))
    if argv[:1] == ["--load"]:
        return load_main(int(argv[1]), argv[2], float(argv[3]), int(argv[4]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", default=[], help="NAME=PATH of a code tree (repeatable)")
    parser.add_argument("--rates", default="200,2000", help="pushes/s, comma-separated")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of load per rate")
    parser.add_argument("--concurrency", type=int, default=2000, help="pushes in flight at most (the emulator: 2,000)")
    parser.add_argument("--fill", type=int, default=3000, help="small commits in the start-up warehouse (0: skip)")
    args = parser.parse_args(argv)
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up
    trees = [(t.split("=", 1)[0], Path(t.split("=", 1)[1]).resolve()) for t in args.tree] or [("this", ROOT)]
    rates = [float(r) for r in args.rates.split(",")]
    with tempfile.TemporaryDirectory(prefix="processor-bench-") as tmp:
        work = Path(tmp)
        endpoint_port = free_port()
        endpoint = subprocess.Popen(
            [PY, __file__, "--serve-endpoint", str(endpoint_port)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            start_new_session=True,
        )
        try:
            wait_healthy(f"http://127.0.0.1:{endpoint_port}/health", 20, process=endpoint, what="the test endpoint")
            rows = []
            for name, tree in trees:
                filled = startup_case(tree, work, endpoint_port, args.fill) if args.fill else float("nan")
                for rate in rates:
                    n = int(rate * args.duration)
                    r = run_case(tree, work, endpoint_port, rate, n, args.concurrency)
                    rows.append((name, rate, r, filled))
                    print(f"# {name} {rate:.0f}/s: {json.dumps(r)}", file=sys.stderr)
        finally:
            stop_group(endpoint)
    print(f"load average {os.getloadavg()[0]:.1f} at the end; {os.cpu_count()} CPUs")
    print()
    print(
        "| code | rate/s | sustained/s | unanswered at end | p50 ms | p99 ms | CPU s / 1,000 | files | "
        f"healthy s (empty / {args.fill} commits) | answers |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, rate, r, filled in rows:
        sustained = r["pushes"] / r["seconds"]
        print(
            f"| {name} | {rate:.0f} | {sustained:.0f} | {r['backlog']} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['cpu_per_1000']:.2f} | {r['files']} | {r['healthy_s']:.1f} / {filled:.1f} | {r['statuses']} |"
        )
    print()
    print("command: .venv/bin/python benchmarks/processor_bench.py " + shlex.join(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
