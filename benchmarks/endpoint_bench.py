"""Benchmark: `hyp endpoint` against `mlflow models serve`, same registered model, same load tool.

One run, one machine: starts (or uses) an MLflow server with a k-means champion, starts both
servers with the same worker count, then drives each from a separate load process (closed loop,
keep-alive HTTP/1.1 connections, the same request bytes for both: ``{"instances": [...]}``, which
MLflow's /invocations and Vertex's :predict both accept) for single instances and batches of
1,000. Prints a markdown table and the command that made it.

    .venv/bin/python benchmarks/endpoint_bench.py [--tracking-uri URI] [--duration 10]

``--tree NAME=PATH`` (repeatable) benchmarks `hyp endpoint` from each code tree instead (e.g. a git
worktree of the code before a change beside this one), all running at once on the same model, the
cells interleaved (each batch size and connection count runs every tree before the next), same
settings; ``--rounds N`` repeats the whole sequence so drifting machine load falls on every tree.

    .venv/bin/python benchmarks/endpoint_bench.py --only hyp --tree before=/work/wt-before --tree after=. --rounds 2

Nothing is downloaded: `mlflow models serve --env-manager local` uses this virtual environment.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from teardown import stop_on_signals

from services.common.processes import free_port, stop_group, wait_healthy
from services.testing.hyp import run_hyp

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
FEATURES = ("tax", "shipping", "value")


# --- the load tool (runs in its own process: `endpoint_bench.py --load ...`) -------------------


async def _connection(host: str, port: int, request: bytes, stop_at: float, latencies: list[float], errors: list[str]):
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = None
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                raise RuntimeError("response without Content-Length")
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            if status != 200:
                errors.append(str(status))
    finally:
        writer.close()


async def _load(host: str, port: int, path: str, body: bytes, connections: int, duration: float) -> dict:
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    # warm-up: a few requests per connection, not counted
    await asyncio.gather(
        *(_connection(host, port, request, time.perf_counter() + 0.5, [], []) for _ in range(connections))
    )
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    await asyncio.gather(
        *(_connection(host, port, request, start + duration, latencies, errors) for _ in range(connections))
    )
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "errors": len(errors),
        "rps": len(latencies) / elapsed,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "mean_ms": sum(latencies) / len(latencies) * 1000,
    }


def load_main(args: argparse.Namespace) -> int:
    body = Path(args.body).read_bytes()
    # uvloop when installed (the serve extra has it): the load tool's own cost per request stays small
    # beside either server's, on a machine where it shares the cores with them
    run: Callable[..., Any]
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    result = run(_load("127.0.0.1", args.port, args.path, body, args.connections, args.duration))
    print(json.dumps(result))
    return 0


# --- orchestration ---------------------------------------------------------------------------------


def wait_http(url: str, process: subprocess.Popen, timeout: float = 180.0) -> None:
    """The kit's wait_healthy, with the tail of the server's log in the error."""
    try:
        wait_healthy(url, timeout, process=process, what=" ".join(map(str, cast(list[Any], process.args)[:4])))
    except (RuntimeError, TimeoutError) as exc:
        log = getattr(process, "log_path", None)
        tail = Path(log).read_text(errors="replace")[-3000:] if log else ""
        raise type(exc)(f"{exc}:\n{tail}") from None


def start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    out = open(log, "wb")  # noqa: SIM115 - open for the process's life
    process = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    process.log_path = log  # type: ignore[attr-defined]
    return process


def start_endpoint(tree: Path, env: dict[str, str], workers: int, log: Path) -> tuple[subprocess.Popen, int]:
    """`hyp endpoint` from a code tree (its own modules first on the path), on a free port, alias not polled."""
    port = free_port()
    cmd = [
        PY,
        "-m",
        "services.cli",
        "endpoint",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--reload-interval",
        "0",
    ]
    tree_env = {**env, "PYTHONPATH": str(tree)}
    out = open(log, "wb")  # noqa: SIM115 - open for the process's life
    process = subprocess.Popen(
        cmd, cwd=tree, env=tree_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )
    process.log_path = log  # type: ignore[attr-defined]
    return process, port


def ensure_champion(tracking_uri: str, work: Path, env: dict[str, str]) -> str:
    from models.registry import champion_version, client

    version = champion_version(client(tracking_uri))
    if version is None:
        args = ["train", "--model", "kmeans", "--generate", "20000", "--promote", "--tracking-uri", tracking_uri]
        trained = run_hyp(*args, "--warehouse-dir", str(work / "warehouse"), env=env, timeout=600)
        if trained.returncode != 0:
            raise RuntimeError(f"hyp train exited with {trained.returncode}:\n{trained.stderr[-3000:]}")
        version = champion_version(client(tracking_uri))
    if version is None:
        raise RuntimeError("no champion after training")
    return version


def bodies(work: Path, sizes: list[int]) -> dict[int, Path]:
    import numpy as np

    rng = np.random.default_rng(7)
    out = {}
    for n in sizes:
        value = rng.uniform(5, 500, n).round(2)
        rows = [
            {"tax": round(v * 0.19, 2), "shipping": round(float(s), 2), "value": float(v)}
            for v, s in zip(value, rng.uniform(0, 10, n), strict=True)
        ]
        path = work / f"body-{n}.json"
        path.write_text(json.dumps({"instances": rows}))
        out[n] = path
    return out


def predict_path() -> str:
    """The Vertex :predict path of the endpoint's default resource name."""
    from services.common import names

    return "/v1/" + names.endpoint("hyp-local", "europe-west1", "1") + ":predict"


