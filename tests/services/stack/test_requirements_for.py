"""compose/requirements_for.py: the image's dependency list from pyproject extras."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _module():
    spec = importlib.util.spec_from_file_location("requirements_for", ROOT / "compose" / "requirements_for.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PYPROJECT = {
    "project": {
        "dependencies": ["a>=1"],
        "optional-dependencies": {"w": ["duckdb"], "m": ["hyp-local[w]", "numpy"], "all": ["hyp-local[m, w]"]},
    }
}


def test_base_only_for_no_extras():
    assert _module().requirements(PYPROJECT, []) == ["a>=1"]


def test_self_references_expand_once():
    assert _module().requirements(PYPROJECT, ["all", "m"]) == ["a>=1", "numpy", "duckdb"]


def test_unknown_extra_is_named():
    with pytest.raises(SystemExit, match="unknown extra 'nope'"):
        _module().requirements(PYPROJECT, ["nope"])
