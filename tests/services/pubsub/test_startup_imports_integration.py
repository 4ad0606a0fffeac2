"""What the emulator imports to start, and that Google's client still works after it in the same process.

services/pubsub/pb.py loads google.pubsub.v1's message types without google.pubsub_v1's package ``__init__``
(the generated clients: most of the start-up time). Each test runs in a fresh interpreter, where nothing
has imported google.pubsub_v1 yet (this test process has).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.integration,
    pytest.mark.local_only("how the emulator process loads its code; Google's client in the same process"),
]


def run(code: str) -> str:
    """Run ``code`` in a fresh interpreter (this venv, this checkout); its stdout, or the failure."""
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HYP_LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_emulator_without_a_topology_starts_without_the_clients_push_bigquery_or_yaml() -> None:
    out = run(
        """
        import sys
        from services.pubsub.server import Emulator
        from services.pubsub.settings import PubsubSettings

        emulator = Emulator(PubsubSettings(port=0, rest_port=0, topology="none"))
        emulator.start()
        try:
            heavy = ["google.pubsub_v1", "google.api_core.gapic_v1", "google.auth.transport.grpc",
                     "services.pubsub.push", "services.pubsub.bq_delivery", "services.pubsub.storage",
                     "services.pubsub.topology", "yaml"]
            print(sorted(m for m in heavy if m in sys.modules))
        finally:
            emulator.stop()
        """
    )
    assert out.strip() == "[]"


def test_google_client_imported_after_the_emulator_shares_its_types_and_talks_to_it() -> None:
    out = run(
        """
        import os, sys
        from services.pubsub.server import Emulator
        from services.pubsub.settings import PubsubSettings
        from services.pubsub.pb import types

        emulator = Emulator(PubsubSettings(port=0, rest_port=0, topology="none"))
        emulator.start()
        try:
            assert "google.pubsub_v1" not in sys.modules
            import google.pubsub_v1
            import google.pubsub_v1.types.pubsub
            from google.cloud import pubsub_v1

            # one class (and one descriptor) per message, whichever way it was reached
            assert google.pubsub_v1.Topic is types.Topic is google.pubsub_v1.types.Topic
            assert google.pubsub_v1.types.pubsub.PubsubMessage is types.PubsubMessage
            assert google.pubsub_v1.types.schema.Encoding is types.Encoding
            assert pubsub_v1.types.PubsubMessage is types.PubsubMessage

            os.environ["PUBSUB_EMULATOR_HOST"] = f"127.0.0.1:{emulator.port}"
            publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
            topic = publisher.create_topic(name="projects/hyp-test/topics/startup-topic").name
            sub = subscriber.create_subscription(name="projects/hyp-test/subscriptions/startup-sub", topic=topic).name
            publisher.publish(topic, b"hello", k="v").result(timeout=30)
            got = subscriber.pull(subscription=sub, max_messages=1, timeout=30).received_messages
            print(got[0].message.data.decode(), dict(got[0].message.attributes))
        finally:
            emulator.stop()
        """
    )
    assert out.strip() == "hello {'k': 'v'}"


def test_types_come_from_the_imported_package_when_it_was_first() -> None:
    out = run(
        """
        import google.pubsub_v1
        from services.pubsub.pb import types
        print(types.Topic is google.pubsub_v1.Topic, types.PullResponse is google.pubsub_v1.PullResponse)
        """
    )
    assert out.strip() == "True True"


def test_an_unknown_name_is_an_attribute_error() -> None:
    out = run(
        """
        from services.pubsub.pb import types
        try:
            types.NoSuchMessage
        except AttributeError as exc:
            print("AttributeError", exc)
        """
    )
    assert out.startswith("AttributeError") and "NoSuchMessage" in out
