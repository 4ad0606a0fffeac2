"""Test helpers: purchases written to a tmp warehouse the way the pipeline writes ``cloud_run`` rows."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from services.warehouse import append


def synthetic_purchases(
    warehouse: Path,
    n: int,
    *,
    start: datetime,
    seconds_apart: float = 0.5,
    price_factor: float = 1.0,
    anomaly_rate: float = 0.05,
    seed: int = 0,
) -> datetime:
    """Append ``n`` labelled purchases (value ~ lognormal * price_factor; anomalies: value spikes); return the end."""
    rng = np.random.default_rng(seed)
    value = rng.lognormal(3.5, 0.4, n) * price_factor
    anomaly = rng.random(n) < anomaly_rate
    value = np.where(anomaly, value * rng.uniform(8, 20, n), value)
    tax = np.round(value * 0.21, 2)
    shipping = np.where(anomaly, 4.99, np.where(value > 50 * price_factor, 0.0, 4.99))
    rows = []
    for i in range(n):
        t = start + timedelta(seconds=i * seconds_apart)
        rows.append(
            {
                "event_datetime": t,
                "event": "purchase",
                "user_id": f"u{i % 97}",
                "transaction_id": f"t{seed}-{i}",
                "value": float(round(value[i], 2)),
                "tax": float(tax[i]),
                "shipping": float(shipping[i]),
                "items_count": 1,
                "attributes": json.dumps(
                    {"anomaly": "1" if anomaly[i] else "0", "anomaly_kind": "value_spike" if anomaly[i] else ""}
                ),
                "source": "test",
            }
        )
    append(warehouse, "cloud_run", rows)
    return start + timedelta(seconds=(n - 1) * seconds_apart)


class StubOps:
    """A stand-in for the models seam in fast tests only (the integration tests use the real models package).

    Its "model" is a value threshold at the training window's 95th percentile; ``release`` lets a test
    hold a run inside its train step; ``fail_on`` makes one step's call raise.
    """

    def __init__(self, champion: str | None = "1", champion_f1: float = 0.5) -> None:
        self.version = champion
        self.champion_f1 = champion_f1
        self.release = threading.Event()
        self.release.set()
        self.entered = threading.Event()
        self.fail_on: set[str] = set()
        self.calls: list[str] = []
        self.registered: list[str] = []
        self.tags: dict[str, str] = {}

    def _call(self, name: str) -> None:
        self.calls.append(name)
        if name in self.fail_on:
            raise RuntimeError(f"injected failure in {name}")

    def candidates(self) -> list[str]:
        return ["threshold", "other"]

    def train(self, candidate: str, frame: pd.DataFrame) -> Any:
        self.entered.set()
        self.release.wait(30)
        self._call("train")
        return float(np.quantile(frame["value"], 0.95))

    def evaluate(self, model: Any, holdout: pd.DataFrame) -> dict[str, float]:
        self._call("evaluate")
        pred = holdout["value"].to_numpy() > model
        truth = holdout["anomaly"].to_numpy()
        tp = float((pred & truth).sum())
        precision = tp / max(pred.sum(), 1)
        recall = tp / max(truth.sum(), 1)
        return {"precision": precision, "recall": recall, "f1": 2 * precision * recall / max(precision + recall, 1e-9)}

    def evaluate_version(self, version: str, holdout: pd.DataFrame) -> dict[str, float]:
        return {"f1": self.champion_f1}

    def rank(self, metrics: dict[str, float]) -> float:
        return metrics["f1"]

    def gate(self, challenger: dict[str, float], champion: dict[str, float] | None) -> tuple[bool, str]:
        if champion is None or challenger["f1"] > champion["f1"]:
            return True, f"f1 {challenger['f1']:.3f} beats {champion and champion['f1']}"
        return False, f"f1 {challenger['f1']:.3f} does not beat {champion['f1']:.3f}"

    def register(self, model: Any, holdout: pd.DataFrame, tags: dict[str, Any]) -> str:
        self._call("register")
        version = str(int(self.version or 0) + len(self.registered) + 1)
        self.registered.append(version)
        self.tags = {k: str(v) for k, v in tags.items()}
        return version

    def promote(self, version: str) -> None:
        self._call("promote")
        self.version = version

    def champion_version(self) -> str | None:
        return self.version

    def champion_tags(self) -> dict[str, str]:
        return self.tags

    def champion_created(self) -> datetime | None:
        return None
