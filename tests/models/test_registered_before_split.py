"""Versions registered before the detectors moved to models/detectors/ still load and score the same.

tests/models/fixtures/registered_before_split/ holds one registered version per detector class,
made by the old code (its make.py says how): their pickles name ``models.detectors.KMeansDetector``,
``models.detectors.PyodDetector``, ``models.detectors.EnvelopeDetector`` and
``models.autoencoder.AutoencoderDetector``. They load through MLflow as a consumer loads a
downloaded version, and must give the scores the old code gave.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from models import detectors, registry

FIXTURE = Path(__file__).parent / "fixtures" / "registered_before_split"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
NEW_HOME = {
    "kmeans": detectors.KMeansDetector,
    "iforest": detectors.PyodDetector,
    "hbos": detectors.PyodDetector,
    "envelope": detectors.EnvelopeDetector,
    "autoencoder": detectors.AutoencoderDetector,
}


def _probe() -> pd.DataFrame:
    return pd.read_json(FIXTURE / "probe.jsonl", lines=True)[["tax", "shipping", "value", "items", "items_count"]]


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_a_version_pickled_under_the_old_module_paths_loads_and_scores_the_same(kind: str) -> None:
    pickled = (FIXTURE / kind / "python_model.pkl").read_bytes()
    old_module = EXPECTED[kind]["class"].rsplit(".", 1)[0].encode()
    assert old_module in pickled and b"models.detectors." not in pickled  # really made under the old paths
    model = mlflow.pyfunc.load_model(str(FIXTURE / kind))
    detector = registry.unwrap(model).detector
    assert type(detector) is NEW_HOME[kind] and detector.kind == kind
    out = model.predict(_probe())
    np.testing.assert_allclose(out["score"].to_numpy(), EXPECTED[kind]["score"], rtol=1e-6, atol=1e-9)
    assert out["is_anomaly"].tolist() == EXPECTED[kind]["is_anomaly"]


def test_the_fixture_covers_every_detector_class() -> None:
    classes = {type(detectors.build(kind)) for kind in detectors.MODEL_KINDS}
    assert classes == set(NEW_HOME.values())


@pytest.mark.integration
def test_an_old_version_in_the_registry_loads_as_consumers_load_it(mlflow_server) -> None:
    """The old artifacts registered on a real `hyp mlflow`, loaded through models.registry.load_version."""
    uri, name = mlflow_server.tracking_uri, "registered-before-split"
    with registry.use_tracking_uri(uri):
        mlflow.set_experiment(name)
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(FIXTURE / "kmeans"), "model")
    c = registry.client(uri)
    c.create_registered_model(name)
    version = c.create_model_version(name, f"runs:/{run.info.run_id}/model", run.info.run_id).version
    model = registry.load_version(uri, name, version)
    assert type(registry.unwrap(model).detector) is detectors.KMeansDetector
    out = model.predict(_probe())
    np.testing.assert_allclose(out["score"].to_numpy(), EXPECTED["kmeans"]["score"], rtol=1e-6, atol=1e-9)
