"""pyod's detectors (IForest, ECOD, COPOD, HBOS, LOF) behind the detector interface; score = decision_function.

``iforest`` and ``hbos`` keep a small fitted state and score a row in constant time. ``ecod`` and
``copod`` compare each call's rows with the whole training set (pyod rescans it on every call),
and ``lof`` searches neighbours in the training set, so their per-event cost grows with the
training set: fine for batch evaluation, a poor fit for per-event scoring.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.detectors.base import Kind, Scaled
from models.errors import ModelInputError

# name -> (pyod module, class, default parameters)
PYOD: dict[str, tuple[str, str, dict[str, Any]]] = {
    "iforest": ("pyod.models.iforest", "IForest", {"n_estimators": 100, "max_samples": 256, "random_state": 0}),
    "ecod": ("pyod.models.ecod", "ECOD", {}),
    "copod": ("pyod.models.copod", "COPOD", {}),
    "hbos": ("pyod.models.hbos", "HBOS", {"n_bins": 20}),
    "lof": ("pyod.models.lof", "LOF", {"n_neighbors": 20}),
}
REQUIREMENTS = ("pyod", "scipy", "numba")


@dataclass
class PyodDetector(Scaled):
    """A pyod detector named by ``name``; score = pyod's decision_function on robustly scaled rows."""

    name: str = "iforest"
    model: Any = None

    @property
    def kind(self) -> str:  # type: ignore[override]  # one class, five kinds
        return self.name

    def _build(self) -> Any:
        module, cls, defaults = PYOD[self.name]
        self.params = {**defaults, **self.params}
        return getattr(importlib.import_module(module), cls)(**self.params)

    def fit(self, X: np.ndarray) -> PyodDetector:
        self.model = self._build()
        try:
            self.model.fit(self._fit_scaler(X))
        except TypeError as exc:
            raise ModelInputError(f"{self.name}: bad parameter ({exc})") from None
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.model.decision_function(self._scale(X)), dtype=np.float64)


def _kind(name: str, streaming: bool, search_space: dict[str, list[Any]]) -> Kind:
    return Kind(
        name,
        lambda params: PyodDetector(params=params, name=name),
        streaming=streaming,
        family="pyod",
        search_space=search_space,
        requirements=REQUIREMENTS,
    )


KINDS = (
    _kind(
        "iforest",
        True,
        {"n_estimators": [50, 100, 200], "max_samples": [128, 256, 512], "max_features": [0.5, 0.8, 1.0]},
    ),
    _kind("ecod", False, {}),
    _kind("copod", False, {}),
    _kind("hbos", True, {"n_bins": [10, 20, 50, 100]}),
    _kind("lof", False, {"n_neighbors": [10, 20, 35, 50]}),
)
