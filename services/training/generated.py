"""Generated training and evaluation rows: the load generator's labelled purchases, asked for by the CLI."""

from __future__ import annotations

from typing import Any

import pandas as pd

from models.errors import ModelInputError


def labelled(n: int, seed: int, anomaly_rate: float | None = None, flag: str = "--generate") -> pd.DataFrame:
    """n labelled purchases (1% anomalies spread over every kind by default, or ``anomaly_rate`` in all)."""
    if n <= 0:
        raise ModelInputError(f"{flag}: need a positive number of rows, got {n}")
    from loadgen.config import DEFAULT_ANOMALY_RATES
    from loadgen.dataset import labelled_purchases

    options: dict[str, Any] = {}
    if anomaly_rate is not None:
        total = sum(DEFAULT_ANOMALY_RATES.values())
        options["anomaly_rates"] = {k: v * anomaly_rate / total for k, v in DEFAULT_ANOMALY_RATES.items()}
    frame: pd.DataFrame = labelled_purchases(n, seed, **options)
    return frame
