"""A Keras autoencoder (the Dataflow guide's "custom model"): score = reconstruction error.

TensorFlow is imported only when an autoencoder is built, fitted or loaded (it costs ~10 s).
The same code runs on the GPU when TensorFlow sees one and on the CPU otherwise; the device used
is recorded in the detector's parameters. The fitted network is saved as a ``.keras`` file, which
the pyfunc wrapper ships as an MLflow artifact and loads back in ``load_context``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from models.detectors.base import Kind, Scaled

log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {"hidden": 8, "code": 3, "epochs": 30, "batch_size": 256, "learning_rate": 0.01, "seed": 0}
CLIP = 50.0  # scaled inputs are clipped so one huge value cannot dominate the loss
OnEpoch = Callable[[dict[str, float]], None]  # {"iteration", "loss", "duration_ms"} after each epoch


def _tf() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    return tf


def device() -> str:
    """'GPU' when TensorFlow sees one, else 'CPU'."""
    return "GPU" if _tf().config.list_physical_devices("GPU") else "CPU"


def _epoch_report(tf: Any, on_epoch: OnEpoch) -> Any:
    """A Keras callback that hands each finished epoch (index from 0, its training loss, its time) to ``on_epoch``."""

    class EpochReport(tf.keras.callbacks.Callback):  # type: ignore[misc]
        started = 0.0

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            loss = float((logs or {}).get("loss", float("nan")))
            on_epoch({"iteration": epoch, "loss": loss, "duration_ms": (time.perf_counter() - self.started) * 1000})

    return EpochReport()


@dataclass
class AutoencoderDetector(Scaled):
    kind: ClassVar[str] = "autoencoder"
    model: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["model"] = None  # the network travels as a .keras artifact, not in the pickle
        return state

    def _prep(self, X: np.ndarray) -> np.ndarray:
        return np.clip(self._scale(X), -CLIP, CLIP).astype(np.float32)

    def fit(self, X: np.ndarray, on_epoch: OnEpoch | None = None) -> AutoencoderDetector:
        """Train; with ``on_epoch`` each epoch is reported as it ends (``{"iteration", "loss", "duration_ms"}``,
        a BigQuery ML job's progress): an exception it raises stops the training (a cancelled job). The callback
        draws no random numbers, so the network is the same with or without it."""
        tf = _tf()
        p = {**DEFAULTS, **self.params}
        self.params = p
        tf.keras.utils.set_random_seed(int(p["seed"]))
        self._fit_scaler(X)
        Z = self._prep(X)
        d = Z.shape[1]
        inputs = tf.keras.Input(shape=(d,))
        h = tf.keras.layers.Dense(int(p["hidden"]), activation="relu")(inputs)
        code = tf.keras.layers.Dense(int(p["code"]), activation="relu")(h)
        h2 = tf.keras.layers.Dense(int(p["hidden"]), activation="relu")(code)
        outputs = tf.keras.layers.Dense(d)(h2)
        self.model = tf.keras.Model(inputs, outputs, name="purchase_autoencoder")
        self.model.compile(optimizer=tf.keras.optimizers.Adam(float(p["learning_rate"])), loss="mse")
        p["device"] = device()
        log.info("training the autoencoder on %s", p["device"])
        callbacks = [] if on_epoch is None else [_epoch_report(tf, on_epoch)]
        self.model.fit(
            Z, Z, epochs=int(p["epochs"]), batch_size=int(p["batch_size"]), verbose=0, shuffle=True, callbacks=callbacks
        )
        return self

    def score(self, X: np.ndarray) -> np.ndarray:
        Z = self._prep(X)
        recon = self.model.predict(Z, batch_size=65536, verbose=0)
        return np.mean((recon - Z) ** 2, axis=1).astype(np.float64)

    def save(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        self.model.save(path)
        return path

    def load(self, path: str | os.PathLike[str]) -> None:
        self.model = _tf().keras.models.load_model(path, compile=False)


KIND = Kind(
    "autoencoder",
    lambda params: AutoencoderDetector(params=params),
    streaming=True,
    family="keras",
    search_space={"hidden": [6, 8, 12], "code": [2, 3, 4], "epochs": [20, 40]},
    requirements=("tensorflow",),
)
