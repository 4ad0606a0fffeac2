from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import training
from models.baselines import beam_baselines


def test_beam_online_detectors_score_every_row(held_out: pd.DataFrame) -> None:
    out = beam_baselines(held_out, max_rows=1500)
    assert set(out) == {"beam_zscore", "beam_iqr", "beam_robust_zscore"}
    for scores, flags, n in out.values():
        assert n == 1500 and len(scores) == 1500 and flags.dtype == bool
        assert np.isfinite(scores).all() and flags.any()


def test_autoencoder_same_code_path_cpu_or_gpu(purchases: pd.DataFrame, tmp_path) -> None:
    from models.autoencoder import AutoencoderDetector

    trained = training.fit("autoencoder", purchases, {"epochs": 3})
    assert trained.params["device"] in ("CPU", "GPU")
    detector = trained.model.detector
    path = detector.save(tmp_path / "ae.keras")
    assert path.suffix == ".keras" and path.stat().st_size > 0
    fresh = AutoencoderDetector(params=dict(detector.params))
    fresh.__dict__.update({k: v for k, v in detector.__getstate__().items()})
    fresh.load(path)
    X = trained.model.matrix(purchases.head(20))
    np.testing.assert_allclose(fresh.score(X), detector.score(X), rtol=1e-5)


def _tensorflow_gpus() -> list:
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


@pytest.mark.gpu
def test_autoencoder_trains_on_the_gpu_when_one_is_present(purchases: pd.DataFrame) -> None:
    if not _tensorflow_gpus():
        pytest.skip("TensorFlow sees no GPU on this machine (the CPU path is covered by the test above)")
    trained = training.fit("autoencoder", purchases, {"epochs": 2})
    assert trained.params["device"] == "GPU"
    X = trained.model.matrix(purchases.head(1000))
    assert np.isfinite(trained.model.detector.score(X)).all()
