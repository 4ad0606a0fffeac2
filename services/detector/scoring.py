"""Scoring: RunInference with a model handler whose "examples" are whole batches.

Two scorers behind one handler:

* :class:`ChampionScorer` loads ``models:/purchase-anomaly@champion`` (models.registry) and
  hot-reloads: a background thread polls the alias (one cheap REST call per ``poll_interval_s``)
  and, when it moved, loads the new version and swaps it in between two batches. Each batch is
  scored by exactly one (model, version) pair, and every verdict carries that version.
* :class:`OnlineScorer` uses Beam's own ``apache_beam.ml.anomaly`` online detectors (ZScore,
  RobustZScore, IQR) on the purchase value, for a cold start with no trained model; its verdicts
  say ``model_version="beam-<detector>"``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from apache_beam.ml.inference.base import ModelHandler

from services.detector.batch import Batch, Rejected
from services.detector.flags import ONLINE_DETECTORS
from services.detector.records import feature_rows

log = logging.getLogger(__name__)


class Scorer(Protocol):
    def score(self, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
        """Rows with tax, shipping, value (+ optional columns) -> (one verdict per row, model version)."""
        ...

    def close(self) -> None: ...


def _verdicts(frame: Any, version: str) -> list[dict[str, Any]]:
    """A model's output DataFrame -> plain-Python verdict dicts tagged with the version."""
    columns = {
        c: frame[c].tolist()
        for c in ("score", "is_anomaly", "nearest_centroid_id", "normalized_distance")
        if c in frame.columns
    }
    out = []
    for i in range(len(frame)):
        verdict: dict[str, Any] = {"model_version": version}
        for name, values in columns.items():
            value = values[i]
            if name == "is_anomaly":
                value = bool(value)
            elif name == "nearest_centroid_id":
                value = None if value is None or (isinstance(value, float) and math.isnan(value)) else int(value)
            elif value is not None:
                value = float(value)
            verdict[name] = value
        verdict.setdefault("is_anomaly", False)
        out.append(verdict)
    return out


