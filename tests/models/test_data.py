"""Training data through SQL over the warehouse, labels out of the attributes column."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from models import data, training
from models.errors import ModelInputError
from services.warehouse import append


def test_default_query_reads_purchases_and_their_labels(purchases: pd.DataFrame, tmp_path: Path) -> None:
    rows = purchases.head(400).copy()
    rows["attributes"] = [
        json.dumps({"anomaly": str(a), "anomaly_kind": k, "event": "purchase"})
        for a, k in zip(rows["anomaly"], rows["anomaly_kind"], strict=True)
    ]
    table = rows.drop(columns=["anomaly", "anomaly_kind"])
    append(tmp_path, "cloud_run", pa.Table.from_pandas(table, preserve_index=False))
    view = table.head(1).assign(event="view_item")  # not a purchase: left out
    append(tmp_path, "cloud_run", pa.Table.from_pandas(view, preserve_index=False))
    got = data.from_warehouse(tmp_path)
    assert len(got) == 400
    assert sorted(got["anomaly"].astype(int)) == sorted(rows["anomaly"])
    trained = training.fit("envelope", got)
    assert trained.threshold_method.startswith("max-f1")


def test_bad_sql_and_empty_warehouse(tmp_path: Path) -> None:
    with pytest.raises(ModelInputError, match=r"--sql: .*only SELECT"):
        data.from_warehouse(tmp_path, "DELETE FROM cloud_run")
    empty = data.from_warehouse(tmp_path)
    assert len(empty) == 0
    with pytest.raises(ModelInputError, match="training set is empty"):
        training.fit("kmeans", empty)
