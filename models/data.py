"""Where training and evaluation rows come from: SQL over the warehouse (as the workshop), or a file.

The default query reads purchases from ``cloud_run`` with their labels, which travel in the
``attributes`` JSON column (copied from the Pub/Sub message attributes), never in the payload.
Generating rows is the caller's choice, not the model package's: ``hyp train --generate`` asks the
load generator (services/training/generated.py), and a file made by ``hyp loadgen --to jsonl``
reads here as the same purchases with the same labels.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from models.errors import ModelInputError
from services.common.names import ANOMALY_KIND_SQL, attribute_sql

# ``anomaly`` stays the attribute's text ("0"/"1", NULL when a row has no label) rather than
# names.LABEL_SQL's boolean: an unlabelled warehouse must read as unlabelled (models.evaluation.labels_of),
# not as "every row normal".
DEFAULT_SQL = f"""
SELECT tax, shipping, value, items, items_count,
       {attribute_sql("anomaly")} AS anomaly,
       {ANOMALY_KIND_SQL} AS anomaly_kind
FROM cloud_run
WHERE event = 'purchase'
""".strip()

FILE_TYPES = (".parquet", ".csv", ".jsonl")


def from_warehouse(warehouse_dir: str | os.PathLike[str], sql: str = DEFAULT_SQL, flag: str = "--sql") -> pd.DataFrame:
    """Run SQL over the warehouse (DuckDB) and return its rows; ModelInputError for a bad query."""
    from services.warehouse.query import query
    from services.warehouse.tables import WarehouseError

    try:
        return query(warehouse_dir, sql, read_only=True).to_pandas()
    except WarehouseError as exc:
        raise ModelInputError(f"{flag}: {exc}") from None


def from_file(path: str | os.PathLike[str], flag: str = "--data") -> pd.DataFrame:
    """Rows from a Parquet, CSV or JSON-lines file (tax, shipping, value, optional items and labels).

    JSON lines are either flat rows or Pub/Sub-shaped messages ``{"data": <event>, "attributes": {...}}``
    as ``hyp loadgen --to jsonl`` writes them: those keep their purchases, flattened as the warehouse
    stores them, with the labels taken from the attributes.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelInputError(f"{flag}: no such file {path}")
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    if path.endswith(".csv"):
        return pd.read_csv(path)
    if path.endswith(".jsonl"):
        return _jsonl(Path(path), flag)
    raise ModelInputError(f"{flag}: expected a {', '.join(FILE_TYPES)} file, got {path}")


def _jsonl(path: Path, flag: str) -> pd.DataFrame:
    from services.common.events import event_row

    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ModelInputError(f"{flag}: {path} line {n}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise ModelInputError(f"{flag}: {path} line {n}: expected a JSON object")
            if not isinstance(obj.get("data"), dict):
                rows.append(obj)
                continue
            event, attributes = obj["data"], obj.get("attributes") or {}
            if event.get("event") != "purchase":
                continue
            try:
                row = event_row(event)
            except (KeyError, ValueError) as exc:
                raise ModelInputError(f"{flag}: {path} line {n}: not an event ({exc})") from None
            rows.append(
                {
                    "tax": row["tax"],
                    "shipping": row["shipping"],
                    "value": row["value"],
                    "items": row["items"],
                    "items_count": row["items_count"],
                    "anomaly": attributes.get("anomaly"),
                    "anomaly_kind": attributes.get("anomaly_kind") or "",
                }
            )
    return pd.DataFrame(rows)
