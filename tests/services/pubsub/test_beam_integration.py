"""An Apache Beam streaming pipeline (BundleBasedDirectRunner) reads and writes through the emulator."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.processes import wait_for
from services.testing.pubsub import pull
from tests.fixtures.pubsub import REPO, EmulatorProcess, unique

pytestmark = pytest.mark.integration
WAIT_S = 90.0

# Runs in a child process (Beam reads PUBSUB_EMULATOR_HOST from its environment): upper-cases each
# message, keeps its attributes, adds one.
PIPELINE = """
import sys
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

source, sink = sys.argv[1], sys.argv[2]
options = PipelineOptions(runner="BundleBasedDirectRunner")
options.view_as(StandardOptions).streaming = True
with beam.Pipeline(options=options) as p:
    (
        p
        | beam.io.ReadFromPubSub(subscription=source, with_attributes=True)
        | beam.Map(lambda m: beam.io.PubsubMessage(m.data.upper(), {**m.attributes, "via": "beam"}))
        | beam.io.WriteToPubSub(sink, with_attributes=True)
    )
"""


def test_beam_reads_and_writes_through_the_emulator(pubsub_emulator: EmulatorProcess, tmp_path: Path) -> None:
    publisher, client = pubsub_emulator.publisher(), pubsub_emulator.subscriber()
    source_topic, sink_topic = pubsub_emulator.topic_path(unique("in")), pubsub_emulator.topic_path(unique("out"))
    source_sub, sink_sub = (
        pubsub_emulator.subscription_path(unique("in")),
        pubsub_emulator.subscription_path(unique("out")),
    )
    for topic in (source_topic, sink_topic):
        publisher.create_topic(name=topic)
    client.create_subscription(name=source_sub, topic=source_topic)
    client.create_subscription(name=sink_sub, topic=sink_topic)

    log = tmp_path / "beam.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", PIPELINE, source_sub, sink_topic],
            cwd=REPO,
            env={**pubsub_emulator.env(), "PYTHONPATH": str(REPO)},
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    try:
        for f in [publisher.publish(source_topic, f"event-{i}".encode(), n=str(i)) for i in range(10)]:
            f.result(timeout=20)
        got: dict[bytes, dict[str, str]] = {}

        def ten_arrived() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            got.update((m.message.data, dict(m.message.attributes)) for m in pull(client, sink_sub, 100, timeout=0))
            return len(got) >= 10

        with contextlib.suppress(TimeoutError):  # the assertion below says what is missing
            wait_for(ten_arrived, WAIT_S, "10 events through the pipeline", interval=0.05)
        assert set(got) == {f"EVENT-{i}".encode() for i in range(10)}, log.read_text()[-3000:]
        assert all(a["via"] == "beam" and a["n"] == k.decode().split("-")[1] for k, a in got.items())
    finally:
        proc.kill()
        proc.wait(timeout=10)
