"""AUTOENCODER and PCA training progress, and cancelling a running CREATE MODEL, through Google's client against
a real `hyp bigquery`: an autoencoder's job shows one ``iterationResults`` entry per finished epoch while it runs
(``client.get_job``), and ML.TRAINING_INFO answers the same epochs afterwards; a PCA's job and ML.TRAINING_INFO
show its one iteration; ``job.cancel()`` on a running training ends the job DONE with errorResult reason
``stopped`` (``job.cancelled()``) and leaves no model.
"""

from __future__ import annotations

import io
import time
import uuid
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.api_core import exceptions
from google.cloud import bigquery

from tests.services.bigquery.conftest import PROJECT

pytestmark = [
    pytest.mark.integration,
    pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/rest/v2/Job#MlStatistics"),
]

ROWS = 10_000


@pytest.fixture
def points(client, dataset) -> str:
    """Three correlated features, loaded as one Parquet file."""
    rng = np.random.default_rng(11)
    base = rng.normal(size=(ROWS, 2))
    table = pa.table({"a": base[:, 0], "b": base[:, 1], "c": base[:, 0] + 0.1 * rng.normal(size=ROWS)})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    buffer.seek(0)
    config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET)
    client.load_table_from_file(buffer, f"{PROJECT}.{dataset}.points", job_config=config).result(timeout=120)
    return f"{dataset}.points"


def _ml(job: Any) -> dict:
    return job._properties.get("statistics", {}).get("query", {}).get("mlStatistics", {})  # no accessor for it


def _watch(client, job_id: str, until: Any = None, timeout_s: float = 300) -> list[tuple[str, list[dict]]]:
    """(state, iterationResults) of each look at the job until it is DONE (or ``until(job)`` says stop)."""
    seen: list[tuple[str, list[dict]]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = client.get_job(job_id)
        seen.append((job.state, list(_ml(job).get("iterationResults", []))))
        if job.state == "DONE" or (until is not None and until(job)):
            return seen
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} still running after {timeout_s} s")


def _training_info(client, model: str) -> list[dict]:
    rows = client.query_and_wait(f"SELECT iteration, loss, duration_ms FROM ML.TRAINING_INFO(MODEL {model})")
    return sorted((dict(r) for r in rows), key=lambda r: r["iteration"])


def test_autoencoder_epochs_show_while_it_trains_and_in_training_info(client, dataset, points) -> None:
    pytest.importorskip("tensorflow")
    epochs = 6
    job_id = f"ae_{uuid.uuid4().hex}"
    client.query(
        f"CREATE MODEL {dataset}.ae OPTIONS(MODEL_TYPE='AUTOENCODER', HIDDEN_UNITS=[6, 2, 6], "
        f"MAX_ITERATIONS={epochs}) AS SELECT a, b, c FROM {points}",
        job_id=job_id,
        job_retry=None,
    )
    seen = _watch(client, job_id)
    final = _ml(client.get_job(job_id))
    assert final["modelType"] == "AUTOENCODER" and final["maxIterations"] == str(epochs)
    done = final["iterationResults"]
    assert [int(r["index"]) for r in done] == list(range(epochs))
    running = [results for state, results in seen if state == "RUNNING"]
    assert all(results == done[: len(results)] for results in running)  # each look: the epochs ended so far
    assert any(0 < len(results) < epochs for results in running)  # seen growing, one epoch at a time
    info = _training_info(client, f"{dataset}.ae")
    assert [r["iteration"] for r in info] == list(range(epochs))
    assert [r["loss"] for r in info] == pytest.approx([r["trainingLoss"] for r in done])
    assert all(r["duration_ms"] >= 0 for r in info)
    results = client.get_model(f"{dataset}.ae").training_runs[0]["results"]
    assert [int(r["index"]) for r in results] == list(range(epochs))


def test_pca_reports_its_one_iteration(client, dataset, points) -> None:
    job_id = f"pca_{uuid.uuid4().hex}"
    client.query(
        f"CREATE MODEL {dataset}.pc OPTIONS(MODEL_TYPE='PCA', NUM_PRINCIPAL_COMPONENTS=2) "
        f"AS SELECT a, b, c FROM {points}",
        job_id=job_id,
        job_retry=None,
    ).result(timeout=120)
    final = _ml(client.get_job(job_id))
    assert final["modelType"] == "PCA"
    (only,) = final["iterationResults"]
    info = _training_info(client, f"{dataset}.pc")
    assert [r["iteration"] for r in info] == [0] and int(only["index"]) == 0
    assert info[0]["loss"] == pytest.approx(only["trainingLoss"])
    # the loss is the mean reconstruction error of the training rows: c ~ a, so two components leave little
    assert 0 <= only["trainingLoss"] < 0.05


def test_cancel_of_a_running_create_model_stops_it_and_leaves_no_model(client, dataset, points) -> None:
    pytest.importorskip("tensorflow")
    job_id = f"cancel_{uuid.uuid4().hex}"
    job = client.query(
        f"CREATE MODEL {dataset}.doomed OPTIONS(MODEL_TYPE='AUTOENCODER', MAX_ITERATIONS=40) "
        f"AS SELECT a, b, c FROM {points}",
        job_id=job_id,
        job_retry=None,
    )
    _watch(client, job_id, until=lambda j: bool(_ml(j).get("iterationResults")))  # training: an epoch ended
    assert client.cancel_job(job_id).job_id == job_id
    seen = _watch(client, job_id)
    job.reload()
    assert job.state == "DONE" and job.cancelled()
    assert job.error_result["reason"] == "stopped"
    assert job.error_result["message"].startswith("Job execution was cancelled")
    assert len(seen[-1][1]) < 40  # stopped before its last epoch
    with pytest.raises(exceptions.NotFound):
        client.get_model(f"{dataset}.doomed")
