"""`hyp down`: stop a stack started with `hyp up --detach` (SIGTERM, then SIGKILL after a bound)."""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from services.stack import processes as p
from services.stack.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="hyp down", description=__doc__.splitlines()[0])
    ap.add_argument("--home", type=Path, help="data and run directory of the local stack (env HYP_HOME, .hyp)")
    ap.add_argument("--timeout", type=float, help="seconds to wait after SIGTERM before SIGKILL (default 15)")
    ap.add_argument("--volumes", "-v", action="store_true", help="also delete the stack's data (warehouse, MLflow)")
    args = ap.parse_args(argv)
    settings = get_settings()
    home = (args.home or settings.home).resolve()
    timeout = settings.stop_timeout_s if args.timeout is None else args.timeout
    if timeout <= 0:
        print("hyp down: --timeout must be > 0", file=sys.stderr)
        return 2
    running = p.stop_recorded(home / "run", timeout)
    print("nothing was running" if running == 0 else f"stopped {running} service(s)")
    if args.volumes and home.exists():
        shutil.rmtree(home)
        print(f"deleted {home}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
