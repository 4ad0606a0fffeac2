"""Old path of `hyp train`, now services.training.train_cli: kept only until services/common/commands.py points there.

Delete this module then (it is the one import from models up into services).
"""

from __future__ import annotations

from services.training.train_cli import main

__all__ = ["main"]
