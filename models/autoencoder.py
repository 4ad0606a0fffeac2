"""Old module path of the autoencoder, kept so versions registered before models/detectors/ load.

Their pickles name ``models.autoencoder.AutoencoderDetector``; the detector lives in
:mod:`models.detectors.autoencoder`. New code imports it from there.
"""

from __future__ import annotations

from models.detectors.autoencoder import AutoencoderDetector

__all__ = ["AutoencoderDetector"]
