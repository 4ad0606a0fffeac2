"""Background jobs of services/bigquery/jobs.py in-process, on a real warehouse and the real engine: a CREATE MODEL
inserted with ``answer_running`` comes back RUNNING, shows every k-means iteration while it runs (held before
saving by the model store's lock, which the test holds, so the moment is not a race), and ``results`` waits for it
with a timeout as getQueryResults' ``timeoutMs`` asks; a queue that is full refuses with rateLimitExceeded.

Local only: the stage names and the worker bound are this engine's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from services.bigquery import errors, statements
from services.bigquery.catalog import Catalog
from services.bigquery.jobs import LONG_STATEMENT, Background, Jobs
from services.bigquery.ml import store
from services.bigquery.schema import Field

pytestmark = pytest.mark.local_only("the job machinery's stages and bounds are this engine's")

PROJECT = "proj-a"
CREATE = "CREATE MODEL d.m OPTIONS(MODEL_TYPE='KMEANS', NUM_CLUSTERS=3, MAX_ITERATIONS=4) AS SELECT x, y FROM d.t"


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    catalog = Catalog(tmp_path / "warehouse")
    catalog.create_dataset(PROJECT, {"datasetReference": {"projectId": PROJECT, "datasetId": "d"}})
    rng = np.random.default_rng(0)
    rows = pa.table({"x": rng.normal(size=3000) * 4, "y": rng.normal(size=3000)})
    fields = (Field("x", "FLOAT"), Field("y", "FLOAT"))
    statements.write_table(catalog, (PROJECT, "d", "t"), fields, rows, "WRITE_EMPTY", "CREATE_IF_NEEDED")
    return catalog


@pytest.fixture
def held() -> Iterator[threading.RLock]:
    """The model store's lock, held: a CREATE MODEL trains, then waits before saving until it is let go."""
    store.LOCK.acquire()
    try:
        yield store.LOCK
    finally:
        store.LOCK.release()


def _insert(jobs: Jobs, job_id: str, sql: str = CREATE) -> dict:
    body = {"jobReference": {"jobId": job_id}, "configuration": {"query": {"query": sql, "useLegacySql": False}}}
    return jobs.insert(PROJECT, body).resource


def _stage(jobs: Jobs, job_id: str) -> str | None:
    return jobs.get(PROJECT, job_id).resource["statistics"].get("query", {}).get("hypProgress", {}).get("stage")


def _until_saving(jobs: Jobs, job_id: str) -> None:
    """Bounded poll until the job has trained and waits for the store's lock (it cannot end while it is held)."""
    deadline = time.monotonic() + 120
    while _stage(jobs, job_id) != "SAVING":
        assert time.monotonic() < deadline, "the job did not reach SAVING"
        assert not jobs.get(PROJECT, job_id).wait(0.05), jobs.get(PROJECT, job_id).resource["status"]


def test_create_model_runs_in_the_background_with_its_iterations_visible(catalog: Catalog, held) -> None:
    jobs = Jobs(catalog, answer_running=True)
    first = _insert(jobs, "j1")
    assert first["status"]["state"] in ("PENDING", "RUNNING")
    assert first["configuration"]["jobType"] == "QUERY"
    job = jobs.results(PROJECT, "j1", 0.05)  # getQueryResults with a short timeoutMs: not complete yet
    assert not job.complete
    _until_saving(jobs, "j1")
    running = job.resource  # trained, waiting for the lock before saving: every iteration is there
    assert running["status"]["state"] == "RUNNING"
    assert running["statistics"]["query"]["statementType"] == "CREATE_MODEL"
    ml = running["statistics"]["query"]["mlStatistics"]
    assert ml["modelType"] == "KMEANS" and ml["maxIterations"] == "4"
    assert 1 <= len(ml["iterationResults"]) <= 4
    assert [r["index"] for r in ml["iterationResults"]] == list(range(len(ml["iterationResults"])))
    assert jobs.list_jobs(PROJECT, "RUNNING")[0]["jobReference"]["jobId"] == "j1"
    held.release()
    try:
        done = jobs.results(PROJECT, "j1", 60)
    finally:
        held.acquire()
    assert done.complete and done.error is None
    final = done.resource
    assert final["status"] == {"state": "DONE"}
    assert final["statistics"]["query"]["mlStatistics"]["iterationResults"] == ml["iterationResults"]
    assert int(final["statistics"]["endTime"]) >= int(final["statistics"]["startTime"])
    saved = store.load(catalog, store.ModelRef(PROJECT, "d", "m"))
    results = saved["resource"]["trainingRuns"][0]["results"]
    assert [(r["index"], r["trainingLoss"]) for r in results] == [
        (r["index"], r["trainingLoss"]) for r in ml["iterationResults"]
    ]


def test_without_answer_running_insert_answers_when_done(catalog: Catalog) -> None:
    jobs = Jobs(catalog)
    resource = _insert(jobs, "j2")
    assert resource["status"] == {"state": "DONE"}
    assert resource["statistics"]["query"]["statementType"] == "CREATE_MODEL"


def test_a_failure_in_the_background_is_the_jobs_error_result(catalog: Catalog) -> None:
    jobs = Jobs(catalog, answer_running=True)
    _insert(jobs, "j3", CREATE.replace("MAX_ITERATIONS=4", "MAX_ITERATIONS=4, NO_SUCH_OPTION=1"))
    job = jobs.results(PROJECT, "j3", 60)
    assert job.complete and job.error is not None
    assert job.resource["status"]["errorResult"]["reason"] == "invalidQuery"
    assert "NO_SUCH_OPTION" in job.resource["status"]["errorResult"]["message"]
    with pytest.raises(errors.BigQueryError, match="NO_SUCH_OPTION"):  # jobs.query raises it
        jobs.query(PROJECT, {"query": CREATE.replace("MAX_ITERATIONS=4", "NO_SUCH_OPTION=1"), "timeoutMs": 60000})


def test_a_full_queue_refuses_with_rate_limit_exceeded(catalog: Catalog, held) -> None:
    jobs = Jobs(catalog, answer_running=True, background=Background(workers=1, limit=1))
    _insert(jobs, "a", CREATE)  # the worker takes it and holds before saving
    _until_saving(jobs, "a")
    _insert(jobs, "b", CREATE.replace("d.m", "d.m2"))  # waits for the worker
    with pytest.raises(errors.BigQueryError) as refused:
        _insert(jobs, "c", CREATE.replace("d.m", "d.m3"))
    assert (refused.value.code, refused.value.reason) == (403, "rateLimitExceeded")
    with pytest.raises(errors.BigQueryError):  # a refused job is not kept
        jobs.get(PROJECT, "c")
    held.release()
    try:
        assert jobs.results(PROJECT, "b", 60).complete
    finally:
        held.acquire()


@pytest.mark.parametrize(
    ("sql", "long"),
    [
        ("CREATE MODEL d.m AS SELECT 1", True),
        ("  create or replace model `p.d.m` OPTIONS() AS SELECT 1", True),
        ("-- train\n/* the workshop's */ CREATE MODEL d.m AS SELECT 1", True),
        ("SELECT 'CREATE MODEL'", False),
        ("CREATE TABLE d.model AS SELECT 1", False),
        ("DROP MODEL d.m", False),
    ],
)
def test_which_statements_run_in_the_background(sql: str, long: bool) -> None:
    assert bool(LONG_STATEMENT.match(sql)) is long
