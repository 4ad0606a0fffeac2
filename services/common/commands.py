"""The table of `hyp` sub-commands, shared by the CLI (services/cli.py) and the stack launcher.

Targets are dotted module paths (strings), so importing this module imports none of them: the CLI
imports a target only when it is chosen, and ``hyp up`` starts it as ``python -m services.cli NAME``.
Each target module exposes ``main(argv: list[str] | None) -> int`` with its own ``--help``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util

# name -> (module with main(argv), one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "pubsub": ("services.pubsub.__main__", "run the Pub/Sub emulator (gRPC + REST)"),
    "loadgen": ("loadgen.__main__", "generate purchase events with labelled anomalies"),
    "train": ("services.training.train_cli", "train, evaluate and register anomaly models"),
    "models": ("services.training.models_cli", "list, promote and roll back registered model versions"),
    "mlflow": ("services.mlflow.server", "run a local MLflow tracking server with the model registry"),
    "detector": ("services.detector.__main__", "run the Beam streaming detector"),
    "endpoint": ("services.endpoint.__main__", "serve the champion model on a Vertex-AI-compatible endpoint"),
    "processor": ("services.processor.__main__", "run the Cloud-Run-style inference processing service"),
    "orchestrator": ("services.orchestrator.__main__", "retrain and promote on new data or drift"),
    "console": ("services.console.__main__", "serve the web console"),
    "storage": ("services.storage.__main__", "serve Cloud Storage's JSON API on a local folder"),
    "bigquery": ("services.bigquery.__main__", "serve BigQuery's REST API over the warehouse (port 9050)"),
    "gcloud": ("services.gcloud.__main__", "gcloud's emulator command line (PubSubContainer's) as hyp pubsub"),
    "sql": ("services.bigquery.sql_cli", "run a BigQuery SQL query over the warehouse tables"),
    "warehouse": ("services.warehouse.admin_cli", "warehouse housekeeping (compaction, table stats)"),
    "up": ("services.stack.up", "start the whole stack as local processes"),
    "down": ("services.stack.down", "stop a stack started with `hyp up --detach`"),
    "status": ("services.stack.status", "show the health of a running stack"),
    "logs": ("services.stack.logs", "show the log of one service of a `hyp up` stack"),
    "images": ("services.stack.images", "build, save and load the container images"),
    "lab": ("services.labs.__main__", "workshop labs: start, check, solve, reset"),
}


def available(name: str) -> bool:
    """Whether sub-command ``name`` exists and its module is in this checkout.

    Looks for the module's file without importing its package (``hyp --help`` stays fast: no pyarrow,
    no Beam), so a package that lacks the module (a part not landed yet) answers False.
    """
    entry = COMMANDS.get(name)
    if entry is None:
        return False
    parent, _, leaf = entry[0].rpartition(".")
    try:
        if not parent:
            return importlib.util.find_spec(leaf) is not None
        package = importlib.util.find_spec(parent)
    except (ImportError, ValueError):
        return False
    if package is None or package.submodule_search_locations is None:
        return False
    return importlib.machinery.PathFinder.find_spec(leaf, list(package.submodule_search_locations)) is not None
