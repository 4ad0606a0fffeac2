"""`hyp lab start|check|solve|reset|list|env`: the Activate chapter's challenges, run and checked offline."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.common.config import Command
    from services.labs.settings import LabSettings

VERBS = ("start", "check", "solve")


def command() -> Command[LabSettings]:
    """`hyp lab`'s command line; its settings come from the environment only (HYP_LAB_*, the services' names)."""
    from services.common.config import Command
    from services.labs.settings import LabSettings

    cli = Command(
        "lab",
        LabSettings,
        description="Workshop labs: `start N` prepares challenge N (data, services, templates in .hyp/lab/work), "
        "`check N` says whether your work does what it asks (exit 0/1), `solve N` applies the reference solution, "
        "`reset` stops what the labs started and clears their state.",
    )
    sub = cli.parser.add_subparsers(dest="verb", required=True)
    for verb, text in (
        ("start", "put the stack where challenge N begins"),
        ("check", "check your work on challenge N (exit 0 when done, 1 when not yet)"),
        ("solve", "apply the reference solution of challenge N"),
    ):
        sp = sub.add_parser(verb, help=text)
        sp.add_argument("number", help="challenge number, 0 to 7")
    r = sub.add_parser("reset", help="stop the services the labs started and delete the lab state")
    r.add_argument("number", nargs="?", help="ignored (there is one lab state); accepted for `hyp lab reset N`")
    r.add_argument("--keep-warehouse", action="store_true", help="(default) the warehouse is never deleted")
    sub.add_parser("list", help="the challenges and the lab services running now")
    sub.add_parser("env", help='print export lines for your shell: eval "$(hyp lab env)"')
    return cli


def challenge_number(text: str) -> int:
    from services.labs.challenges import CHALLENGES

    numbers = [c.number for c in CHALLENGES]
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n not in numbers:
        raise ValueError(f"challenge: {text!r} is not a challenge number ({numbers[0]} to {numbers[-1]})")
    return n


def main(argv: Sequence[str] | None = None) -> int:
    from services.common.config import ConfigError

    cli = command()
    try:
        args, s = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)
    from services.labs.challenges import CHALLENGES, NotYet, get
    from services.labs.runtime import LabError, managed, stop_all

    if args.verb == "list":
        for c in CHALLENGES:
            print(f"{c.number}  {c.title:<50} labs/{c.folder}/README.md")
        running = managed(s)
        print(f"\nlab services running: {', '.join(running) if running else 'none'}")
        return 0
    if args.verb == "env":
        print(f"export MLFLOW_TRACKING_URI={s.mlflow_tracking_uri}")
        print(f"export PUBSUB_EMULATOR_HOST={s.pubsub_emulator_host or ''}")
        print(f"export BIGQUERY_EMULATOR_HOST={s.bigquery_url}")
        print(f"export STORAGE_EMULATOR_HOST={s.storage_url}")
        print(f"export HYP_PROJECT={s.project}")
        print(f"export HYP_LOCATION={s.location}")
        print(f"export HYP_LAB_STAGING_BUCKET={s.staging_bucket}")
        print(f"export HYP_WAREHOUSE_DIR={s.warehouse_dir}")
        print(f"export HYP_ENDPOINT_URL={s.endpoint_url}")
        return 0
    if args.verb == "reset":
        stopped = stop_all(s)
        if s.lab_dir.exists():
            shutil.rmtree(s.lab_dir)
        print(f"hyp lab: reset ({stopped} lab service(s) stopped, {s.lab_dir} cleared; warehouse kept)")
        return 0

    try:
        number = challenge_number(args.number)
    except ValueError as exc:
        print(f"hyp lab: {exc}", file=sys.stderr)
        return 2
    challenge = get(number)
    code = challenge.code()
    began = time.monotonic()
    print(f"challenge {number}: {challenge.title}  (labs/{challenge.folder}/README.md)", flush=True)
    try:
        if args.verb == "check":
            message = code.check(s)
            print(f"PASS challenge {number}: {message}")
            return 0
        getattr(code, args.verb)(s)
    except NotYet as exc:
        print(f"NOT YET challenge {number}: {exc}")
        return 1
    except LabError as exc:
        print(f"hyp lab {args.verb} {number}: {exc}", file=sys.stderr)
        return 1
    took = time.monotonic() - began
    if args.verb == "start":
        print(f"ready in {took:.0f} s; your files are in {s.work_dir}; when done: hyp lab check {number}")
        print('(in a new terminal, eval "$(hyp lab env)" points hyp train, hyp sql and hyp models at the lab)')
    else:
        print(f"reference solution applied in {took:.0f} s; now: hyp lab check {number}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