def run_load(port: int, path: str, body: Path, connections: int, duration: float) -> dict:
    cmd = [PY, __file__, "--load", "--port", str(port), "--path", path, "--body", str(body)]
    cmd += ["--connections", str(connections), "--duration", str(duration)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tracking-uri", help="an MLflow server to use (default: start one in a temp folder)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per cell")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes, both servers")
    parser.add_argument("--connections", default="1,8", help="concurrent client connections to try")
    parser.add_argument("--batch-sizes", default="1,1000", help="instances per request to try")
    parser.add_argument("--only", choices=["hyp", "mlflow"], help="benchmark one server only")
    parser.add_argument(
        "--tree", action="append", default=[], help="NAME=PATH: hyp endpoint from this code tree (repeatable)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat all cells this many times, interleaved")
    # the load tool's own mode
    parser.add_argument("--load", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--body", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up
    if args.load:
        args.connections = int(args.connections)
        return load_main(args)

    sys.path.insert(0, str(ROOT))
    connections = [int(c) for c in args.connections.split(",")]
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    processes: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="hyp-endpoint-bench-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HTTP_PROXY", "HTTPS_PROXY"))}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        # `mlflow models serve` execs `uvicorn` by name: the venv's bin must be on PATH
        env["PATH"] = f"{Path(PY).parent}{os.pathsep}{env.get('PATH', '')}"
        try:
            tracking_uri = args.tracking_uri
            if tracking_uri is None:
                port = free_port()
                cmd = [PY, "-m", "services.cli", "mlflow", "--host", "127.0.0.1", "--port", str(port)]
                processes.append(start([*cmd, "--data-dir", str(work / "mlflow")], env, work / "mlflow.log"))
                tracking_uri = f"http://127.0.0.1:{port}"
                wait_http(f"{tracking_uri}/health", processes[-1])
            env["MLFLOW_TRACKING_URI"] = tracking_uri
            version = ensure_champion(tracking_uri, work, env)
            payloads = bodies(work, sizes)
            servers = []
            if args.only in (None, "hyp"):
                trees = [(t.split("=", 1)[0], Path(t.split("=", 1)[1]).resolve()) for t in args.tree]
                for name, tree in trees or [("", ROOT)]:
                    process, port = start_endpoint(tree, env, args.workers, work / f"endpoint-{name}.log")
                    processes.append(process)
                    wait_http(f"http://127.0.0.1:{port}/health", process)
                    label = f"hyp endpoint ({name})" if name else "hyp endpoint"
                    servers.append((label, port, predict_path()))
            if args.only in (None, "mlflow"):
                port = free_port()
                mlflow_bin = str(Path(PY).with_name("mlflow"))
                cmd = [mlflow_bin, "models", "serve", "-m", f"models:/purchase-anomaly/{version}"]
                cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "--workers", str(args.workers)]
                processes.append(start(cmd, env, work / "mlflow-serve.log"))
                wait_http(f"http://127.0.0.1:{port}/ping", processes[-1])
                servers.append(("mlflow models serve", port, "/invocations"))
            results = []
            for size, conns in [(size, conns) for _ in range(args.rounds) for size in sizes for conns in connections]:
                for name, port, path in servers:
                    r = run_load(port, path, payloads[size], conns, args.duration)
                    results.append({"server": name, "batch": size, "connections": conns, **r})
                    print(
                        f"  {name:20} batch={size:<5} conns={conns:<3} {r['rps']:9.1f} req/s  "
                        f"p50 {r['p50_ms']:7.2f} ms  p99 {r['p99_ms']:7.2f} ms  errors {r['errors']}",
                        file=sys.stderr,
                    )
        finally:
            for process in reversed(processes):
                stop_group(process)
    print(report(results, version, args))
    return 0


