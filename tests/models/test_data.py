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


def test_a_jsonl_file_from_the_load_generator_reads_as_labelled_purchases(tmp_path: Path, capsys) -> None:
    from loadgen.__main__ import main as loadgen

    out = tmp_path / "events.jsonl"
    assert (
        loadgen(
            [
                "--to",
                "jsonl",
                "--count",
                "3000",
                "--max",
                "--seed",
                "5",
                "--anomaly-rate",
                "value_spike=0.1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    messages = [json.loads(line) for line in out.read_text().splitlines()]
    bought = [m for m in messages if m["data"]["event"] == "purchase"]
    got = data.from_file(out)
    assert len(got) == len(bought) > 200  # views and carts are left out
    assert got["anomaly"].tolist() == [m["attributes"]["anomaly"] for m in bought]
    assert got["value"].tolist() == [m["data"]["ecommerce"]["purchase"]["value"] for m in bought]
    assert {"", "value_spike"} <= set(got["anomaly_kind"]) and (got["anomaly"] == "1").sum() > 20
    trained = training.fit("envelope", got)  # labelled: the f1 threshold, fit on the normal rows
    assert trained.threshold_method.startswith("max-f1")


def test_flat_jsonl_rows_and_bad_lines(tmp_path: Path) -> None:
    flat = tmp_path / "rows.jsonl"
    flat.write_text('{"tax": 1.0, "shipping": 0.0, "value": 5.0}\n\n{"tax": 2.0, "shipping": 4.9, "value": 9.0}\n')
    assert data.from_file(flat)[["tax", "value"]].to_dict("list") == {"tax": [1.0, 2.0], "value": [5.0, 9.0]}
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"tax": 1.0}\nnot json\n')
    with pytest.raises(ModelInputError, match=r"--eval-data: .*bad.jsonl line 2: not JSON"):
        data.from_file(bad, "--eval-data")
    text = tmp_path / "rows.txt"
    text.write_text("tax,shipping,value\n")
    with pytest.raises(ModelInputError, match=r"--data: expected a .parquet, .csv, .jsonl file"):
        data.from_file(text)
