"""The compose profile `flink`, checked where it can be here: its definition, `docker compose config`, the
pipeline built for the portable runner (offline), and the Kafka read against a broker when one is named."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from services.stack import flink

pytestmark = pytest.mark.local_only("the Flink profile: no Google service (Dataflow's counterpart is test_dataflow.py)")

REPO = Path(__file__).resolve().parents[3]
# What the portable Flink runner executes: primitives, plus ParDo (fused into executable stages; splittable
# ParDos expanded by the runner). A cross-language transform (ReadFromKafka) or a Read would show as other URNs.
FLINK_URNS = {
    "beam:transform:impulse:v1",
    "beam:transform:pardo:v1",
    "beam:transform:flatten:v1",
    "beam:transform:group_by_key:v1",
    "beam:transform:reshuffle:v1",
    "beam:transform:window_into:v1",
}


def test_the_profile_pins_a_flink_that_beams_runner_supports_and_wires_the_job_server_and_harness():
    import apache_beam
    from apache_beam.options.pipeline_options import FlinkRunnerOptions

    assert flink.FLINK_VERSION in FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS
    assert flink.FLINK_IMAGE.startswith(f"flink:{flink.FLINK_VERSION}.")
    assert f"apache/beam_flink{flink.FLINK_VERSION}_job_server:{apache_beam.__version__}" == flink.BEAM_JOB_SERVER_IMAGE
    command = flink.detector_command(9464)
    pairs = dict(zip(command[1::2], command[2::2], strict=False))
    assert pairs["--runner"] == "PortableRunner" and pairs["--job_endpoint"] == f"beam-job-server:{flink.JOB_PORT}"
    assert (pairs["--environment_type"], pairs["--environment_config"]) == ("EXTERNAL", "localhost:50000")
    apps = flink.app_services(9464)
    assert apps["beam-sdk-harness"]["network_mode"] == "service:flink-taskmanager"
    assert apps["beam-sdk-harness"]["entrypoint"][-1] == "apache_beam.runners.worker.worker_pool_main"
    assert apps["loadgen-kafka"]["command"][:3] == ["loadgen", "--to", "kafka"]


def _compose(tmp_path: Path) -> dict:
    """The profile's services, rendered as a compose file and resolved by `docker compose config`."""
    services = {}
    for name, service in flink.third_party_services().items():
        services[name] = {**service, "profiles": [flink.PROFILE]}
    for name, service in flink.app_services(9464).items():
        services[name] = {**service, "image": "hyp-local/app:0.1.0", "profiles": [flink.PROFILE]}
    path = tmp_path / "compose.json"  # JSON is YAML: compose reads it
    path.write_text(json.dumps({"name": "hyp-flink-check", "services": services}))
    return _config(["-f", str(path)], tmp_path)


