"""`hyp detector --runner DataflowRunner --dry_run`: the job Dataflow would get, translated offline (no
credentials, no network), with the stock ReadFromPubSub as its read."""

from __future__ import annotations

import json

import pytest

from services.detector.__main__ import main
from services.detector.dataflow import PUBSUB_READ_URN

IMAGE = "hyp-local/detector-sdk:0.1.0"
ARGS = [
    "--runner", "DataflowRunner", "--dry_run=True", "--no_auth", "--source", "pubsub",
    "--project", "hyp-local-test", "--region", "europe-west1", "--job_name", "hyp-detector",
    "--temp_location", "gs://hyp-local-test-bucket/tmp", "--sdk_container_image", IMAGE,
    "--scorer", "zscore", "--emulator-host", "", "--metrics-port", "0",
]  # fmt: skip


@pytest.mark.gcp_parity("https://cloud.google.com/dataflow/docs/concepts/streaming-with-cloud-pubsub")
def test_dataflow_dry_run_translates_the_job_with_dataflows_pubsub_read(capsys):
    assert main(ARGS) == 0
    job = json.loads(capsys.readouterr().out)
    assert job["streaming"] is True
    assert (job["project"], job["region"], job["job_name"]) == ("hyp-local-test", "europe-west1", "hyp-detector")
    steps = [s["name"] for s in job["steps"]]
    # Dataflow's own Pub/Sub source replaces ReadFromPubSub's SDF: the first step is the runner's read
    assert job["steps"][0] == {"name": "Extract/ReadFromPubSub/Read", "urn": PUBSUB_READ_URN}
    stages = ["Extract/ToMessage", "Extract/ToBatch", "Transform/Parse", "Transform/Scored", "Load/Sink"]
    assert [s for s in steps if s in stages] == stages  # extract -> transform -> load, in graph order
    assert any(s.startswith("Transform/Score/BeamML_RunInference") for s in steps)
    assert not any("ReadPubSubBatches" in s for s in steps)  # the local read is not in a Dataflow job
    assert job["environments"] == [{"urn": "beam:env:docker:v1", "container_image": IMAGE}]


def test_dataflow_dry_run_refuses_the_local_read_by_name(capsys):
    args = [a if a != "pubsub" else "local" for a in ARGS]
    assert main(args) == 2
    assert "--source" in capsys.readouterr().err


@pytest.mark.gcp_parity("https://cloud.google.com/dataflow/docs/guides/build-container-image")
def test_the_sdk_image_is_beams_own_for_our_python_and_beam_with_the_lock_and_our_packages():
    import sys

    import apache_beam

    from services.detector.sdk_image import SDK_BASE_IMAGE, dockerfile

    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert f"apache/beam_python{python}_sdk:{apache_beam.__version__}" == SDK_BASE_IMAGE
    text = dockerfile()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == f"FROM {SDK_BASE_IMAGE}"
    assert "RUN pip install --no-cache-dir -r /opt/hyp/requirements.lock" in lines
    assert {"COPY services/ /opt/hyp/services/", "COPY models/ /opt/hyp/models/"} <= set(lines)
    assert not any(line.startswith(("ENTRYPOINT", "CMD")) for line in lines)  # Beam's boot stays the entrypoint
