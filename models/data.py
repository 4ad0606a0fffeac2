"""Where training data comes from: SQL over the warehouse (as the workshop), or the load generator.

The default query reads purchases from ``cloud_run`` with their labels, which travel in the
``attributes`` JSON column (copied from the Pub/Sub message attributes), never in the payload.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from models.errors import ModelInputError

DEFAULT_SQL = """
SELECT tax, shipping, value, items, items_count,
       json_extract_string(attributes, '$.anomaly') AS anomaly,
       coalesce(json_extract_string(attributes, '$.anomaly_kind'), '') AS anomaly_kind
FROM cloud_run
WHERE event = 'purchase'
""".strip()


def from_warehouse(warehouse_dir: str | os.PathLike[str], sql: str = DEFAULT_SQL) -> pd.DataFrame:
    """Run SQL over the warehouse (DuckDB) and return its rows; ModelInputError for a bad query."""
    from services.warehouse.query import query
    from services.warehouse.tables import WarehouseError

    try:
        return query(warehouse_dir, sql, read_only=True).to_pandas()
    except WarehouseError as exc:
        raise ModelInputError(f"--sql: {exc}") from None


def generated(n: int, seed: int, anomaly_rate: float | None = None, **options: Any) -> pd.DataFrame:
    """n labelled purchases from the load generator (1% anomalies of every kind by default)."""
    if n <= 0:
        raise ModelInputError(f"--generate: need a positive number of rows, got {n}")
    from loadgen.config import DEFAULT_ANOMALY_RATES
    from loadgen.dataset import labelled_purchases

    if anomaly_rate is not None:
        total = sum(DEFAULT_ANOMALY_RATES.values())
        options["anomaly_rates"] = {k: v * anomaly_rate / total for k, v in DEFAULT_ANOMALY_RATES.items()}
    return labelled_purchases(n, seed, **options)


def from_file(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A Parquet or CSV file of rows (tax, shipping, value, optional items and labels)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelInputError(f"--data: no such file {path}")
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    if path.endswith(".csv"):
        return pd.read_csv(path)
    raise ModelInputError(f"--data: expected a .parquet or .csv file, got {path}")
