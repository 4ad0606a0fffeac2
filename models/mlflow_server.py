"""`hyp mlflow`: a local MLflow tracking server with the model registry (Vertex AI Model Registry's stand-in).

sqlite backend and served artifacts under one data folder (default .hyp/mlflow), or a
PostgreSQL backend via HYP_MLFLOW_BACKEND_STORE_URI. MLflow's job execution is switched off and
nothing is downloaded.

One process: ``mlflow server``'s own command line runs in this process (its option checks, store
initialisation and migrations), and the uvicorn server it would start as a child runs here too, on the
MLflow modules already imported. Stock ``mlflow server`` keeps a parent process of about 250 MB alive
beside its uvicorn child and imports MLflow twice; this saves both. SIGTERM reaches uvicorn directly.
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
    os.environ.update(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD="false")
    return serve_in_process(cmd[4:])


def serve_in_process(server_args: list[str]) -> int:
    """Run ``mlflow server <server_args>`` with its uvicorn server in this process instead of a child."""
    import mlflow.server
    from mlflow.cli import cli

    # what `mlflow server` starts its web server with (a child process); absent in another MLflow: stock way
    spawn = getattr(mlflow.server, "_exec_cmd", None)

    def run_here(cmd: list[str], *, extra_env: dict[str, str] | None = None, **kwargs: object) -> object:
        if list(cmd[1:3]) != ["-m", "uvicorn"] and spawn is not None:  # gunicorn/waitress: MLflow's own way
            return spawn(cmd, extra_env=extra_env, **kwargs)
        import uvicorn.main

        os.environ.update(extra_env or {})
        sys.stdout.flush()
        uvicorn.main.main(args=list(cmd[3:]), prog_name="uvicorn", standalone_mode=True)
        return None  # not reached: standalone_mode exits

    if spawn is not None:
        mlflow.server._exec_cmd = run_here
    try:
        cli.main(args=["server", *server_args], prog_name="mlflow", standalone_mode=True)
    except SystemExit as exc:  # click ends with SystemExit; hand its code back to `hyp`
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
