"""The one `hyp` command line: every service and tool is a sub-command.

Sub-commands are registered by dotted path (services/common/commands.py) and imported only when
chosen, so `hyp --help` stays fast and nothing heavy (TensorFlow, Beam, MLflow) loads at import
time. Each target module exposes ``main(argv: list[str] | None) -> int`` and builds its own
argparse parser (with ``--help``).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from services.common.commands import COMMANDS, available
from services.common.without_pandas import keep_pandas_out

__all__ = ["COMMANDS", "PANDAS_FREE", "main"]

# Commands whose process never builds a pandas DataFrame: pyarrow would load pandas anyway on its first
# conversion (45 MiB resident, 0.6 s of CPU each; services/common/without_pandas.py), so they refuse it.
PANDAS_FREE = frozenset({"loadgen", "processor"})


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: hyp COMMAND [options]   (hyp COMMAND --help for a command's options)", "", "commands:"]
    for name, (_module, text) in COMMANDS.items():
        if available(name):
            lines.append(f"  {name.ljust(width)}  {text}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(_usage())
        return 0
    name, rest = args[0], args[1:]
    if not available(name):
        print(f"hyp: unknown command {name!r}; run `hyp --help` for the list", file=sys.stderr)
        return 2
    if argv is None and name in PANDAS_FREE:  # this process is the command (a caller's argv: a library call)
        keep_pandas_out()
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
