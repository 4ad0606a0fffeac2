"""The declared layering holds: every import in the project goes along docs/architecture.md's table.

The table ("## Layering") is read from the page itself, so the page and this test cannot drift.
Imports are read with ``ast``, never executed: ``import`` and ``from ... import`` statements
anywhere in a module (inside functions and ``TYPE_CHECKING`` blocks too) and
``importlib.import_module`` / ``__import__`` called with a literal name.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "architecture.md"
# top-level folders of the project's own code: an import whose first segment is one of these is checked
PROJECT = ("services", "models", "loadgen", "labs", "tests", "benchmarks", "scripts")
SCANNED = ("services", "models", "loadgen", "labs", "scripts")  # tests and benchmarks may import anything
ANYTHING = "anything"


@dataclass(frozen=True)
class Import:
    file: Path
    line: int
    module: str  # the imported module, dotted

    def where(self) -> str:
        return f"{self.file.relative_to(ROOT)}:{self.line}"


def rules(text: str) -> dict[str, set[str] | None]:
    """package -> the packages it may import (None: anything), from the page's layering table."""
    section = text.split("\n## Layering", 1)[1].split("\n## ", 1)[0]
    out: dict[str, set[str] | None] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 2 or not cells[0].startswith("`"):
            continue
        allowed: set[str] | None = None if cells[1] == ANYTHING else set(re.findall(r"`([^`]+)`", cells[1]))
        for package in re.findall(r"`([^`]+)`", cells[0]):
            assert package not in out, f"docs/architecture.md: {package} has two rows in the layering table"
            out[package] = allowed
    return out


def unit_of_module(dotted: str) -> str:
    """The table's unit of a module: ``services.<part>`` inside services, else its top-level package."""
    parts = dotted.split(".")
    return ".".join(parts[:2]) if parts[0] == "services" and len(parts) > 1 else parts[0]


def module_name(path: Path) -> list[str]:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imports(path: Path) -> Iterator[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path) if path.name == "__init__.py" else module_name(path)[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(path, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the module's own package
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                # `from services import cli` imports services.cli: the name is the unit
                yield Import(path, node.lineno, f"{base}.{alias.name}" if base == "services" else base)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in {"import_module", "__import__"} and isinstance(node.args[0].value, str):
                yield Import(path, node.lineno, node.args[0].value)


def modules() -> list[Path]:
    found = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if not any(p.startswith(".") or p == "__pycache__" for p in path.relative_to(ROOT).parts):
                found.append(path)
    return found


def unit_of_file(path: Path) -> str:
    parts = path.relative_to(ROOT).parts
    if parts[0] == "services":
        return "services" if len(parts) == 2 and parts[1] == "__init__.py" else f"services.{Path(parts[1]).stem}"
    return parts[0]


def violations(table: dict[str, set[str] | None], files: list[Path]) -> list[str]:
    table = {"services": set(), **table}  # the bare `services` package holds nothing and imports nothing
    found = []
    for path in files:
        unit = unit_of_file(path)
        allowed = table.get(unit, set())
        for imp in imports(path):
            if imp.module.split(".")[0] not in PROJECT:
                continue
            target = unit_of_module(imp.module)
            if target == unit or allowed is None or target in allowed:
                continue
            if unit not in table:
                rule = f"{unit} is not in the table (add a row for it)"
            else:
                rule = f"{unit} may import only {', '.join(sorted(allowed)) or 'nothing of the project'}"
            found.append(f"{imp.where()}: {unit} imports {imp.module} ({target}); {rule}")
    return found


@pytest.fixture(scope="module")
def table() -> dict[str, set[str] | None]:
    return rules(DOC.read_text(encoding="utf-8"))


def test_every_import_follows_the_declared_layering(table):
    found = violations(table, modules())
    assert not found, "imports against the layering in docs/architecture.md:\n" + "\n".join(found)


def test_every_package_has_a_row_and_every_row_a_package(table):
    units = {unit_of_file(p) for p in modules()} - {"services"}
    assert units - set(table) == set(), "packages without a row in docs/architecture.md's layering table"
    present = units | {"tests", "benchmarks"}
    assert set(table) - present == set(), "rows of the layering table naming no package of the project"
    for package, allowed in table.items():
        assert allowed is None or allowed <= present, f"{package}'s row names a package that does not exist"


def test_the_checker_finds_each_kind_of_import_against_the_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module breaking the table in every spelling is caught at the right line, naming the rule."""
    monkeypatch.setattr("tests.test_layering.ROOT", tmp_path)
    bad = tmp_path / "models" / "sub" / "bad.py"
    bad.parent.mkdir(parents=True)
    (tmp_path / "models" / "__init__.py").write_text("")
    bad.write_text(
        "import loadgen.core\n"  # 1
        "from services.stack import up\n"  # 2
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from services import cli\n"  # 5
        "def f():\n"
        "    import importlib\n"
        "    return importlib.import_module('services.console.app')\n"  # 8
        "from .. import data\n"  # 9: models.data, the same package: allowed
        "from services.common import names\n"  # 10: allowed
        "import numpy\n"  # 11: third-party
    )
    table: dict[str, set[str] | None] = {"models": {"services.common"}}
    found = violations(table, [bad])
    assert [f.split(":")[1] for f in found] == ["1", "2", "5", "8"]
    assert found[0] == (
        "models/sub/bad.py:1: models imports loadgen.core (loadgen); models may import only services.common"
    )
    assert "services.cli" in found[2]
    stray = tmp_path / "services" / "newthing" / "x.py"
    stray.parent.mkdir(parents=True)
    stray.write_text("from services.common import names\n")
    assert violations(table, [stray]) == [
        "services/newthing/x.py:1: services.newthing imports services.common (services.common);"
        " services.newthing is not in the table (add a row for it)"
    ]


def test_the_table_is_read_from_the_page() -> None:
    text = "\n".join(
        [
            "# x",
            "## Layering",
            "| package | may import | why |",
            "|---|---|---|",
            "| `a`, `b` | `c` | . |",
            "| `t` | anything | . |",
            "## Next",
            "| `z` | `y` | . |",
        ]
    )
    assert rules(text) == {"a": {"c"}, "b": {"c"}, "t": None}
