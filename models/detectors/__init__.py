"""Every model kind behind one small interface (``fit(X)``, ``score(X)``), and the one registry of kinds.

One detector per module, as Beam's ``ml/anomaly/detectors``: :mod:`.kmeans` (BigQuery ML parity),
:mod:`.pyod_detector` (IForest, ECOD, COPOD, HBOS, LOF), :mod:`.autoencoder` (Keras),
:mod:`.envelope` (hyp's own). :data:`KINDS` is the only list of kinds: the trainer, ``--compare``,
the search spaces, a version's pip requirements, the orchestrator's candidates and the labs all
read it. Adding a kind is a module with its detector and its :class:`~.base.Kind`, and one line here.

Registered versions pickle their detector by module path. Versions registered before this package
existed name ``models.detectors.KMeansDetector`` / ``PyodDetector`` / ``EnvelopeDetector`` and
``models.autoencoder.AutoencoderDetector``: the re-exports below and the thin models/autoencoder.py
keep those paths loadable (tests/models/test_registered_before_split.py).
"""

from __future__ import annotations

from typing import Any

from models.detectors import autoencoder, envelope, kmeans, pyod_detector
from models.detectors.autoencoder import AutoencoderDetector
from models.detectors.base import Detector, Family, Kind, Scaled
from models.detectors.envelope import EnvelopeDetector
from models.detectors.kmeans import KMeansDetector
from models.detectors.pyod_detector import PyodDetector
from models.errors import ModelInputError

__all__ = [
    "KINDS",
    "MODEL_KINDS",
    "AutoencoderDetector",
    "Detector",
    "EnvelopeDetector",
    "Family",
    "KMeansDetector",
    "Kind",
    "PyodDetector",
    "Scaled",
    "build",
    "get",
    "kinds_of",
]

KINDS: dict[str, Kind] = {k.name: k for k in (kmeans.KIND, *pyod_detector.KINDS, autoencoder.KIND, envelope.KIND)}
MODEL_KINDS: tuple[str, ...] = tuple(KINDS)


def get(kind: str) -> Kind:
    """The named kind; ModelInputError naming the known ones for an unknown name."""
    try:
        return KINDS[kind]
    except KeyError:
        raise ModelInputError(f"unknown model {kind!r} (models: {', '.join(MODEL_KINDS)})") from None


def build(kind: str, params: dict[str, Any] | None = None) -> Detector:
    """A fresh, unfitted detector of the named kind; ModelInputError for an unknown name."""
    return get(kind).build(dict(params or {}))


def kinds_of(*families: Family) -> tuple[str, ...]:
    """The kinds of the given families, in registry order."""
    return tuple(k.name for k in KINDS.values() if k.family in families)
