"""Training and drift windows, read from the warehouse's ``cloud_run`` table by SQL.

Labels come only from the ``attributes`` JSON column (ground truth travels in
message attributes); they are used to evaluate, never to train.
"""

from __future__ import annotations

import os
from datetime import datetime

import pandas as pd

from services.common.names import ANOMALY_KIND_SQL, LABEL_SQL
from services.warehouse.query import query

FEATURES = ("tax", "shipping", "value")

_SELECT = (
    "SELECT event_datetime, tax, shipping, value, items, items_count,"
    f" {LABEL_SQL} AS anomaly, {ANOMALY_KIND_SQL} AS anomaly_kind"
    " FROM cloud_run WHERE event = 'purchase' AND tax IS NOT NULL AND shipping IS NOT NULL AND value IS NOT NULL"
)


def _ts(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat(sep=" ")


def latest_event_time(warehouse_dir: str | os.PathLike[str]) -> datetime | None:
    table = query(warehouse_dir, "SELECT max(event_datetime) AS t FROM cloud_run WHERE event = 'purchase'")
    return table.column("t")[0].as_py()


def training_window(
    warehouse_dir: str | os.PathLike[str],
    *,
    minutes: float,
    max_rows: int,
    end: datetime | None = None,
    since: datetime | None = None,
) -> pd.DataFrame:
    """The newest purchases within ``minutes`` before ``end`` (default: the newest event) and after
    ``since``, oldest first."""
    end = end or latest_event_time(warehouse_dir)
    if end is None:
        return pd.DataFrame(columns=["event_datetime", *FEATURES, "items", "items_count", "anomaly", "anomaly_kind"])
    sql = (
        f"SELECT * FROM ({_SELECT} AND event_datetime <= TIMESTAMP '{_ts(end)}'"
        f" AND event_datetime > TIMESTAMP '{_ts(end)}' - INTERVAL {float(minutes) * 60:.3f} SECOND"
        + (f" AND event_datetime >= TIMESTAMP '{_ts(since)}'" if since else "")
        + f" ORDER BY event_datetime DESC LIMIT {int(max_rows)}) ORDER BY event_datetime"
    )
    return query(warehouse_dir, sql).to_pandas()


def between(warehouse_dir: str | os.PathLike[str], start: datetime, end: datetime, *, max_rows: int) -> pd.DataFrame:
    """Purchases with start <= event_datetime <= end (the newest ``max_rows``)."""
    sql = (
        f"{_SELECT} AND event_datetime >= TIMESTAMP '{_ts(start)}' AND event_datetime <= TIMESTAMP '{_ts(end)}'"
        f" ORDER BY event_datetime DESC LIMIT {int(max_rows)}"
    )
    return query(warehouse_dir, sql).to_pandas()


def oldest(warehouse_dir: str | os.PathLike[str], *, rows: int) -> pd.DataFrame:
    return query(warehouse_dir, f"{_SELECT} ORDER BY event_datetime LIMIT {int(rows)}").to_pandas()


def newest(warehouse_dir: str | os.PathLike[str], *, rows: int) -> pd.DataFrame:
    return query(warehouse_dir, f"{_SELECT} ORDER BY event_datetime DESC LIMIT {int(rows)}").to_pandas()


def count_since(warehouse_dir: str | os.PathLike[str], since: datetime | None) -> int:
    where = f" AND event_datetime > TIMESTAMP '{_ts(since)}'" if since else ""
    table = query(warehouse_dir, f"SELECT count(*) AS n FROM ({_SELECT}{where})")
    return int(table.column("n")[0].as_py())


def split_holdout(frame: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Time split: the newest ``fraction`` of the window is held out for evaluation."""
    cut = round(len(frame) * (1 - fraction))
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)
