"""`hyp logs SERVICE`: print (or follow with -f) the log of one service of a `hyp up` stack.

Shows the service's structured log (``<name>.log`` and its rotated files) and its raw output
(``<name>.out``: tracebacks, third-party prints) merged in time order where the times are known.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TextIO

from services.common.config import Command, ConfigError
from services.stack import definition as d
from services.stack import detach
from services.stack import processes as p
from services.stack.settings import StackSettings

FOLLOW_EVERY_S = 0.5
LOGGED = (*d.SERVICE_NAMES, detach.KEEPER)  # the services and `hyp up --detach`'s keeper


class _Follower:
    """New lines of one file as they are written, across rotation (a new inode) and truncation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh: TextIO | None = None
        self.inode: int | None = None
        self._open(at_end=True)

    def _open(self, at_end: bool) -> None:
        try:
            fh = self.path.open("r", encoding="utf-8", errors="replace")
        except OSError:
            return
        if self.fh is not None:
            self.fh.close()
        self.fh, self.inode = fh, os.fstat(fh.fileno()).st_ino
        if at_end:
            fh.seek(0, os.SEEK_END)

    def read(self) -> str:
        try:
            st = self.path.stat()
        except OSError:
            st = None
        if self.fh is None or (st is not None and st.st_ino != self.inode):
            rest = self.fh.read() if self.fh is not None else ""  # what the old file got before it moved
            self._open(at_end=False)
            return rest + (self.fh.read() if self.fh is not None else "")
        if st is not None and st.st_size < self.fh.tell():  # truncated
            self.fh.seek(0)
        return self.fh.read()


def command() -> Command[StackSettings]:
    cli = Command("logs", StackSettings, description=__doc__.splitlines()[0])
    ap = cli.parser
    names = ", ".join(LOGGED)
    ap.add_argument("service", help=f"one of: {names} (up: the detached keeper's notes; detector-N: a worker)")
    ap.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until Ctrl-C")
    ap.add_argument("--tail", "-n", type=int, help="only the last N lines")
    cli.flag("home", help="data and run directory of the local stack")
    return cli


def main(argv: list[str] | None = None) -> int:
    cli = command()
    try:
        args, settings = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)
    if args.service not in LOGGED and not d.is_detector(args.service):  # detector-0 ...: --detector-workers
        return cli.fail(f"unknown service {args.service!r} (services: {', '.join(LOGGED)})")
    if args.tail is not None and args.tail < 0:
        return cli.fail("--tail: must be >= 0")
    run_dir = settings.home.resolve() / "run"
    paths = [p.log_file(run_dir, args.service), p.out_file(run_dir, args.service)]
    if not any(path.exists() for path in paths):
        print(f"hyp logs: no log for {args.service} in {run_dir} (has `hyp up` run here?)", file=sys.stderr)
        return 1
    followers = [_Follower(path) for path in paths] if args.follow else []  # from here on: nothing missed
    lines = p.merged_lines(run_dir, args.service)
    if args.tail is not None:
        lines = lines[-args.tail :] if args.tail else []
    sys.stdout.writelines(lines)
    sys.stdout.flush()
    if not args.follow:
        return 0
    try:
        _follow(followers, sys.stdout)
    except KeyboardInterrupt:
        return 0
    return 0


def _follow(followers: list[_Follower], out: TextIO) -> None:
    pending = ["" for _ in followers]
    while True:
        for i, f in enumerate(followers):
            complete, _, pending[i] = (pending[i] + f.read()).rpartition("\n")
            if complete:
                out.write(complete + "\n")
                out.flush()
        time.sleep(FOLLOW_EVERY_S)


if __name__ == "__main__":
    raise SystemExit(main())