def _config(files: list[str], cwd: Path) -> dict:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI on this machine: `docker compose config` cannot run")
    result = subprocess.run(
        [docker, "compose", *files, "--profile", flink.PROFILE, "config", "--format", "json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0 and "is not a docker command" in result.stderr:
        pytest.skip("the docker CLI has no compose plugin")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _assert_profile(services: dict) -> None:
    assert services["flink-jobmanager"]["image"] == services["flink-taskmanager"]["image"] == flink.FLINK_IMAGE
    assert services["beam-job-server"]["image"] == flink.BEAM_JOB_SERVER_IMAGE
    assert "--flink-master=flink-jobmanager:8081" in services["beam-job-server"]["command"]
    detector = services["detector-flink"]["command"]
    assert detector[detector.index("--job_endpoint") + 1] == "beam-job-server:8099"
    assert detector[detector.index("--environment_type") + 1] == "EXTERNAL"
    harness = services["beam-sdk-harness"]
    assert harness["network_mode"] == "service:flink-taskmanager"
    assert harness["command"] == ["--service_port=50000"]
    assert services["loadgen-kafka"]["command"][:5] == ["loadgen", "--to", "kafka", "--bootstrap", "kafka:9092"]
    for name in ("detector-flink", "loadgen-kafka"):
        assert services[name]["depends_on"]["kafka"]["condition"] == "service_healthy"


def test_docker_compose_config_accepts_the_profile(tmp_path):
    _assert_profile(_compose(tmp_path)["services"])


def test_the_repositorys_compose_file_has_this_profile():
    _assert_profile(_config([], REPO)["services"])  # rendered from services/stack/flink.py by compose_gen


def test_the_kafka_pipeline_builds_for_the_portable_runner_with_only_flink_transforms():
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
    from apache_beam.runners.portability.portable_runner import PortableRunner

    from services.detector import pipeline
    from services.detector.__main__ import _beam_args
    from services.detector.options import resolve

    options = PipelineOptions(_beam_args(list(flink.detector_command(0)[1:])))
    options.view_as(StandardOptions).streaming = True
    cfg = resolve(options)
    p = beam.Pipeline(runner=PortableRunner(), options=options)  # built, never run: no job server needed
    pipeline.build(p, cfg)
    proto = p.to_runner_api(default_environment=PortableRunner._create_environment(options))
    leaves = [t for t in proto.components.transforms.values() if not t.subtransforms]
    # a composite with no parts that hands its input on (Create's MaybeReshuffle for one element) is no step
    steps = [t for t in leaves if set(t.outputs.values()) - set(t.inputs.values())]
    assert {t.spec.urn for t in steps} <= FLINK_URNS, {t.unique_name: t.spec.urn for t in steps}
    names = [t.unique_name for t in steps]
    assert "Extract/ReadKafka/Poll" in names and "Load/Sink" in names
    assert any(t.spec.urn == "beam:transform:impulse:v1" for t in steps)  # the read starts from an Impulse
    (env,) = proto.components.environments.values()
    assert env.urn == "beam:env:external:v1" and b"localhost:50000" in env.payload


@pytest.mark.integration
def test_loadgen_writes_and_the_kafka_read_reads_against_a_broker():
    """The profile's two Kafka ends: `hyp loadgen --to kafka` writes, PollKafka reads and commits its group."""
    bootstrap = os.environ.get("HYP_KAFKA_BOOTSTRAP")
    if not bootstrap:
        pytest.skip("HYP_KAFKA_BOOTSTRAP names no broker (no Kafka on this machine)")
    from services.common.events import parse_event
    from services.detector.kafka import ensure_topic
    from services.detector.kafka_read import PollKafka
    from services.testing.hyp import run_hyp

    topic, group, n = f"hyp-test-{uuid.uuid4().hex[:8]}", f"hyp-test-{uuid.uuid4().hex[:8]}", 20
    ensure_topic(bootstrap, topic, partitions=1)
    written = run_hyp("loadgen", "--to", "kafka", "--bootstrap", bootstrap, "--topic", topic,
                      "--count", str(n), "--max", "--no-progress", timeout=120)  # fmt: skip
    assert written.returncode == 0, written.stderr[-2000:]
    read = PollKafka(bootstrap, topic, group)
    read.setup()
    got: list = []
    try:
        for _ in range(100):  # bounded: each poll waits up to POLL_INTERVAL_S
            got += list(read.process(None))
            if len(got) >= n:
                break
        read.finish_bundle()  # commits the group's offsets
    finally:
        read.teardown()
    assert [m.message_id for m in got] == [f"{topic}/0/{i}" for i in range(n)]
    assert all("sent_at" in m.attributes for m in got)  # loadgen's attributes travel as headers
    for message in got:
        parse_event(message.data)  # the events are the workshop's, as on Pub/Sub
    again = PollKafka(bootstrap, topic, group)  # the same group resumes after the committed offsets
    again.setup()
    try:
        assert list(again.process(None)) == []
    finally:
        again.teardown()
