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

__all__ = ["COMMANDS", "main"]


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
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
