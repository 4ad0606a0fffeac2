"""`hyp models list|history|promote|rollback|ensure-champion`: the registered versions and @champion."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from models.settings import get_settings


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def main(argv: Sequence[str] | None = None) -> int:
    s = get_settings()
    parser = argparse.ArgumentParser(prog="hyp models", description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=s.mlflow_tracking_uri, help="MLflow server (MLFLOW_TRACKING_URI)")
    parser.add_argument("--name", default=s.model_name, help="registered model (HYP_MODEL_NAME)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="versions with kind, metrics, threshold and aliases")
    sub.add_parser("history", help="every @champion move, oldest first")
    pr = sub.add_parser("promote", help="move @champion to VERSION (an operator's decision, recorded)")
    pr.add_argument("version")
    pr.add_argument("--reason", default="manual promotion")
    rb = sub.add_parser("rollback", help="move @champion back to the previous champion")
    rb.add_argument("--reason", default="manual rollback")
    ec = sub.add_parser("ensure-champion", help="if there is no @champion, train and promote one (idempotent)")
    ec.add_argument("--model", default=s.default_model)
    args = parser.parse_args(argv)
    # a quick command: fail in seconds, not minutes, when the server is down (MLflow's default is 7 retries)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")

    if args.command == "ensure-champion":
        from models import train_cli

        return train_cli.main(["--bootstrap", "--model", args.model, "--tracking-uri", args.tracking_uri])

    from mlflow.exceptions import MlflowException

    from models import registry

    c = registry.client(args.tracking_uri)
    try:
        if args.command == "list":
            champion = registry.champion_version(c, args.name)
            versions = sorted(c.search_model_versions(f"name='{args.name}'"), key=lambda v: int(v.version))
            if not versions:
                print(f"{args.name}: no versions yet (hyp train --promote, or hyp models ensure-champion)")
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
            events = registry.history(c, args.name)
            if not events:
                print(f"{args.name}: no @champion moves yet")
            for e in events:
                print(f"{e.seq:>4}  {_when(e.ts)}  {e.action:<9} v{e.previous or '-'} -> v{e.version}  {e.reason}")
        elif args.command == "promote":
            e = registry.set_champion(c, args.version, action="manual", reason=args.reason, name=args.name)
            print(f"{args.name}@champion: v{e.previous or '-'} -> v{e.version}")
        elif args.command == "rollback":
            e = registry.rollback(c, args.name, reason=args.reason)
            print(f"{args.name}@champion rolled back: v{e.previous} -> v{e.version}")
    except registry.RegistryError as exc:
        print(f"hyp models: {exc}", file=sys.stderr)
        return 2
    except MlflowException as exc:
        print(f"hyp models: MLflow at {args.tracking_uri}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
