"""Benchmark: Vertex `:predict` through a deployed prebuilt scikit-learn artifact vs the champion path.

One run, one machine: starts MLflow (with a k-means @champion), `hyp storage` and one `hyp endpoint`
(one worker) on free ports from a temporary folder, uploads a scikit-learn k-means artifact
(``model.joblib`` on hyp storage) with Google's SDK, creates an endpoint and deploys it, then drives
both paths of the same server from a separate load process (endpoint_bench.py's closed-loop tool:
keep-alive HTTP/1.1, the same number of rows per request) and, for scale, ``mlflow models serve`` on
the champion. Prints a markdown table and the command that made it.

    .venv/bin/python benchmarks/vertex_bench.py [--duration 10] [--connections 1,8] [--batch-sizes 1,1000]
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
    folder.mkdir()
    joblib.dump(KMeans(n_clusters=4, n_init=1, random_state=0).fit(X), folder / "model.joblib")
    gcs = storage_client(storage_url)
    gcs.create_bucket("bench-models").blob("kmeans/model.joblib").upload_from_filename(str(folder / "model.joblib"))
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per cell")
    parser.add_argument("--connections", default="1,8", help="concurrent client connections to try")
    parser.add_argument("--batch-sizes", default="1,1000", help="instances per request to try")
    parser.add_argument("--no-mlflow", action="store_true", help="skip `mlflow models serve`")
    args = parser.parse_args(argv)
    import logging

    logging.getLogger("google.cloud.aiplatform").setLevel(logging.WARNING)  # the SDK's progress lines
    connections = [int(c) for c in args.connections.split(",")]
    sizes = [int(b) for b in args.batch_sizes.split(",")]
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
            endpoint = HypProcess("endpoint", log_path=work / "e.log", env=endpoint_env)
            processes.append(endpoint.start(180))
            sklearn_path = deploy_sklearn(endpoint.url, storage.url, work)
            servers = [
                ("champion (endpoint 1)", endpoint.port, eb.predict_path(), eb.bodies(work, sizes)),
                ("deployed sklearn", endpoint.port, sklearn_path, list_bodies(work, sizes)),
            ]
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
                servers.append(("mlflow models serve", port, "/invocations", eb.bodies(work, sizes)))
            for size in sizes:
                for conns in connections:
                    for name, port, path, payloads in servers:
                        r = eb.run_load(port, path, payloads[size], conns, args.duration)
                        results.append({"server": name, "batch": size, "connections": conns, **r})
                        print(
                            f"  {name:22} batch={size:<5} conns={conns:<3} {r['rps']:9.1f} req/s "
                            f"p99 {r['p99_ms']:7.2f} ms errors {r['errors']}",
                            file=sys.stderr,
                        )
        finally:
            for process in reversed(processes):
                stop_group(process.process if isinstance(process, HypProcess) else process)
    print(
        f"one `hyp endpoint` worker, {args.duration:g} s per cell, load from a separate process, "
        f"{os.cpu_count()} CPU cores\n"
    )
    print("| path | instances/request | connections | requests/s | p50 ms | p99 ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['server']} | {r['batch']} | {r['connections']} | {r['rps']:.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['errors']} |"
        )
    print(f"\n`.venv/bin/python benchmarks/vertex_bench.py {' '.join(argv or sys.argv[1:])}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
