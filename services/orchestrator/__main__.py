"""`hyp orchestrator`: serve the API and run the sensors; `hyp orchestrator runs` prints the history."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.common.config import Command
    from services.orchestrator.settings import OrchestratorSettings


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


def command() -> Command[OrchestratorSettings]:
    from services.common.config import Command
    from services.orchestrator.settings import OrchestratorSettings

    cli = Command(
        "orchestrator",
        OrchestratorSettings,
        description="Retrain on new data, drift, a schedule or demand; promote only a better model; "
        "confirm the detector and endpoint follow. Settings: HYP_ORCH_* (docs/orchestrator.md).",
    )
    cli.flag("host", help="listen address")
    cli.flag("port", help="listen port")
    cli.flag("data_dir", help="run history folder")
    cli.flag("warehouse_dir", help="warehouse folder")
    parser = cli.parser
    parser.add_argument("--no-sensors", action="store_true", help="serve the API only; runs start by POST /runs")
    sub = parser.add_subparsers(dest="command")
    runs = sub.add_parser("runs", help="print the run history")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--json", action="store_true", help="one JSON record per line")
    runs.add_argument("--id", help="print one run in full (JSON)")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    from services.common.config import ConfigError

    cli = command()
    try:
        args, settings = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)

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
    from services.common.serve import serve_command
    from services.orchestrator.api import create_app
    from services.orchestrator.modelops import ModelsPackageOps
    from services.orchestrator.runner import Orchestrator

    setup_logging(settings.log_level)
    orchestrator = Orchestrator(settings, ModelsPackageOps(settings))
    app = create_app(orchestrator, run_sensors=not args.no_sensors)
    return serve_command(cli.name, app, settings)


if __name__ == "__main__":
    raise SystemExit(main())
