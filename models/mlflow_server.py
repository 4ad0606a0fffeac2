"""`hyp mlflow`: a local MLflow tracking server with the model registry (Vertex AI Model Registry's stand-in).

sqlite backend and served artifacts under one data folder (default .hyp/mlflow), or a
PostgreSQL backend via HYP_MLFLOW_BACKEND_STORE_URI. MLflow's job execution is switched off and
nothing is downloaded. The process execs ``mlflow server``, so SIGTERM reaches MLflow directly.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from models.settings import get_settings


def server_command(
    data_dir: Path, host: str, port: int, *, backend_store_uri: str | None, allowed_hosts: str | None, workers: int
) -> list[str]:
    data_dir = data_dir.resolve()
    backend = backend_store_uri or f"sqlite:///{data_dir / 'mlflow.db'}"
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend,
        "--serve-artifacts",
        "--artifacts-destination",
        str(data_dir / "artifacts"),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if allowed_hosts:
        cmd += ["--allowed-hosts", allowed_hosts]
    return cmd


def main(argv: Sequence[str] | None = None) -> int:
    s = get_settings()
    parser = argparse.ArgumentParser(prog="hyp mlflow", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=s.mlflow_host, help="bind address (env HYP_MLFLOW_HOST)")
    parser.add_argument("--port", type=int, default=s.mlflow_port, help="port (env HYP_MLFLOW_PORT)")
    parser.add_argument(
        "--data-dir", type=Path, default=s.mlflow_dir, help="sqlite + artifacts folder (HYP_MLFLOW_DIR)"
    )
    parser.add_argument(
        "--backend-store-uri",
        default=s.mlflow_backend_store_uri,
        help="e.g. postgresql://... instead of sqlite (HYP_MLFLOW_BACKEND_STORE_URI)",
    )
    parser.add_argument(
        "--allowed-hosts",
        default=s.mlflow_allowed_hosts,
        help="Host headers to accept, e.g. 'mlflow:5000,localhost:*' (HYP_MLFLOW_ALLOWED_HOSTS)",
    )
    parser.add_argument("--workers", type=int, default=s.mlflow_workers, help="server workers (HYP_MLFLOW_WORKERS)")
    parser.add_argument("--dry-run", action="store_true", help="print the mlflow command and exit")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        print(f"hyp mlflow: --port must be 1..65535, got {args.port}", file=sys.stderr)
        return 2
    if args.workers < 1:
        print(f"hyp mlflow: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return 2
    cmd = server_command(
        args.data_dir,
        args.host,
        args.port,
        backend_store_uri=args.backend_store_uri,
        allowed_hosts=args.allowed_hosts,
        workers=args.workers,
    )
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    try:
        (args.data_dir / "artifacts").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"hyp mlflow: cannot create --data-dir {args.data_dir}: {exc.strerror}", file=sys.stderr)
        return 2
    env = dict(os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD="false")
    sys.stdout.flush()
    os.execve(sys.executable, cmd, env)
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
