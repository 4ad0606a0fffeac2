"""Benchmark: Vertex `:predict` through a deployed prebuilt scikit-learn artifact vs the champion path.

One run, one machine: starts MLflow (with a k-means @champion), `hyp storage` and one `hyp endpoint`
(one worker) on free ports from a temporary folder, uploads a scikit-learn k-means artifact
(``model.joblib`` on hyp storage) with Google's SDK, creates an endpoint and deploys it, then drives
both paths of the same server from a separate load process (endpoint_bench.py's closed-loop tool:
keep-alive HTTP/1.1, the same number of rows per request) and, for scale, ``mlflow models serve`` on
the champion. Prints a markdown table and the command that made it.

``--tree NAME=PATH`` (repeatable) starts one `hyp endpoint` from each code tree instead (a git worktree of the
code before a change beside this one), the same artifact deployed on each, all running at once; the cells are
interleaved (every tree, then `mlflow models serve`, before the next cell) and ``--rounds N`` repeats the whole
sequence, so drifting machine load falls on every server alike.

    .venv/bin/python benchmarks/vertex_bench.py [--duration 10] [--connections 1,8] [--batch-sizes 1,1000]
    .venv/bin/python benchmarks/vertex_bench.py --tree before=/tmp/wt --tree after=. --rounds 2 --no-champion
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import endpoint_bench as eb
from teardown import stop_on_signals

from services.common.processes import free_port, stop_group
from services.testing.hyp import HypProcess
from services.testing.vertex import SKLEARN_IMAGE


def deploy_sklearn(endpoint_url: str, storage_url: str, work: Path) -> str:
    """Upload a scikit-learn k-means (``model.joblib`` on hyp storage) and deploy it on a new endpoint.

    Returns that endpoint's :predict path."""
    import joblib
    import numpy as np
    from sklearn.cluster import KMeans

    from services.testing.storage import storage_client
    from services.testing.vertex import vertex_init  # the SDK, imported on use

    rng = np.random.default_rng(7)
    value = rng.uniform(5, 500, 5000)
    X = np.column_stack([value * 0.19, rng.uniform(0, 10, 5000), value])
    folder = work / "sklearn-kmeans"
    folder.mkdir(exist_ok=True)
    joblib.dump(KMeans(n_clusters=4, n_init=1, random_state=0).fit(X), folder / "model.joblib")
    gcs = storage_client(storage_url)
    bucket = gcs.bucket("bench-models")
    if not bucket.exists():  # one artifact for every endpoint of the run
        bucket.create()
        bucket.blob("kmeans/model.joblib").upload_from_filename(str(folder / "model.joblib"))
    os.environ["STORAGE_EMULATOR_HOST"] = storage_url
    aiplatform = vertex_init(endpoint_url)
    model = aiplatform.Model.upload(
        display_name="bench-kmeans", artifact_uri="gs://bench-models/kmeans", serving_container_image_uri=SKLEARN_IMAGE
    )
    endpoint = aiplatform.Endpoint.create(display_name="bench")
    model.deploy(endpoint=endpoint)
    return f"/v1/{endpoint.resource_name}:predict"


def list_bodies(work: Path, sizes: list[int]) -> dict[int, Path]:
    """The same rows as endpoint_bench's bodies, as the prebuilt container takes them: [tax, shipping, value]."""
    out = {}
    for n, path in eb.bodies(work, sizes).items():
        rows = [[r["tax"], r["shipping"], r["value"]] for r in json.loads(path.read_text())["instances"]]
        target = work / f"rows-{n}.json"
        target.write_text(json.dumps({"instances": rows}))
        out[n] = target
    return out


