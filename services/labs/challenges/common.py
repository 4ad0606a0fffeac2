"""Helpers the challenges share: copying templates, the warehouse's purchases, a sample to score."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from services.labs.challenges import get
from services.labs.runtime import log
from services.labs.settings import LabSettings


def lab_folder(s: LabSettings, number: int) -> Path:
    return s.labs_root / get(number).folder


def work_folder(s: LabSettings, number: int) -> Path:
    return s.work_dir / get(number).folder


def copy_template(s: LabSettings, number: int) -> Path:
    """Copy labs/<N>-*/template into the work dir, keeping files the participant already has."""
    src, dst = lab_folder(s, number) / "template", work_folder(s, number)
    for path in sorted(src.rglob("*")):
        target = dst / path.relative_to(src)
        if path.is_dir() or "__pycache__" in path.parts:
            continue
        if target.exists():
            log(f"kept your {target}")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        log(f"template: {target}")
    return dst


def copy_solution(s: LabSettings, number: int) -> Path:
    """Overwrite the participant's copy with the reference solution."""
    src, dst = lab_folder(s, number) / "solution", work_folder(s, number)
    for path in sorted(src.rglob("*")):
        if path.is_dir() or "__pycache__" in path.parts:
            continue
        target = dst / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        log(f"solution: {target}")
    return dst


def purchases_in_warehouse(s: LabSettings) -> int:
    from services.warehouse.query import query
    from services.warehouse.tables import WarehouseError

    try:
        t = query(s.warehouse_dir, "SELECT count(*) AS n FROM cloud_run WHERE event = 'purchase'", read_only=True)
    except WarehouseError:
        return 0
    return int(t.column("n")[0].as_py())


def sample_rows(s: LabSettings, n: int = 50) -> Any:
    """A few purchases from the warehouse (generated ones when it has none) to score with a version."""
    import pandas as pd

    from services.warehouse.query import query

    if purchases_in_warehouse(s) >= n:
        sql = f"SELECT tax, shipping, value, items, items_count FROM cloud_run WHERE event = 'purchase' LIMIT {n}"
        return query(s.warehouse_dir, sql, read_only=True).to_pandas()
    from loadgen.dataset import labelled_purchases

    return pd.DataFrame(labelled_purchases(n, 11)[["tax", "shipping", "value", "items", "items_count"]])
