"""`hyp sql` runs BigQuery ML's model statements on the warehouse, with a progress bar for CREATE MODEL: a real
`hyp sql` process over a warehouse whose table was written by the BigQuery engine (hand-checked k-means as in
test_ml_integration.py: x = 0, 1, 2 | 10, 11, 12, 13 -> centroids 11.5 and 1)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from services.testing.hyp import run_hyp

pytestmark = [
    pytest.mark.integration,
    pytest.mark.local_only("hyp sql is this project's command; the statements are BigQuery ML's"),
]

PROJECT = "proj-a"


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    from services.bigquery import statements
    from services.bigquery.catalog import Catalog
    from services.bigquery.schema import Field

    catalog = Catalog(tmp_path / "warehouse")
    catalog.create_dataset(PROJECT, {"datasetReference": {"projectId": PROJECT, "datasetId": "d"}})
    rows = pa.table({"x": [0.0, 1.0, 2.0, 10.0, 11.0, 12.0, 13.0]})
    statements.write_table(
        catalog, (PROJECT, "d", "t"), (Field("x", "FLOAT"),), rows, "WRITE_EMPTY", "CREATE_IF_NEEDED"
    )
    return tmp_path / "warehouse"


def _sql(warehouse: Path, *args: str):
    return run_hyp("sql", "--warehouse-dir", str(warehouse), "--project", PROJECT, *args, timeout=120)


def test_create_model_shows_progress_then_the_model_answers(warehouse: Path) -> None:
    done = _sql(
        warehouse,
        "CREATE MODEL d.m OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2, STANDARDIZE_FEATURES=FALSE) "
        "AS SELECT x FROM d.t",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "CREATE_MODEL"
    assert "CREATE MODEL" in done.stderr and "100%" in done.stderr and "done" in done.stderr  # the bar, finished
    centroids = _sql(
        warehouse, "--format", "csv", "SELECT centroid_id, numerical_value FROM ML.CENTROIDS(MODEL d.m) ORDER BY 1"
    )
    assert centroids.returncode == 0, centroids.stderr
    assert centroids.stdout.split() == ["centroid_id,numerical_value", "1,11.5", "2,1.0"]
    quiet = _sql(warehouse, "--no-progress", "DROP MODEL d.m")
    assert (quiet.returncode, quiet.stdout.strip(), quiet.stderr) == (0, "DROP_MODEL", "")


def test_a_refused_model_statement_is_one_line_and_exit_2(warehouse: Path) -> None:
    done = _sql(warehouse, "--no-progress", "CREATE MODEL d.m OPTIONS(NUM_CLUSTERS=2) AS SELECT x FROM d.t")
    assert done.returncode == 2
    assert done.stderr.startswith("hyp sql: Option MODEL_TYPE is required")
