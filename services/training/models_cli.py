"""`hyp models list|history|promote|rollback|ensure-champion`: the registered versions and @champion."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

from models.settings import ModelSettings
from services.common.config import Command, ConfigError


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def command() -> Command[ModelSettings]:
    cli = Command("models", ModelSettings, description=(__doc__ or "").splitlines()[0])
    cli.flag("mlflow_tracking_uri", "--tracking-uri", help="MLflow server")
    cli.flag("model_name", "--name", help="registered model")
    sub = cli.parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="versions with kind, metrics, threshold and aliases")
    sub.add_parser("history", help="every @champion move, oldest first")
    pr = sub.add_parser("promote", help="move @champion to VERSION (an operator's decision, recorded)")
    pr.add_argument("version")
    pr.add_argument("--reason", default="manual promotion")
    rb = sub.add_parser("rollback", help="move @champion back to the previous champion")
    rb.add_argument("--reason", default="manual rollback")
    ec = sub.add_parser("ensure-champion", help="if there is no @champion, train and promote one (idempotent)")
    cli.flag("default_model", "--model", help="model kind to train", parser=ec)
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    cli = command()
    try:
        args, s = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)
    # a quick command: fail in seconds, not minutes, when the server is down (MLflow's default is 7 retries)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")

    if args.command == "ensure-champion":
        from services.training import train_cli

        given = ["--model", s.default_model, "--tracking-uri", s.mlflow_tracking_uri]
        return train_cli.main(["--bootstrap", *given])

    from mlflow.exceptions import MlflowException

    from models import registry

    c = registry.client(s.mlflow_tracking_uri)
    try:
        if args.command == "list":
            champion = registry.champion_version(c, s.model_name)
            versions = sorted(c.search_model_versions(f"name='{s.model_name}'"), key=lambda v: int(v.version))
            if not versions:
                print(f"{s.model_name}: no versions yet (hyp train --promote, or hyp models ensure-champion)")
                return 0
            head = ("version", "kind", "f1", "prec", "recall", "threshold", "created")
            print("{:>7}  {:<12} {:>6} {:>6} {:>6} {:>10}  {:<19}  aliases".format(*head))
            for v in versions:
                t = v.tags
                aliases = ",".join(getattr(v, "aliases", []) or []) or ("champion" if v.version == champion else "")
                thr = t.get("threshold", "")
                thr = f"{float(thr):.4g}" if thr else "-"
                print(
                    f"{v.version:>7}  {t.get('model_kind', '?'):<12} {t.get('metric.f1', '-')[:6]:>6} "
                    f"{t.get('metric.precision', '-')[:6]:>6} {t.get('metric.recall', '-')[:6]:>6} {thr:>10}  "
                    f"{_when(v.creation_timestamp / 1000):<19}  {aliases}"
                )
        elif args.command == "history":
            events = registry.history(c, s.model_name)
            if not events:
                print(f"{s.model_name}: no @champion moves yet")
            for e in events:
                print(f"{e.seq:>4}  {_when(e.ts)}  {e.action:<9} v{e.previous or '-'} -> v{e.version}  {e.reason}")
        elif args.command == "promote":
            e = registry.set_champion(c, args.version, action="manual", reason=args.reason, name=s.model_name)
            print(f"{s.model_name}@champion: v{e.previous or '-'} -> v{e.version}")
        elif args.command == "rollback":
            e = registry.rollback(c, s.model_name, reason=args.reason)
            print(f"{s.model_name}@champion rolled back: v{e.previous} -> v{e.version}")
    except registry.RegistryError as exc:
        return cli.fail(str(exc))
    except MlflowException as exc:
        print(f"hyp models: MLflow at {s.mlflow_tracking_uri}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
