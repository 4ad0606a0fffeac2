"""Labelled purchase sets for training and evaluation, drawn exactly as the stream draws purchases."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa

from loadgen.config import Drift, GeneratorConfig
from loadgen.core import State, draw_purchases, stamp
from loadgen.render import columns, labels


def labelled_table(
    n: int,
    seed: int,
    *,
    config: GeneratorConfig | None = None,
    drift: Drift | None = None,
    anomaly_rates: dict[str, float] | None = None,
    start: datetime | None = None,
    rate: float = 10.0,
) -> pa.Table:
    """n purchases as an Arrow table: the ``cloud_run`` event columns plus ``anomaly`` (0/1) and ``anomaly_kind``.

    ``start``/``rate`` set the simulated clock (purchases per second); ``drift`` and
    ``anomaly_rates`` override the config's. The same seed gives the same rows.
    """
    config = config or GeneratorConfig()
    updates: dict[str, object] = {"clock": "simulated", "sim_rate": rate}
    if drift is not None:
        updates["drift"] = drift
    if anomaly_rates is not None:
        updates["anomaly_rates"] = GeneratorConfig.build(anomaly_rates=anomaly_rates).anomaly_rates
    if start is not None:
        updates["start"] = start
    config = config.model_copy(update=updates)
    rng = np.random.default_rng(seed)
    state = State()
    batch = draw_purchases(rng, config, n, state)
    batch.ts = stamp(rng, config, n, state)
    cols = columns(batch, config.n_users)
    cols.update(labels(batch))
    return pa.table(cols)


def labelled_purchases(n: int, seed: int, **options: object):  # -> pandas.DataFrame
    """n labelled purchases as a pandas DataFrame (see :func:`labelled_table` for the options)."""
    return labelled_table(n, seed, **options).to_pandas()  # type: ignore[arg-type]
