"""Print the requirements of hyp-local's base dependencies plus some pyproject extras, one per line.

Used by compose/Dockerfile before the sources are copied, so the dependency layer is cached until
pyproject.toml or requirements.lock change: ``python requirements_for.py "serve,models"``.
Standard library only (tomllib).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

SELF = re.compile(r"^hyp-local\[(?P<extras>[^\]]+)\]$")


def requirements(pyproject: dict, extras: list[str]) -> list[str]:
    project = pyproject["project"]
    optional = project.get("optional-dependencies", {})
    out: list[str] = list(project.get("dependencies", []))
    seen: set[str] = set()
    todo = list(extras)
    while todo:
        extra = todo.pop(0)
        if extra in seen:
            continue
        if extra not in optional:
            raise SystemExit(f"requirements_for: unknown extra {extra!r} (known: {', '.join(optional)})")
        seen.add(extra)
        for req in optional[extra]:
            match = SELF.match(req.replace(" ", ""))
            if match:
                todo.extend(match["extras"].split(","))
            elif req not in out:
                out.append(req)
    return out


def main(argv: list[str]) -> int:
    extras = [e.strip() for e in (argv[0] if argv else "").split(",") if e.strip()]
    path = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("pyproject.toml")
    pyproject = tomllib.loads(path.read_text(encoding="utf-8"))
    print("\n".join(requirements(pyproject, extras)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