class ChampionScorer:
    """The registry's champion, hot-reloaded when the alias moves."""

    def __init__(
        self,
        tracking_uri: str,
        name: str = "purchase-anomaly",
        alias: str = "champion",
        *,
        poll_interval_s: float = 5.0,
        wait_s: float = 60.0,
    ) -> None:
        from models.registry import ChampionWatcher, RegistryError, load_champion, unwrap

        self._uri, self._name, self._alias = tracking_uri, name, alias
        self._load_champion, self._unwrap = load_champion, unwrap
        deadline = time.monotonic() + wait_s
        while True:
            try:
                pyfunc, version = load_champion(tracking_uri, name, alias)
                break
            except RegistryError:
                if time.monotonic() >= deadline:
                    raise
                log.info("no %s@%s yet; waiting for one", name, alias)
                time.sleep(1.0)
        self._current: tuple[Any, str] = (unwrap(pyfunc), version)
        log.info("scoring with %s version %s", name, version, extra={"fields": {"model_version": version}})
        self._watcher = ChampionWatcher(tracking_uri, name, alias)
        self._watcher.current = version
        self._poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="hyp-detector-champion", daemon=True)
        self._thread.start()

    @property
    def version(self) -> str:
        return self._current[1]

    def _watch(self) -> None:
        while not self._stop.wait(self._poll_interval_s):
            self.reload_if_moved()

    def reload_if_moved(self) -> str | None:
        """Poll the alias once; load and swap in the new version if it moved. Returns the new version."""
        version = self._watcher.poll()
        if version is None or version == self._current[1]:
            return None
        try:
            from models.registry import load_version

            model = self._unwrap(load_version(self._uri, self._name, version))
        except Exception as exc:  # keep scoring with the old one, retry at the next poll
            log.warning("could not load %s version %s, keeping %s: %s", self._name, version, self._current[1], exc)
            self._watcher.current = self._current[1]
            return None
        previous = self._current[1]
        self._current = (model, version)  # one assignment: a batch sees the old pair or the new one
        log.info("champion moved: %s -> %s", previous, version, extra={"fields": {"model_version": version}})
        return version

    def score(self, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
        import pandas as pd

        model, version = self._current
        frame = model.score_rows(pd.DataFrame.from_records(rows))
        return _verdicts(frame, version), version

    def close(self) -> None:
        self._stop.set()


class OnlineScorer:
    """Beam's ml.anomaly online detectors on the purchase value: score each, then learn it."""

    def __init__(self, detector: str = "zscore", feature: str = "value") -> None:
        if detector not in ONLINE_DETECTORS:
            raise ValueError(f"detector: unknown online detector {detector!r} (expected one of {ONLINE_DETECTORS})")
        import apache_beam as beam
        from apache_beam.ml.anomaly.detectors.iqr import IQR
        from apache_beam.ml.anomaly.detectors.robust_zscore import RobustZScore
        from apache_beam.ml.anomaly.detectors.zscore import ZScore

        cls = {"zscore": ZScore, "robust-zscore": RobustZScore, "iqr": IQR}[detector]
        self._detector = cls(features=[feature])
        self._row = beam.Row
        self._feature = feature
        self._lock = threading.Lock()
        self.version = f"beam-{detector}"

    def score(self, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
        out = []
        threshold = self._detector._threshold_criterion
        with self._lock:  # the trackers are not thread-safe
            for row in rows:
                x = self._row(**{self._feature: float(row[self._feature])})
                score = self._detector.score_one(x)
                self._detector.learn_one(x)
                ready = score is not None and not math.isnan(score)
                label = threshold.apply(score) if ready else None
                out.append(
                    {
                        "score": float(score) if ready else None,
                        "is_anomaly": label == 1,
                        "model_version": self.version,
                    }
                )
        return out, self.version

    def close(self) -> None:
        pass


class BatchModelHandler(ModelHandler[Batch, Batch, Scorer]):
    """RunInference handler: one example is one Batch; its purchases are scored in one call."""

    def __init__(self, make_scorer: Callable[[], Scorer]) -> None:
        super().__init__()
        self._make_scorer = make_scorer

    def load_model(self) -> Scorer:
        return self._make_scorer()

    def run_inference(
        self, batch: Sequence[Batch], model: Scorer, inference_args: dict[str, Any] | None = None
    ) -> Iterable[Batch]:
        """Each element comes out as the scored Batch itself (no postprocess stage: one bundle less per batch).

        A batch the model fails on comes out with its purchases rejected (``scoring: ...``, dead letter),
        the rest of it kept: one bad batch never stops the job.
        """
        for element in batch:
            rows = feature_rows(element)
            if not rows:
                yield element.replace(verdicts=(), model_version=getattr(model, "version", None))
                continue
            try:
                verdicts, version = model.score(rows)
            except Exception as exc:  # the model's failure, not the pipeline's
                log.warning("scoring failed for a batch of %d purchases: %s", len(rows), exc)
                yield reject_purchases(element, f"scoring: {type(exc).__name__}: {exc}")
                continue
            yield element.replace(verdicts=tuple(verdicts), model_version=version)

    def get_num_bytes(self, batch: Sequence[Batch]) -> int:
        # the default pickles every batch just to measure it
        return sum(len(m.data) for element in batch for m in element.messages)

    def batch_elements_kwargs(self) -> dict[str, Any]:
        return {"min_batch_size": 1, "max_batch_size": 1}  # elements are already batches

    def should_skip_batching(self) -> bool:
        return True  # elements arrive as one-Batch lists (Transform/Parse): no BatchElements stage

    def get_metrics_namespace(self) -> str:
        return "hyp_detector"

    def share_model_across_processes(self) -> bool:
        return False


def reject_purchases(batch: Batch, reason: str) -> Batch:
    """The batch with its purchases moved to ``rejected`` (dead letter with ``reason``); other events kept."""
    purchases = set(batch.purchase_index)
    keep = [i for i in range(len(batch.events)) if i not in purchases]
    return batch.replace(
        events=tuple(batch.events[i] for i in keep),
        event_messages=tuple(batch.event_messages[i] for i in keep),
        purchase_index=(),
        verdicts=(),
        rejected=batch.rejected + tuple(Rejected(batch.event_messages[i], reason) for i in batch.purchase_index),
    )


_SCORERS: dict[tuple[Any, ...], Scorer] = {}
_SCORERS_LOCK = threading.Lock()


def shared_scorer(key: tuple[Any, ...], make: Callable[[], Scorer]) -> Scorer:
    """One scorer per configuration for the whole process.

    The direct runner sets up RunInference's DoFn anew for every bundle, and Beam's ``Shared`` handle
    lives in that DoFn, so without this the model would be loaded again for every batch (and an online
    detector would forget what it learnt).
    """
    with _SCORERS_LOCK:
        scorer = _SCORERS.get(key)
        if scorer is None:
            scorer = _SCORERS[key] = make()
        return scorer
