"""The Pub/Sub emulator as a plain subprocess (no Docker), and the resources tests make on it.

:func:`start_emulator` runs ``hyp pubsub`` on free 127.0.0.1 ports and waits (bounded) until it answers;
:class:`EmulatorProcess` hands out Google's own clients pointed at it (never through ``os.environ``).
:func:`topic_and_subscription` makes a private pair, :func:`pull` and :func:`drain` read a subscription
with bounded waits. For the emulator in a container see :class:`services.testing.stack.HypStack`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from services.common import names
from services.common.processes import stop_group, wait_for

if TYPE_CHECKING:
    from google.cloud.pubsub_v1 import PublisherClient, SubscriberClient
    from google.pubsub_v1 import types

# The folder that holds the ``services`` package: the repository in a checkout, site-packages when installed.
REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
# Where the default topology's push subscription delivers in a test: a closed port, so no test gets stray pushes.
NOWHERE = "http://127.0.0.1:9/"


def unique(prefix: str) -> str:
    """A resource id no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class PubsubTarget:
    """Resource names and Google's clients for an emulator at ``pubsub_host`` serving ``project``: shared by
    the emulator subprocess (:class:`EmulatorProcess`) and the stack in containers (``HypStack``)."""

    project: str

    @property
    def pubsub_host(self) -> str:
        """What PUBSUB_EMULATOR_HOST would be: ``127.0.0.1:PORT``."""
        raise NotImplementedError

    def topic_path(self, topic: str) -> str:
        return names.topic(self.project, topic)

    def subscription_path(self, subscription: str) -> str:
        return names.subscription(self.project, subscription)

    def snapshot_path(self, snapshot: str) -> str:
        return names.project_resource(self.project, names.SNAPSHOTS, snapshot)

    def publisher(self, **kwargs: Any) -> PublisherClient:
        from services.common.pubsub_clients import publisher

        return publisher(self.pubsub_host, **kwargs)

    def subscriber(self, **kwargs: Any) -> SubscriberClient:
        from services.common.pubsub_clients import subscriber

        return subscriber(self.pubsub_host, **kwargs)


@dataclass
class EmulatorProcess(PubsubTarget):
    host: str  # "127.0.0.1:PORT", what PUBSUB_EMULATOR_HOST takes
    rest_url: str  # "http://127.0.0.1:PORT": REST, GET / health, /metrics, /admin/state
    project: str
    process: subprocess.Popen[bytes]
    log_path: Path
    data_dir: Path | None = None

    @property
    def pubsub_host(self) -> str:
        return self.host

    def env(self) -> dict[str, str]:
        """Environment for a child process that should use this emulator."""
        return {**os.environ, "PUBSUB_EMULATOR_HOST": self.host, "HYP_PROJECT": self.project}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, *, kill: bool = False) -> int | None:
        """SIGTERM (or SIGKILL with kill=True) and wait; returns the exit code."""
        return stop_group(self.process, timeout=10.0, first=signal.SIGKILL if kill else signal.SIGTERM)


def start_emulator(
    workdir: Path,
    *,
    topology: str | Path = "default",
    data_dir: Path | None = None,
    project: str = "hyp-local",
    extra_env: dict[str, str] | None = None,
) -> EmulatorProcess:
    """Start ``hyp pubsub`` on free ports and wait (bounded) until ``GET /`` answers ``Ok.``."""
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"pubsub-{uuid.uuid4().hex[:6]}.log"
    args = [sys.executable, "-m", "services.cli", "pubsub", "--host", "127.0.0.1", "--port", "0", "--rest-port", "0"]
    if topology != "default":
        args += ["--topology", str(topology)]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "HYP_PROJECT": project,
        "HYP_LOG_LEVEL": "INFO",
        "HYP_PROCESSOR_PUSH_ENDPOINT": NOWHERE,
        # the topology's BigQuery subscription writes nowhere unless the test names its own hyp bigquery
        "BIGQUERY_EMULATOR_HOST": NOWHERE.rstrip("/"),
        **(extra_env or {}),
    }
    env.pop("PUBSUB_EMULATOR_HOST", None)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

    def serving() -> EmulatorProcess | None:
        if process.poll() is not None:
            raise RuntimeError(f"hyp pubsub exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        for line in log_path.read_text(errors="replace").splitlines():
            if '"pubsub emulator serving"' in line:
                entry = json.loads(line)
                try:
                    if httpx.get(f"http://{entry['rest']}/", timeout=1.0).text == "Ok.":
                        return EmulatorProcess(
                            entry["grpc"], f"http://{entry['rest']}", project, process, log_path, data_dir
                        )
                except httpx.HTTPError:
                    pass
        return None

    try:
        return wait_for(serving, START_TIMEOUT_S, "hyp pubsub to answer GET /", interval=0.05)
    except TimeoutError as exc:
        stop_group(process, timeout=10.0)
        raise RuntimeError(f"{exc}:\n{log_path.read_text()[-3000:]}") from None


def topic_and_subscription(emulator: PubsubTarget, **subscription_fields: Any) -> tuple[str, str]:
    """A new topic and one subscription on it (fields as in the API's Subscription), both with unique names."""
    topic = emulator.topic_path(unique("t"))
    sub = emulator.subscription_path(unique("s"))
    emulator.publisher().create_topic(name=topic)
    emulator.subscriber().create_subscription(request={"name": sub, "topic": topic, **subscription_fields})
    return topic, sub


def pull(
    client: SubscriberClient, subscription: str, want: int, *, timeout: float = 20.0, ack: bool = True
) -> list[types.ReceivedMessage]:
    """Pull until ``want`` messages arrived or ``timeout`` passed, at least once (``timeout=0``: one pull);
    acknowledge them unless ``ack`` is False."""
    got: list[types.ReceivedMessage] = []
    deadline = time.monotonic() + timeout
    while True:
        got += _pull_once(client, subscription, want - len(got), ack)
        if len(got) >= want or time.monotonic() >= deadline:
            return got


def drain(
    client: SubscriberClient, subscription: str, *, idle_s: float = 1.0, limit: float = 60.0
) -> list[types.PubsubMessage]:
    """Pull and acknowledge everything until the subscription stays empty for ``idle_s`` (at most ``limit``)."""
    out: list[types.PubsubMessage] = []
    deadline = time.monotonic() + limit
    quiet_since = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - quiet_since < idle_s:
        received = _pull_once(client, subscription, 1000, ack=True)
        if received:
            out.extend(rm.message for rm in received)
            quiet_since = time.monotonic()
        else:
            time.sleep(0.05)
    return out


def _pull_once(client: SubscriberClient, subscription: str, max_messages: int, ack: bool) -> list[Any]:
    response = client.pull(request={"subscription": subscription, "max_messages": max_messages}, timeout=5)
    received = list(response.received_messages)
    if ack and received:
        client.acknowledge(request={"subscription": subscription, "ack_ids": [rm.ack_id for rm in received]})
    return received
