"""goccy/bigquery-emulator's command line, served by ``hyp bigquery``: the entry point of the ``bigquery`` image.

testcontainers-java's ``BigQueryEmulatorContainer`` (and -node's, -dotnet's) start goccy's image with
``--project test-project`` as the command, expose 9050 (REST) and 9060 (gRPC, the Storage Read API) and
wait until both ports listen. This module takes goccy's flags (its README's ``bigquery-emulator -h``):

``--project`` (required, as goccy's), ``--dataset`` (created at start; repeatable), ``--port`` (9050),
``--grpc-port`` (9060), ``--host`` (0.0.0.0, as goccy listens), ``--log-level`` (debug/info/warn/error),
``--log-format`` (console/json: accepted, hyp keeps its own format), ``--database`` (goccy: a SQLite file;
here a folder that keeps the tables across restarts; without it a temporary folder, as goccy's in-memory
default), ``-v``/``--version``. ``--data-from-yaml`` is refused with a message (not mapped yet).

The gRPC port listens with no service registered, so port waits pass and a BigQuery Storage client gets
``UNIMPLEMENTED`` (use ``create_bqstorage_client=False``, as goccy's README also advises). Once serving it
prints goccy's start-up lines (``[bigquery-emulator] REST server listening at HOST:PORT``).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

NAME = "bigquery-emulator"
VERSION = "0.1.0 (hyp-local; goccy/bigquery-emulator's command line)"
LOG_LEVELS = {"debug": "DEBUG", "info": "INFO", "warn": "WARNING", "warning": "WARNING", "error": "ERROR"}
_VALUED = frozenset(
    {"--project", "--dataset", "--port", "--grpc-port", "--host", "--log-level", "--log-format", "--database"}
)
READY_TIMEOUT_S = 60.0


class UsageError(ValueError):
    """A command line goccy's emulator would not take, or one this shim does not map."""


@dataclass(frozen=True)
class EmulatorArgs:
    project: str
    datasets: tuple[str, ...] = ()
    port: int = 9050
    grpc_port: int = 9060
    host: str = "0.0.0.0"
    log_level: str = "ERROR"  # goccy's default
    database: str | None = None

    def hyp_args(self, warehouse_dir: str) -> list[str]:
        """``hyp bigquery``'s arguments for this."""
        return ["--host", self.host, "--port", str(self.port), "--warehouse-dir", warehouse_dir]


def _port(name: str, value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 65535:
        raise UsageError(f"{name}: expected a port number, got {value!r}")
    return int(value)


def parse(argv: Sequence[str]) -> EmulatorArgs | None:
    """goccy's flags (``--flag=value`` or ``--flag value``) as :class:`EmulatorArgs`; None for ``--version``."""
    flags: dict[str, list[str]] = {}
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if item in {"-v", "--version"}:
            return None
        name, eq, value = item.partition("=")
        if name == "--data-from-yaml":
            raise UsageError("--data-from-yaml is not mapped yet: create datasets and tables with the client")
        if name not in _VALUED:
            raise UsageError(f"unknown flag {item!r} (goccy's flags: {', '.join(sorted(_VALUED))}, --version)")
        if not eq:
            if i >= len(items):
                raise UsageError(f"{name} needs a value")
            value = items[i]
            i += 1
        flags.setdefault(name, []).append(value)
    one = {k: v[-1] for k, v in flags.items()}
    if not one.get("--project"):
        raise UsageError("--project is required (goccy's emulator refuses to start without it)")
    level = one.get("--log-level", "error").lower()
    if level not in LOG_LEVELS:
        raise UsageError(f"--log-level: expected debug, info, warn or error, got {level!r}")
    if one.get("--log-format", "console") not in {"console", "json"}:
        raise UsageError(f"--log-format: expected console or json, got {one['--log-format']!r}")
    datasets = tuple(d for value in flags.get("--dataset", []) for d in value.split(",") if d)
    return EmulatorArgs(
        project=one["--project"],
        datasets=datasets,
        port=_port("--port", one.get("--port", "9050")),
        grpc_port=_port("--grpc-port", one.get("--grpc-port", "9060")),
        host=one.get("--host", "0.0.0.0"),
        log_level=LOG_LEVELS[level],
        database=one.get("--database"),
    )


def create_datasets(warehouse_dir: str, project: str, datasets: Sequence[str]) -> None:
    """The ``--dataset`` datasets, made before serving (one already there, from a ``--database``, is kept)."""
    from services.bigquery.catalog import Catalog
    from services.bigquery.errors import BigQueryError

    catalog = Catalog(warehouse_dir)
    for dataset in datasets:
        try:
            catalog.create_dataset(project, {"datasetReference": {"projectId": project, "datasetId": dataset}})
        except BigQueryError as exc:
            if exc.code != 409:
                raise UsageError(f"--dataset {dataset!r}: {exc}") from exc


def _storage_api_placeholder(host: str, port: int) -> object:
    """A gRPC server with no service: the port listens (what port waits check) and every call is UNIMPLEMENTED."""
    from concurrent import futures

    import grpc

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    return server


def _announce_when_serving(args: EmulatorArgs) -> None:
    """Print goccy's start-up lines once the REST side answers (log waits written for goccy's image)."""
    from services.common.processes import wait_for

    url = f"http://127.0.0.1:{args.port}/health"

    def answers() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        wait_for(answers, READY_TIMEOUT_S, "hyp bigquery", interval=0.05)
    except TimeoutError:
        return
    print(f"[{NAME}] REST server listening at {args.host}:{args.port}", flush=True)
    print(f"[{NAME}] gRPC server listening at {args.host}:{args.grpc_port}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    try:
        args = parse(argv)
        if args is None:
            print(f"{NAME} {VERSION}")
            return 0
        warehouse = args.database or tempfile.mkdtemp(prefix="hyp-bigquery-")
        if Path(warehouse).is_file():
            raise UsageError(f"--database {warehouse}: a file; hyp keeps the tables in a folder")
        Path(warehouse).mkdir(parents=True, exist_ok=True)
        create_datasets(warehouse, args.project, args.datasets)
    except UsageError as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return 2
    try:
        grpc_server = _storage_api_placeholder(args.host, args.grpc_port)
    except (OSError, RuntimeError) as exc:
        print(f"{NAME}: cannot listen on {args.host}:{args.grpc_port}: {exc}", file=sys.stderr)
        return 1
    os.environ["HYP_LOG_LEVEL"] = args.log_level
    os.environ.setdefault("HYP_PROJECT", args.project)
    threading.Thread(target=_announce_when_serving, args=(args,), daemon=True).start()
    from services.bigquery.__main__ import main as bigquery_main

    try:
        return bigquery_main(args.hyp_args(warehouse))
    finally:
        grpc_server.stop(None)  # type: ignore[attr-defined]


if __name__ == "__main__":
    raise SystemExit(main())
