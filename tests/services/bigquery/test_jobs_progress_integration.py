"""A CREATE MODEL job's live progress through Google's client against a real `hyp bigquery`: while the job runs,
``client.get_job`` shows it RUNNING with ``statistics.query.mlStatistics.iterationResults`` growing, one entry per
k-means iteration; when it is done the job says DONE, its iteration results are the model's ``training_runs``,
and ``client.query(...).result()`` works as for any job. A job that fails in the background carries BigQuery's
error in ``status.errorResult``, which the client raises.
"""

from __future__ import annotations

import io
import threading
import time
import uuid

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

ROWS = 200_000
MAX_ITERATIONS = 6


@pytest.fixture
def blobs(client, dataset) -> str:
    """Three features in four clusters, loaded as one Parquet file (a load job)."""
    rng = np.random.default_rng(5)
    centres = rng.normal(0, 6, size=(4, 3))
    points = centres[rng.integers(0, 4, ROWS)] + rng.normal(size=(ROWS, 3))
    buffer = io.BytesIO()
    pq.write_table(pa.table({name: points[:, i] for i, name in enumerate("abc")}), buffer)
    buffer.seek(0)
    config = bigquery.LoadJobConfig(source_format=bigquery.SourceFormat.PARQUET)
    client.load_table_from_file(buffer, f"{PROJECT}.{dataset}.blobs", job_config=config).result(timeout=120)
    return f"{dataset}.blobs"


def _ml(job: bigquery.QueryJob) -> dict:
    return job._properties.get("statistics", {}).get("query", {}).get("mlStatistics", {})  # no accessor for it


def test_create_model_progress_while_it_runs_then_done(client, dataset, blobs) -> None:
    job_id = f"create_{uuid.uuid4().hex}"
    sql = (
        f"CREATE MODEL {dataset}.clusters OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=4, "
        f"MAX_ITERATIONS={MAX_ITERATIONS}) AS SELECT a, b, c FROM {blobs}"
    )
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["rows"] = list(client.query(sql, job_id=job_id, job_retry=None).result(timeout=300))
        except Exception as exc:  # handed to the test's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    seen: list[tuple[str, list[dict]]] = []  # (state, iterationResults) of each look while it runs

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # a bounded poll; between looks, a bounded wait on the query's thread
        try:
            job = client.get_job(job_id)
        except exceptions.NotFound:  # not inserted yet
            worker.join(0.02)
            continue
        seen.append((job.state, list(_ml(job).get("iterationResults", []))))
        if job.state == "DONE":
            break
        worker.join(0.02)
    worker.join(timeout=60)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["rows"] == []
    assert any(state == "RUNNING" for state, _ in seen)
    done = client.get_job(job_id)
    assert done.state == "DONE" and done.error_result is None and done.statement_type == "CREATE_MODEL"
    final = _ml(done)["iterationResults"]
    assert 1 <= len(final) <= MAX_ITERATIONS and [r["index"] for r in final] == list(range(len(final)))
    assert _ml(done)["maxIterations"] == str(MAX_ITERATIONS)
    for state, results in seen:  # every look while running saw a beginning of the final results
        assert state in ("PENDING", "RUNNING", "DONE")
        assert results == final[: len(results)]
    model = client.get_model(f"{PROJECT}.{dataset}.clusters")
    (run_,) = model.training_runs
    assert [(int(r["index"]), r["trainingLoss"]) for r in run_["results"]] == [
        (r["index"], r["trainingLoss"]) for r in final
    ]


def test_a_failing_background_job_reports_its_error(client, dataset) -> None:
    client.query_and_wait(f"CREATE TABLE {dataset}.words AS SELECT 'a' AS w UNION ALL SELECT 'b' AS w")
    job = client.query(
        f"CREATE MODEL {dataset}.bad OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2, KMEANS_BOGUS=1) "
        f"AS SELECT w FROM {dataset}.words"
    )
    with pytest.raises(exceptions.BadRequest, match="KMEANS_BOGUS"):
        job.result(timeout=60)
    again = client.get_job(job.job_id)
    assert again.state == "DONE" and again.error_result["reason"] == "invalidQuery"
    assert "KMEANS_BOGUS" in again.error_result["message"]
    with pytest.raises(exceptions.NotFound):
        client.get_model(f"{PROJECT}.{dataset}.bad")


def test_jobs_insert_answers_at_once_and_get_query_results_waits(client, dataset, blobs) -> None:
    """jobs.insert answers with the job not yet DONE, as BigQuery does; getQueryResults then answers
    ``jobComplete: false`` until it is (the client polls), and ``result()`` ends with the model there."""
    sql = (
        f"CREATE MODEL {dataset}.at_once OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=4, "
        f"MAX_ITERATIONS={MAX_ITERATIONS}) AS SELECT a, b, c FROM {blobs}"
    )
    job = client.query(sql)
    assert job.state in ("PENDING", "RUNNING")
    assert list(job.result(timeout=300)) == []
    assert job.state == "DONE" and job.error_result is None
    assert client.get_model(f"{PROJECT}.{dataset}.at_once").model_type == "KMEANS"
