"""Training and drift windows, read from the warehouse's event table by SQL: ``cloud_run`` (the Cloud Run
processor's, as the workshop trains) or, with ``table="dataflow"``, the detector's own (HYP_ORCH_EVENTS_TABLE).

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
EVENT_TABLES = ("cloud_run", "dataflow")  # every event once: the processor's table, the detector's


def _select(table: str) -> str:
    if table not in EVENT_TABLES:
        raise ValueError(f"events table: {table!r} is not one of {', '.join(EVENT_TABLES)}")
    return (
        "SELECT event_datetime, tax, shipping, value, items, items_count,"
        f" {LABEL_SQL} AS anomaly, {ANOMALY_KIND_SQL} AS anomaly_kind FROM {table}"
        " WHERE event = 'purchase' AND tax IS NOT NULL AND shipping IS NOT NULL AND value IS NOT NULL"
    )


def _ts(value: datetime) -> str:
    return value.replace(tzinfo=None).isoformat(sep=" ")


def latest_event_time(warehouse_dir: str | os.PathLike[str], table: str = "cloud_run") -> datetime | None:
    _select(table)  # checks the name
    answer = query(warehouse_dir, f"SELECT max(event_datetime) AS t FROM {table} WHERE event = 'purchase'")
    return answer.column("t")[0].as_py()


def training_window(
    warehouse_dir: str | os.PathLike[str],
    *,
    minutes: float,
    max_rows: int,
    end: datetime | None = None,
    since: datetime | None = None,
    table: str = "cloud_run",
) -> pd.DataFrame:
    """The newest purchases within ``minutes`` before ``end`` (default: the newest event) and after
    ``since``, oldest first."""
    end = end or latest_event_time(warehouse_dir, table)
    if end is None:
        return pd.DataFrame(columns=["event_datetime", *FEATURES, "items", "items_count", "anomaly", "anomaly_kind"])
    sql = (
        f"SELECT * FROM ({_select(table)} AND event_datetime <= TIMESTAMP '{_ts(end)}'"
        f" AND event_datetime > TIMESTAMP '{_ts(end)}' - INTERVAL {float(minutes) * 60:.3f} SECOND"
        + (f" AND event_datetime >= TIMESTAMP '{_ts(since)}'" if since else "")
        + f" ORDER BY event_datetime DESC LIMIT {int(max_rows)}) ORDER BY event_datetime"
    )
    return query(warehouse_dir, sql).to_pandas()


def between(
    warehouse_dir: str | os.PathLike[str], start: datetime, end: datetime, *, max_rows: int, table: str = "cloud_run"
) -> pd.DataFrame:
    """Purchases with start <= event_datetime <= end (the newest ``max_rows``)."""
    sql = (
        f"{_select(table)} AND event_datetime >= TIMESTAMP '{_ts(start)}' AND event_datetime <= TIMESTAMP '{_ts(end)}'"
        f" ORDER BY event_datetime DESC LIMIT {int(max_rows)}"
    )
    return query(warehouse_dir, sql).to_pandas()


def oldest(warehouse_dir: str | os.PathLike[str], *, rows: int, table: str = "cloud_run") -> pd.DataFrame:
    return query(warehouse_dir, f"{_select(table)} ORDER BY event_datetime LIMIT {int(rows)}").to_pandas()


def newest(warehouse_dir: str | os.PathLike[str], *, rows: int, table: str = "cloud_run") -> pd.DataFrame:
    return query(warehouse_dir, f"{_select(table)} ORDER BY event_datetime DESC LIMIT {int(rows)}").to_pandas()


def count_since(warehouse_dir: str | os.PathLike[str], since: datetime | None, table: str = "cloud_run") -> int:
    where = f" AND event_datetime > TIMESTAMP '{_ts(since)}'" if since else ""
    answer = query(warehouse_dir, f"SELECT count(*) AS n FROM ({_select(table)}{where})")
    return int(answer.column("n")[0].as_py())


def split_holdout(frame: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Time split: the newest ``fraction`` of the window is held out for evaluation."""
    cut = round(len(frame) * (1 - fraction))
    return frame.iloc[:cut].reset_index(drop=True), frame.iloc[cut:].reset_index(drop=True)
