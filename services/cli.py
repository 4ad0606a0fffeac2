"""The one `hyp` command line: every service and tool is a sub-command.

Sub-commands are registered by dotted path and imported only when chosen, so
`hyp --help` stays fast and nothing heavy (TensorFlow, Beam, MLflow) loads at
import time. Each target module exposes ``main(argv: list[str] | None) -> int``
and builds its own argparse parser (with ``--help``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Sequence

# name -> (module with main(argv), one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "pubsub": ("services.pubsub.__main__", "run the Pub/Sub emulator (gRPC + REST)"),
    "loadgen": ("loadgen.__main__", "generate purchase events with labelled anomalies"),
    "train": ("models.train_cli", "train, evaluate and register anomaly models"),
    "models": ("models.registry_cli", "list, promote and roll back registered model versions"),
    "mlflow": ("models.mlflow_server", "run a local MLflow tracking server with the model registry"),
    "detector": ("services.detector.__main__", "run the Beam streaming detector"),
    "endpoint": ("services.endpoint.__main__", "serve the champion model on a Vertex-AI-compatible endpoint"),
    "processor": ("services.processor.__main__", "run the Cloud-Run-style inference processing service"),
    "orchestrator": ("services.orchestrator.__main__", "retrain and promote on new data or drift"),
    "console": ("services.console.__main__", "serve the web console"),
    "sql": ("services.warehouse.sql_cli", "run DuckDB SQL over the warehouse tables"),
    "warehouse": ("services.warehouse.admin_cli", "warehouse housekeeping (compaction, table stats)"),
    "up": ("services.stack.up", "start the whole stack as local processes"),
    "down": ("services.stack.down", "stop a stack started with `hyp up --detach`"),
    "status": ("services.stack.status", "show the health of a running stack"),
    "logs": ("services.stack.logs", "show the log of one service of a `hyp up` stack"),
    "images": ("services.stack.images", "build, save and load the container images"),
    "lab": ("services.labs.__main__", "workshop labs: start, check, solve, reset"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: hyp COMMAND [options]   (hyp COMMAND --help for a command's options)", "", "commands:"]
    for name, (module, text) in COMMANDS.items():
        if _available(module):
            lines.append(f"  {name.ljust(width)}  {text}")
    return "\n".join(lines)


def _available(module: str) -> bool:
    return importlib.util.find_spec(module.rsplit(".", 1)[0]) is not None if "." in module else True


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS or not _available(COMMANDS[name][0]):
        print(f"hyp: unknown command {name!r}; run `hyp --help` for the list", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
