"""`hyp orchestrator`: serve the API and run the sensors; `hyp orchestrator runs` prints the history."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError


def _table(runs: list[dict]) -> str:
    header = f"{'id':12}  {'status':11}  {'trigger':9}  {'decision':8}  {'started_at':23}  {'secs':>6}  reason"
    lines = [header]
    for r in runs:
        secs = sum(s.get("seconds") or 0 for s in r.get("steps", []))
        trigger = (r.get("trigger") or {}).get("kind", "?")
        lines.append(
            f"{r['id']:12}  {r['status']:11}  {trigger:9}  {r.get('decision') or '-':8}  {r['started_at'][:23]:23}"
            f"  {secs:6.1f}  {r.get('reason') or ''}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="hyp orchestrator",
        description="Retrain on new data, drift, a schedule or demand; promote only a better model; "
        "confirm the detector and endpoint follow. Settings: HYP_ORCH_* (docs/orchestrator.md).",
    )
    parser.add_argument("--host", help="listen address (env HYP_ORCH_HOST)")
    parser.add_argument("--port", type=int, help="listen port (env HYP_ORCH_PORT, default 8090)")
    parser.add_argument("--data-dir", type=Path, help="run history folder (env HYP_ORCH_DATA_DIR)")
    parser.add_argument("--warehouse-dir", type=Path, help="warehouse folder (env HYP_WAREHOUSE_DIR)")
    parser.add_argument("--no-sensors", action="store_true", help="serve the API only; runs start by POST /runs")
    sub = parser.add_subparsers(dest="command")
    runs = sub.add_parser("runs", help="print the run history")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--json", action="store_true", help="one JSON record per line")
    runs.add_argument("--id", help="print one run in full (JSON)")
    args = parser.parse_args(argv)

    from services.orchestrator.settings import OrchestratorSettings, get_settings

    try:
        overrides = {
            k: v
            for k, v in {
                "host": args.host,
                "port": args.port,
                "data_dir": args.data_dir,
                "warehouse_dir": args.warehouse_dir,
            }.items()
            if v is not None
        }
        settings = get_settings().model_copy(update=overrides) if overrides else get_settings()
        OrchestratorSettings.model_validate(settings.model_dump())
    except ValidationError as exc:
        err = exc.errors()[0]
        print(f"hyp orchestrator: {'.'.join(map(str, err['loc']))}: {err['msg']}", file=sys.stderr)
        return 2

    from services.orchestrator.history import RunHistory

    if args.command == "runs":
        if not settings.history_path.exists():
            print(f"hyp orchestrator: no run history at {settings.history_path}", file=sys.stderr)
            return 1
        history = RunHistory(settings.history_path)
        if args.id:
            record = history.get(args.id)
            if record is None:
                print(f"hyp orchestrator: no run {args.id!r}", file=sys.stderr)
                return 1
            print(json.dumps(record, indent=2, default=str))
            return 0
        records = history.list(limit=args.limit)
        print("\n".join(json.dumps(r, default=str) for r in records) if args.json else _table(records))
        return 0

    from services.common.logs import setup_logging
    from services.common.serve import serve
    from services.orchestrator.api import create_app
    from services.orchestrator.modelops import ModelsPackageOps
    from services.orchestrator.runner import Orchestrator

    setup_logging(settings.log_level)
    orchestrator = Orchestrator(settings, ModelsPackageOps(settings))
    app = create_app(orchestrator, run_sensors=not args.no_sensors)
    serve(app, settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