def report(results: list[dict], version: str, args: argparse.Namespace) -> str:
    lines = [
        f"k-means champion (purchase-anomaly v{version}), {args.workers} server worker(s), "
        f"{args.duration:g} s per cell, load from a separate process, {os.cpu_count()} CPU cores",
        "",
        "| server | instances/request | connections | requests/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['server']} | {r['batch']} | {r['connections']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['errors']} |"
        )
    by = {(r["server"], r["batch"], r["connections"]): r for r in results}
    ratios = []
    for (server, batch, conns), r in by.items():
        other = by.get(("mlflow models serve", batch, conns))
        if server == "hyp endpoint" and other:
            ratios.append(
                f"| {batch} | {conns} | {r['rps'] / other['rps']:.1f}x | {r['p99_ms'] / other['p99_ms']:.2f} |"
            )
    if ratios:
        lines += [
            "",
            "| instances/request | connections | requests/s vs mlflow | p99 vs mlflow |",
            "|---:|---:|---:|---:|",
        ]
        lines += ratios
    lines += tree_summary(results)
    one = by.get(("hyp endpoint", 1000, 1))
    if one:
        lines += [
            "",
            f"hyp endpoint, one batch of 1,000 k-means instances: p50 {one['p50_ms']:.2f} ms "
            f"(mean {one['mean_ms']:.2f} ms), HTTP round trip included",
        ]
    command = "python benchmarks/endpoint_bench.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    lines += ["", f"Command: `{command.strip()}`"]
    return "\n".join(lines)


def tree_summary(results: list[dict]) -> list[str]:
    """With --tree: per cell, each tree's median requests/s and p99 over the rounds, and each later
    tree's requests/s as a share of the first's."""
    from statistics import median

    trees = list(dict.fromkeys(r["server"] for r in results if r["server"].startswith("hyp endpoint (")))
    if len(trees) < 2:
        return []
    cells = list(dict.fromkeys((r["batch"], r["connections"]) for r in results))
    head = " | ".join(f"{t} req/s, p99 ms" for t in trees)
    shares = " | ".join(f"{t} vs {trees[0]}" for t in trees[1:])
    lines = ["", f"| instances/request | connections | {head} | {shares} |"]
    lines.append("|---:|---:|" + "---:|" * (2 * len(trees) - 1))
    for batch, conns in cells:
        medians = []
        for tree in trees:
            runs = [r for r in results if (r["server"], r["batch"], r["connections"]) == (tree, batch, conns)]
            medians.append((median(r["rps"] for r in runs), median(r["p99_ms"] for r in runs)))
        cols = " | ".join(f"{rps:.0f}, {p99:.2f}" for rps, p99 in medians)
        ratios = " | ".join(f"{rps / medians[0][0]:.2f}x" for rps, _ in medians[1:])
        lines.append(f"| {batch} | {conns} | {cols} | {ratios} |")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
