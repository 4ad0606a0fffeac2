"""A deployed custom container that hangs (its process alive, its health route no longer answering): restarted
after a few unanswered health checks in a row, ``:predict`` UNAVAILABLE meanwhile, and given up (reported in
the DeployedModel's status, stopped) when it keeps hanging. Custom containers run as local processes
(``HYP_ENDPOINT_CONTAINERS=local``, the conftest's server; the container is containers.SERVER), through
google-cloud-aiplatform against `hyp endpoint` and `hyp storage` as processes; the checks are made quick (0.3 s
apart, 0.5 s to answer, given up after 2 restarts)."""

from __future__ import annotations

import pytest

from services.common.processes import wait_for
from tests.services.vertex.containers import alive, answers, deployed, pid_of, refusal, status

pytestmark = [pytest.mark.integration]

# this module's `hyp endpoint` (the conftest's endpoint_server): quick liveness checks, given up soon
ENDPOINT_ENV = {
    "HYP_ENDPOINT_CONTAINER_CHECK_INTERVAL_S": "0.3",
    "HYP_ENDPOINT_CONTAINER_PROBE_TIMEOUT_S": "0.5",
    "HYP_ENDPOINT_CONTAINER_LIVENESS_FAILURES": "3",
    "HYP_ENDPOINT_CONTAINER_MAX_RESTARTS": "2",
}


@pytest.mark.gcp_parity("https://cloud.google.com/vertex-ai/docs/predictions/custom-container-requirements")
def test_a_hung_container_is_unavailable_then_restarted(aiplatform, server_script, tmp_path):
    pid_file, once = tmp_path / "pid", tmp_path / "hang-once"
    once.write_text("")
    env = {"PID_FILE": str(pid_file), "HANG_ONCE_FILE": str(once), "HANG_AFTER": "3"}
    with deployed(aiplatform, server_script, "hangs-once", env) as (_, endpoint):
        first = pid_of(pid_file)
        assert not once.exists()  # the first server is armed: its health route hangs after 3 requests
        refused = wait_for(lambda: refusal(endpoint), 30, what="predict to be refused while the server hangs")
        assert "did not answer" in refused
        wait_for(lambda: pid_of(pid_file) != first and answers(endpoint), 60, what="the restart")
        assert not alive(first)  # the hung process was stopped, not left beside the new one
        up = status(endpoint)
        assert up.available_replica_count == 1
        assert "restarted 1x" in up.message and "alive but not answering" in up.message
        second = pid_of(pid_file)
        for _ in range(20):  # the restarted server is not armed: it keeps answering
            assert answers(endpoint)
        assert pid_of(pid_file) == second


@pytest.mark.local_only("Kubernetes under Vertex would keep restarting it, at a 5-minute pace; here it is given up")
def test_a_container_that_keeps_hanging_is_given_up_and_reported(aiplatform, server_script, tmp_path):
    pid_file = tmp_path / "pid"
    env = {"PID_FILE": str(pid_file), "HANG_ALWAYS": "1", "HANG_AFTER": "3"}
    with deployed(aiplatform, server_script, "hangs-always", env) as (_, endpoint):
        first = pid_of(pid_file)
        down = wait_for(
            lambda: (s := status(endpoint)) and "the deployment failed" in s.message and s,
            90,
            what="the deployment to be reported failed",
        )
        assert down.available_replica_count == 0 and "kept failing (2 restarts" in down.message
        last = pid_of(pid_file)
        assert last != first and not alive(last) and not alive(first)  # restarted, then stopped for good
        message = refusal(endpoint)
        assert message and "the deployment failed" in message and "Undeploy it" in message
        assert "the deployment failed" in status(endpoint).message  # not restarted again
        assert pid_of(pid_file) == last
