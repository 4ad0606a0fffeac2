"""Old path of `hyp mlflow`, now services.mlflow.server: kept only until services/common/commands.py points there.

Delete this module then (it is the one import from models up into services).
"""

from __future__ import annotations

from services.mlflow.server import main

__all__ = ["main"]
