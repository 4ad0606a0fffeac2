"""The compose profile ``flink``: the detector on Apache Flink through Beam's portable runner, reading Kafka.

This module is the profile's one definition (images, commands, wiring); services/stack/profiles.py renders
it into docker-compose.yml (the stack owns compose; the detector's side is its command line).
How the parts fit (docs/detector.md, "Flink + Kafka"):

* ``flink-jobmanager`` / ``flink-taskmanager``: Flink :data:`FLINK_VERSION`, one Beam 2.77 supports
  (Beam's ``FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS``: 1.19, 1.20, 2.0-2.2);
* ``beam-job-server``: Beam's Flink job server for that Flink version; it takes the portable job on
  :data:`JOB_PORT` and submits it to the job manager. The detector reaches it with ``--job_endpoint``,
  so the SDK never starts a job server of its own (which would download a jar and need Java);
* ``beam-sdk-harness``: the Python SDK harness as a worker pool (Beam's ``worker_pool_main``) in our app
  image, sharing the task manager's network namespace, so the runner's EXTERNAL environment reaches it at
  ``localhost:50000`` and the harness reaches the runner's control and data services on ``localhost``.
  The task manager has no Docker, so Beam's default DOCKER environment cannot run there;
  The DoFns (publish, warehouse files, model) run in this container, so the renderer must give it the
  detector's environment and volumes (Pub/Sub emulator, MLflow, ``/data/warehouse``);
* ``detector-flink``: `hyp detector` submitting the pipeline (``--runner PortableRunner``);
* ``loadgen-kafka``: `hyp loadgen --to kafka` writing the events to Kafka, which the detector reads with a
  Python-only read (services/detector/kafka_read.py: no Java expansion service needed);
* ``kafka``: a single-node KRaft broker.
"""

from __future__ import annotations

from typing import Any

PROFILE = "flink"
BEAM_VERSION = "2.77.0"

FLINK_VERSION = "1.20"
FLINK_IMAGE = "flink:1.20.1-scala_2.12-java11"
BEAM_JOB_SERVER_IMAGE = f"apache/beam_flink{FLINK_VERSION}_job_server:{BEAM_VERSION}"
KAFKA_IMAGE = "apache/kafka:3.8.0"
KAFKA_BOOTSTRAP = "kafka:9092"
KAFKA_TOPIC = "hyp-pubsub-topic"
JOB_PORT = 8099  # the job server's job service (artifact service: 8098, expansion: 8097)
WORKER_POOL_PORT = 50000
FLINK_CONF = "jobmanager.rpc.address: flink-jobmanager\ntaskmanager.numberOfTaskSlots: 2\nrest.port: 8081\n"


def detector_command(metrics_port: int) -> tuple[str, ...]:
    """`hyp` arguments of ``detector-flink``: submit to the job server, run the SDK harness in the sidecar."""
    return (
        "detector",
        "--runner",
        "PortableRunner",
        "--job_endpoint",
        f"beam-job-server:{JOB_PORT}",
        "--environment_type",
        "EXTERNAL",
        "--environment_config",
        f"localhost:{WORKER_POOL_PORT}",
        "--source",
        "kafka",
        "--kafka-bootstrap",
        KAFKA_BOOTSTRAP,
        "--kafka-topic",
        KAFKA_TOPIC,
        "--metrics-port",
        str(metrics_port),
    )


def loadgen_command(rate: float = 200.0) -> tuple[str, ...]:
    """`hyp` arguments of ``loadgen-kafka``: the events go to Kafka in this profile, not to Pub/Sub."""
    return ("loadgen", "--to", "kafka", "--bootstrap", KAFKA_BOOTSTRAP, "--topic", KAFKA_TOPIC, "--rate", str(rate))


# The SDK harness sidecar runs in the app image, with Python's worker pool as its process, not `hyp`.
HARNESS_ENTRYPOINT = ("python", "-m", "apache_beam.runners.worker.worker_pool_main")
HARNESS_COMMAND = (f"--service_port={WORKER_POOL_PORT}",)


def third_party_services() -> dict[str, dict[str, Any]]:
    """The profile's services that run stock images (compose keys; ``profiles`` is added by the renderer)."""
    return {
        "kafka": {
            "image": KAFKA_IMAGE,
            "environment": {
                "KAFKA_NODE_ID": "1",
                "KAFKA_PROCESS_ROLES": "broker,controller",
                "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
                "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{KAFKA_BOOTSTRAP}",
                "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
                "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@kafka:9093",
                "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
            },
            "healthcheck": {
                "test": ["CMD", "/opt/kafka/bin/kafka-topics.sh", "--bootstrap-server", "localhost:9092", "--list"],
                "interval": "5s",
                "timeout": "10s",
                "retries": 30,
            },
        },
        "flink-jobmanager": {
            "image": FLINK_IMAGE,
            "command": ["jobmanager"],
            "environment": {"FLINK_PROPERTIES": FLINK_CONF},
            "healthcheck": {
                "test": ["CMD", "curl", "-fsS", "http://127.0.0.1:8081/overview"],
                "interval": "5s",
                "timeout": "5s",
                "retries": 30,
            },
        },
        "flink-taskmanager": {
            "image": FLINK_IMAGE,
            "command": ["taskmanager"],
            "environment": {"FLINK_PROPERTIES": FLINK_CONF},
            "depends_on": {"flink-jobmanager": {"condition": "service_healthy"}},
        },
        "beam-job-server": {
            "image": BEAM_JOB_SERVER_IMAGE,
            "command": ["--flink-master=flink-jobmanager:8081", "--job-host=0.0.0.0"],
            "depends_on": {"flink-jobmanager": {"condition": "service_healthy"}},
        },
    }


def app_services(metrics_port: int) -> dict[str, dict[str, Any]]:
    """The profile's services in our app image (the renderer adds image, build, user, environment)."""
    return {
        "beam-sdk-harness": {
            "entrypoint": list(HARNESS_ENTRYPOINT),
            "command": list(HARNESS_COMMAND),
            "network_mode": "service:flink-taskmanager",  # EXTERNAL at localhost:50000, as a pod sidecar
            "depends_on": {"flink-taskmanager": {"condition": "service_started"}},
        },
        "detector-flink": {
            "command": list(detector_command(metrics_port)),
            "depends_on": {
                "kafka": {"condition": "service_healthy"},
                "beam-job-server": {"condition": "service_started"},
                "beam-sdk-harness": {"condition": "service_started"},
            },
        },
        "loadgen-kafka": {
            "command": list(loadgen_command()),
            "depends_on": {"kafka": {"condition": "service_healthy"}},
        },
    }
