"""`hyp train` takes its held-out rows from generated purchases, a file or the warehouse (no MLflow here: --no-log)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from models.data import DEFAULT_SQL
from services.training import train_cli
from services.training.generated import labelled
from services.warehouse import append


def _warehouse(tmp_path: Path, n: int) -> Path:
    rows = labelled(n, 21, 0.05)
    rows["attributes"] = [
        json.dumps({"anomaly": str(a), "anomaly_kind": k, "event": "purchase"})
        for a, k in zip(rows["anomaly"], rows["anomaly_kind"], strict=True)
    ]
    rows["event"] = "purchase"
    table = rows.drop(columns=["anomaly", "anomaly_kind"])
    append(tmp_path / "wh", "cloud_run", pa.Table.from_pandas(table, preserve_index=False))
    return tmp_path / "wh"


def test_compare_evaluates_on_warehouse_rows(tmp_path: Path, capsys) -> None:
    warehouse = _warehouse(tmp_path, 600)
    argv = ["--compare", "--models", "envelope", "--no-beam", "--no-log", "--generate", "1000"]
    code = train_cli.main([*argv, "--eval-sql", DEFAULT_SQL, "--warehouse-dir", str(warehouse)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "held-out evaluation: 600 rows of warehouse --eval-sql; trained on 1000 generated rows" in out
    assert "| envelope |" in out


def test_a_bad_held_out_query_is_one_line(tmp_path: Path, capsys) -> None:
    argv = ["--compare", "--no-log", "--generate", "300", "--eval-sql", "DELETE FROM cloud_run"]
    assert train_cli.main([*argv, "--warehouse-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hyp train: --eval-sql: ") and err.count("\n") == 1, err
