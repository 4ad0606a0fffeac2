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

import os
import sys
from collections.abc import Sequence
from pathlib import Path

from models.settings import ModelSettings
from services.common.config import Command, ConfigError


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


def command() -> Command[ModelSettings]:
    cli = Command("mlflow", ModelSettings, description=(__doc__ or "").splitlines()[0])
    cli.flag("mlflow_host", "--host", help="bind address")
    cli.flag("mlflow_port", "--port", help="port")
    cli.flag("mlflow_dir", "--data-dir", help="sqlite + artifacts folder")
    cli.flag("mlflow_backend_store_uri", "--backend-store-uri", help="e.g. postgresql://... instead of sqlite")
    cli.flag("mlflow_allowed_hosts", "--allowed-hosts", help="Host headers to accept, e.g. 'mlflow:5000,localhost:*'")
    cli.flag("mlflow_workers", "--workers", help="server workers")
    cli.parser.add_argument("--dry-run", action="store_true", help="print the mlflow command and exit")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    cli = command()
    try:
        args, s = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)
    cmd = server_command(
        s.mlflow_dir,
        s.mlflow_host,
        s.mlflow_port,
        backend_store_uri=s.mlflow_backend_store_uri,
        allowed_hosts=s.mlflow_allowed_hosts,
        workers=s.mlflow_workers,
    )
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    try:
        (s.mlflow_dir / "artifacts").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return cli.fail(f"--data-dir: cannot create {s.mlflow_dir}: {exc.strerror}")
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