def group_cpu_s(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the processes of group ``pgid`` (a server and its workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid:  # fields[0] is the state: pgrp is the 5th field of the line, utime the 14th
            total += int(fields[11]) + int(fields[12])
    return total / tick


def summary(results: list[dict[str, Any]]) -> list[str]:
    """Per cell: each server's median requests/s and server CPU per request over the rounds, each as a multiple
    of `mlflow models serve`'s (for CPU: how many times less it spends)."""
    servers = list(dict.fromkeys(r["server"] for r in results))
    cells = list(dict.fromkeys((r["batch"], r["connections"]) for r in results))

    def median(server: str, cell: tuple[int, int], key: str) -> float:
        values = sorted(r[key] for r in results if (r["server"], r["batch"], r["connections"]) == (server, *cell))
        return values[len(values) // 2] if values else 0.0

    lines = []
    for key, title, fmt in (("rps", "requests/s", "{:.0f}"), ("cpu_ms", "server CPU ms/request", "{:.2f}")):
        lines += ["", f"median {title} per cell (x `mlflow models serve`)", ""]
        lines.append("| instances/request | connections | " + " | ".join(servers) + " |")
        lines.append("|---:|---:|" + "---:|" * len(servers))
        for cell in cells:
            base = median("mlflow models serve", cell, key)
            row = []
            for server in servers:
                value = median(server, cell, key)
                ratio = (value / base if key == "rps" else base / value) if base and value else 0.0
                mine = server != "mlflow models serve" and ratio
                row.append(fmt.format(value) + (f" ({ratio:.1f}x)" if mine else ""))
            lines.append(f"| {cell[0]} | {cell[1]} | " + " | ".join(row) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per cell")
    parser.add_argument("--connections", default="1,8", help="concurrent client connections to try")
    parser.add_argument("--batch-sizes", default="1,1000", help="instances per request to try")
    parser.add_argument("--no-mlflow", action="store_true", help="skip `mlflow models serve`")
    parser.add_argument("--no-champion", action="store_true", help="skip endpoint 1's champion path")
    parser.add_argument(
        "--tree", action="append", default=[], help="NAME=PATH: a `hyp endpoint` from this code tree (repeatable)"
    )
    parser.add_argument("--rounds", type=int, default=1, help="repeat every cell this many times, interleaved")
    args = parser.parse_args(argv)
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up
    import logging

    logging.getLogger("google.cloud.aiplatform").setLevel(logging.WARNING)  # the SDK's progress lines
    connections = [int(c) for c in args.connections.split(",")]
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    load = os.getloadavg()
    processes: list[Any] = []
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="hyp-vertex-bench-") as tmp:
        work = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HTTP_PROXY", "HTTPS_PROXY"))}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        env["PATH"] = f"{Path(eb.PY).parent}{os.pathsep}{env.get('PATH', '')}"
        try:
            mlflow = HypProcess(
                "mlflow", "--host", "127.0.0.1", "--data-dir", str(work / "mlflow"), log_path=work / "m.log"
            )
            processes.append(mlflow.start(180))
            env["MLFLOW_TRACKING_URI"] = mlflow.url
            version = eb.ensure_champion(mlflow.url, work, env)
            storage = HypProcess("storage", "--data-dir", str(work / "gcs"), log_path=work / "s.log", env=env)
            processes.append(storage.start(60))
            endpoint_env = {**env, "STORAGE_EMULATOR_HOST": storage.url, "HYP_ENDPOINT_RELOAD_INTERVAL_S": "0"}
            servers = []
            trees = [(t.split("=", 1)[0], Path(t.split("=", 1)[1]).resolve()) for t in args.tree]
            for name, tree in trees or [("", eb.ROOT)]:
                process, port = eb.start_endpoint(tree, endpoint_env, 1, work / f"endpoint-{name}.log")
                processes.append(process)
                eb.wait_http(f"http://127.0.0.1:{port}/health", process)
                sklearn_path = deploy_sklearn(f"http://127.0.0.1:{port}", storage.url, work)
                suffix = f" ({name})" if name else ""
                if not args.no_champion:
                    champion = (f"champion (endpoint 1){suffix}", port, eb.predict_path(), eb.bodies(work, sizes))
                    servers.append((*champion, process.pid))
                servers.append((f"deployed sklearn{suffix}", port, sklearn_path, list_bodies(work, sizes), process.pid))
            if not args.no_mlflow:
                port = free_port()
                cmd = [
                    str(Path(eb.PY).with_name("mlflow")),
                    "models",
                    "serve",
                    "-m",
                    f"models:/purchase-anomaly/{version}",
                ]
                cmd += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "--workers", "1"]
                processes.append(eb.start(cmd, env, work / "mlflow-serve.log"))
                eb.wait_http(f"http://127.0.0.1:{port}/ping", processes[-1])
                mlflow_serve = ("mlflow models serve", port, "/invocations", eb.bodies(work, sizes))
                servers.append((*mlflow_serve, processes[-1].pid))
            cells = [(size, conns) for _ in range(args.rounds) for size in sizes for conns in connections]
            for size, conns in cells:
                for name, port, path, payloads, pgid in servers:
                    cpu = group_cpu_s(pgid)
                    r = eb.run_load(port, path, payloads[size], conns, args.duration)
                    # the server's CPU per request, which the machine's load moves far less than requests/s; the
                    # load tool's 0.5 s of warm-up runs at about the same rate, and its CPU is in the difference
                    r["cpu_ms"] = (group_cpu_s(pgid) - cpu) * 1000 / max(1.0, r["rps"] * (args.duration + 0.5))
                    results.append({"server": name, "batch": size, "connections": conns, **r})
                    print(
                        f"  {name:30} batch={size:<5} conns={conns:<3} {r['rps']:9.1f} req/s "
                        f"p99 {r['p99_ms']:7.2f} ms cpu {r['cpu_ms']:6.2f} ms/req errors {r['errors']} "
                        f"load {os.getloadavg()[0]:.1f}",
                        file=sys.stderr,
                    )
        finally:
            for process in reversed(processes):
                popen = process.process if isinstance(process, HypProcess) else process
                if popen is not None:
                    stop_group(popen)
    print(
        f"one `hyp endpoint` worker, {args.duration:g} s per cell, load from a separate process, "
        f"{os.cpu_count()} CPU cores\n"
    )
    print("| path | instances/request | connections | requests/s | p50 ms | p99 ms | server CPU ms/request | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['server']} | {r['batch']} | {r['connections']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['cpu_ms']:.2f} | {r['errors']} |"
        )
    print("\n".join(summary(results)))
    print(f"load average (1 min) {load[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    print(f"\n`.venv/bin/python benchmarks/vertex_bench.py {' '.join(argv or sys.argv[1:])}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
