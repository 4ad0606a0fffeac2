"""Challenge 4 on its own, as a participant runs it: the template fails the check, the solution (the
workshop's service, writing with ``bigquery.Client(...).insert_rows_json`` into ``hyp bigquery``) passes,
and its rows are in the warehouse's ``cloud_run_anomaly`` and in ``ecommerce_sink.cloud_run_anomaly``."""

from __future__ import annotations

import pytest

from services.common.processes import stop_group
from services.testing.bigquery import bigquery_client
from tests.fixtures.mlflow import start_mlflow
from tests.services.labs.test_labs_integration import lab, lab_env

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture
def own_registry(tmp_path):
    """A registry of its own: challenge 4 deploys the newest `anomaly_detection` (challenge 1's model), and in the
    session's registry other tests register models of that name trained on other data."""
    server = start_mlflow(tmp_path / "mlflow")
    yield server
    stop_group(server.process)


def test_lab_4_writes_through_the_bigquery_client(tmp_path, pubsub_emulator, own_registry):
    env = lab_env(tmp_path, pubsub_emulator, own_registry)
    try:
        started = lab(env, "start", "4")
        assert started.returncode == 0, f"{started.stdout}\n{started.stderr}"
        before = lab(env, "check", "4")
        assert before.returncode == 1 and "NOT YET challenge 4:" in before.stdout, before.stdout + before.stderr
        assert lab(env, "solve", "4").returncode == 0
        after = lab(env, "check", "4")
        assert after.returncode == 0 and "PASS challenge 4:" in after.stdout, after.stdout + after.stderr
        client = bigquery_client(env["BIGQUERY_EMULATOR_HOST"], env["HYP_PROJECT"])
        (row,) = client.query_and_wait(
            f"SELECT count(*) AS n FROM `{env['HYP_PROJECT']}.ecommerce_sink.cloud_run_anomaly` "
            "WHERE source = 'lab-4' AND model_version IS NOT NULL"
        )
        assert row["n"] >= 54  # the check's purchases (90 % of 60 at least), inserted over the API
    finally:
        reset = lab(env, "reset", timeout=120)
    assert reset.returncode == 0, reset.stderr
