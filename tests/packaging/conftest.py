"""The plugin distribution (packaging/pytest-hyp-local) is tested from its source folder here: it is not
installed in this repository's environment (a user's environment gets it as a wheel: test_user_project.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGIN_SRC = ROOT / "packaging" / "pytest-hyp-local" / "src"

if str(PLUGIN_SRC) not in sys.path:
    sys.path.insert(0, str(PLUGIN_SRC))
