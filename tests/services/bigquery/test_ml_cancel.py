"""Cancelling a CREATE MODEL inside hyp bigquery's job runner (no HTTP): :func:`progress.cancel` on a running
training stops it at its next iteration or epoch, on one still waiting for a worker stops it before it reads
anything; the job ends DONE with errorResult reason ``stopped`` and no model is saved (an existing model that
OR REPLACE would have replaced stays as it was). The cancel is injected at a chosen iteration by wrapping the
job's own progress report (a job watched from outside, as `hyp sql` watches one), so nothing depends on timing.
Through Google's client: test_ml_progress_integration.py."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from services.bigquery.catalog import Catalog
from services.bigquery.errors import BigQueryError
from services.bigquery.jobs import Jobs
from services.bigquery.ml import progress, store

pytestmark = pytest.mark.gcp_parity("https://cloud.google.com/bigquery/docs/reference/rest/v2/jobs/cancel")

PROJECT = "cancel-project"


@pytest.fixture
def jobs(tmp_path: Path) -> Iterator[Jobs]:
    jobs = Jobs(Catalog(tmp_path / "warehouse"))
    jobs.catalog.create_dataset(PROJECT, {"datasetReference": {"projectId": PROJECT, "datasetId": "d"}})
    points = np.random.default_rng(3).normal(size=(400, 2)) * 5
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": points[:, 0], "b": points[:, 1]}), buffer)
    table = {"projectId": PROJECT, "datasetId": "d", "tableId": "t"}
    body = {"configuration": {"load": {"sourceFormat": "PARQUET", "destinationTable": table}}}
    jobs.load(PROJECT, body, buffer.getvalue())
    yield jobs


def _query(jobs: Jobs, sql: str, job_id: str | None = None) -> Any:
    body: dict[str, Any] = {"query": sql, "useLegacySql": False}
    if job_id is not None:
        body["requestId"] = job_id
    return jobs.query(PROJECT, body)


def _cancel_at(report: progress.Progress, job_id: str, iteration: int) -> list[int]:
    """Wrap the job's iteration report: cancel the job when ``iteration`` ends; the iterations seen."""
    seen: list[int] = []
    report_iteration = report.iteration

    def hooked(entry: dict[str, Any]) -> None:
        seen.append(int(entry["iteration"]))
        if entry["iteration"] == iteration:
            assert progress.cancel(PROJECT, job_id) is True  # running: reached at once
        report_iteration(entry)

    report.iteration = hooked  # type: ignore[method-assign]
    return seen


def _stopped(jobs: Jobs, job_id: str, sql: str) -> None:
    with pytest.raises(BigQueryError) as raised:
        _query(jobs, sql, job_id)
    assert (raised.value.reason, raised.value.message) == ("stopped", progress.CANCELLED_MESSAGE)
    resource = jobs.get(PROJECT, job_id).resource
    assert resource["status"]["state"] == "DONE"
    assert resource["status"]["errorResult"]["reason"] == "stopped"


def test_a_running_kmeans_training_stops_at_the_next_iteration_and_saves_nothing(jobs: Jobs) -> None:
    job_id = f"job_{uuid.uuid4().hex}"
    sql = "CREATE MODEL d.km OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=3, MAX_ITERATIONS=20) AS SELECT a, b FROM d.t"
    with progress.job((PROJECT, job_id)) as report:
        seen = _cancel_at(report, job_id, 0)
        _stopped(jobs, job_id, sql)
    assert seen == [0]  # the trainer stopped after the iteration that saw the cancel
    assert not store.exists(jobs.catalog, store.ModelRef(PROJECT, "d", "km"))
    _query(jobs, sql)  # the name is free: the same statement, not cancelled, makes the model
    assert store.exists(jobs.catalog, store.ModelRef(PROJECT, "d", "km"))


def test_a_cancelled_or_replace_keeps_the_model_it_would_have_replaced(jobs: Jobs) -> None:
    _query(jobs, "CREATE MODEL d.km OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=2) AS SELECT a, b FROM d.t")
    before = store.load(jobs.catalog, store.ModelRef(PROJECT, "d", "km"))
    job_id = f"job_{uuid.uuid4().hex}"
    sql = "CREATE OR REPLACE MODEL d.km OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=4) AS SELECT a, b FROM d.t"
    with progress.job((PROJECT, job_id)) as report:
        _cancel_at(report, job_id, 0)
        _stopped(jobs, job_id, sql)
    assert store.load(jobs.catalog, store.ModelRef(PROJECT, "d", "km")) == before


def test_a_job_cancelled_before_it_starts_stops_before_reading(jobs: Jobs) -> None:
    job_id = f"job_{uuid.uuid4().hex}"
    assert progress.cancel(PROJECT, job_id) is False  # not running yet: kept for when it starts
    with progress.job((PROJECT, job_id)) as report:
        _stopped(jobs, job_id, "CREATE MODEL d.km OPTIONS(MODEL_TYPE='KMEANS') AS SELECT a, b FROM d.t")
        assert report.stage is None and report.iterations == []  # stopped before its first stage
    assert not store.exists(jobs.catalog, store.ModelRef(PROJECT, "d", "km"))


def test_an_autoencoder_stops_at_the_next_epoch(jobs: Jobs) -> None:
    pytest.importorskip("tensorflow")
    job_id = f"job_{uuid.uuid4().hex}"
    sql = (
        "CREATE MODEL d.ae OPTIONS(MODEL_TYPE='AUTOENCODER', HIDDEN_UNITS=[4, 2, 4], MAX_ITERATIONS=30) "
        "AS SELECT a, b FROM d.t"
    )
    with progress.job((PROJECT, job_id)) as report:
        seen = _cancel_at(report, job_id, 1)
        _stopped(jobs, job_id, sql)
    assert seen == [0, 1]
    assert not store.exists(jobs.catalog, store.ModelRef(PROJECT, "d", "ae"))
    assert not list(store.folder(jobs.catalog, store.ModelRef(PROJECT, "d", "ae")).glob("*.keras"))
