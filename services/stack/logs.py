"""`hyp logs SERVICE`: print (or follow with -f) the log of one service of a `hyp up` stack."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from services.stack import definition as d
from services.stack import processes as p
from services.stack.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hyp logs", description=__doc__.splitlines()[0])
    ap.add_argument("service", help=f"one of: {', '.join(d.SERVICE_NAMES)}")
    ap.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until Ctrl-C")
    ap.add_argument("--tail", "-n", type=int, help="only the last N lines")
    ap.add_argument("--home", type=Path, help="data and run directory of the local stack (env HYP_HOME, .hyp)")
    args = ap.parse_args(argv)
    if args.service not in d.SERVICE_NAMES:
        print(f"hyp logs: unknown service {args.service!r} (services: {', '.join(d.SERVICE_NAMES)})", file=sys.stderr)
        return 2
    if args.tail is not None and args.tail < 0:
        print("hyp logs: --tail must be >= 0", file=sys.stderr)
        return 2
    path = p.log_file((args.home or get_settings().home).resolve() / "run", args.service)
    if not path.exists():
        print(f"hyp logs: no log for {args.service} at {path} (has `hyp up` run here?)", file=sys.stderr)
        return 1
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        lines = fh.readlines()
        if args.tail is not None:
            lines = lines[-args.tail :] if args.tail else []
        sys.stdout.writelines(lines)
        sys.stdout.flush()
        if not args.follow:
            return 0
        try:
            while True:
                line = fh.readline()
                if line:
                    sys.stdout.write(line)
                    sys.stdout.flush()
                else:
                    time.sleep(0.25)
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    raise SystemExit(main())
