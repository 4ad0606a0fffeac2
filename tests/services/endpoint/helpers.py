"""Test helpers: a small in-test model with the serving contract and a registry stand-in whose alias
tests move. Fast tests use these (no MLflow server); the integration tests use the real registry.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from services.endpoint.serving import ServedModel


class TinyKMeans:
    """Two centroids over (tax, shipping, value); the far one is the anomaly cluster."""

    def __init__(self, scale: float = 1.0) -> None:
        self.centroids = np.array([[5.0, 5.0, 50.0], [100.0, 100.0, 10_000.0]])
        self.scale = scale  # versions differ by scale, so a response shows which version scored it
        self.calls = 0

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        self.calls += 1
        X = frame[["tax", "shipping", "value"]].to_numpy(dtype=np.float64)
        d = np.sqrt(((X[:, None, :] - self.centroids[None, :, :]) ** 2).sum(axis=2))
        nearest = d.argmin(axis=1)
        score = d[:, 0] * self.scale
        return pd.DataFrame(
            {
                "score": score,
                "is_anomaly": nearest == 1,
                "nearest_centroid_id": nearest + 1,
                "normalized_distance": score / 100.0,
            }
        )


class FakeSource:
    """Versions by number; ``alias`` says which one the alias points at (None: registry empty)."""

    def __init__(self, versions: dict[str, TinyKMeans], alias: str | None) -> None:
        self.versions = versions
        self.alias = alias
        self.loads = 0
        self.fail: Exception | None = None

    def current_version(self) -> str | None:
        if self.fail is not None:
            raise self.fail
        return self.alias

    def load(self, version: str) -> ServedModel:
        self.loads += 1
        model = self.versions[version]

        def predict(columns):
            return model.predict(pd.DataFrame(columns))

        return ServedModel(predict=predict, version=version, name="purchase-anomaly", kind="kmeans")
