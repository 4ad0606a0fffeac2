"""Run `hyp detector` as a real process against an emulator: resources, start, metrics, stop.

Shared by the integration tests and benchmarks/detector_bench.py.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from services.common import names
from services.common.processes import free_port, stop_group, wait_for
from services.testing.hyp import run_hyp
from services.testing.pubsub import drain

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Resources:
    """A private topic/subscription set on an emulator, so runs never see each other's messages."""

    host: str
    project: str
    suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def name(self, base: str) -> str:
        return f"{base}-{self.suffix}"

    @property
    def events_topic(self) -> str:
        return names.topic(self.project, self.name("events"))

    @property
    def detections_topic(self) -> str:
        return names.topic(self.project, self.name("detections"))

    @property
    def deadletter_topic(self) -> str:
        return names.topic(self.project, self.name("deadletter"))

    @property
    def subscription(self) -> str:
        return names.subscription(self.project, self.name("dataflow"))

    @property
    def detections_subscription(self) -> str:
        return names.subscription(self.project, self.name("detections-sub"))

    @property
    def deadletter_subscription(self) -> str:
        return names.subscription(self.project, self.name("deadletter-sub"))

    def create(self, ack_deadline: int = 60) -> Resources:
        from services.common.pubsub_clients import publisher, subscriber

        pub, sub = publisher(self.host), subscriber(self.host)
        for topic in (self.events_topic, self.detections_topic, self.deadletter_topic):
            pub.create_topic(name=topic)
        sub.create_subscription(
            request={"name": self.subscription, "topic": self.events_topic, "ack_deadline_seconds": ack_deadline}
        )
        sub.create_subscription(name=self.detections_subscription, topic=self.detections_topic)
        sub.create_subscription(name=self.deadletter_subscription, topic=self.deadletter_topic)
        return self


@dataclass
class Detector:
    process: subprocess.Popen
    metrics_url: str
    log_path: Path

    def metrics(self) -> dict[str, float]:
        """Sample name (with labels) -> value from /metrics; {} while it is not up."""
        try:
            text = httpx.get(self.metrics_url, timeout=2.0).text
        except httpx.HTTPError:
            return {}
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                try:
                    out[name] = float(value)
                except ValueError:
                    continue
        return out

    def _alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"detector exited with {self.process.returncode}:\n{self.log()[-3000:]}")

    def events(self) -> float:
        return self.metrics().get("hyp_detector_events_total", 0.0)

    def wait_metric(self, name: str, value: float, timeout: float) -> float:
        """Poll /metrics until sample ``name`` reaches ``value`` (or the timeout); returns the last value seen."""
        seen = 0.0

        def reached() -> bool:
            nonlocal seen
            self._alive()
            seen = self.metrics().get(name, 0.0)
            return seen >= value

        with contextlib.suppress(TimeoutError):  # the caller compares the value it gets
            wait_for(reached, timeout, f"{name} >= {value}", interval=0.1)
        return seen

    def wait_events(self, n: int, timeout: float) -> float:
        """Poll until the detector has handled ``n`` messages (or the timeout); returns the count."""
        return self.wait_metric("hyp_detector_events_total", n, timeout)

    def wait_up(self, timeout: float = 120.0) -> None:
        """Poll /metrics until the detector serves it (its pipeline is being built)."""

        def up() -> bool:
            self._alive()
            return bool(self.metrics())

        try:
            wait_for(up, timeout, "detector metrics", interval=0.1)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}:\n{self.log()[-3000:]}") from None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 90.0) -> int | None:
        return stop_group(self.process, timeout, first=sig)

    def rss_peak_mb(self) -> float | None:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_detector(
    res: Resources, warehouse: Path, workdir: Path, *extra: str, env: dict[str, Any] | None = None
) -> Detector:
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"detector-{uuid.uuid4().hex[:6]}.log"
    args = [
        sys.executable,
        "-m",
        "services.cli",
        "detector",
        "--project",
        res.project,
        "--subscription",
        res.subscription,
        "--detections-topic",
        res.detections_topic,
        "--deadletter-topic",
        res.deadletter_topic,
        "--emulator-host",
        res.host,
        "--warehouse-dir",
        str(warehouse),
        "--metrics-port",
        str(port),
        *extra,
    ]
    full_env = {**os.environ, "PYTHONPATH": str(REPO), "PUBSUB_EMULATOR_HOST": res.host, **(env or {})}
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    return Detector(process, f"http://127.0.0.1:{port}/metrics", log_path)


def publish_events(
    res: Resources,
    count: int,
    *,
    rate: float | None = None,
    seed: int = 7,
    timeout: float = 300,
    extra: tuple[str, ...] = (),
) -> str:
    """Publish with `hyp loadgen` (a separate process, as in the stack); returns its JSON summary line."""
    args = ["loadgen", "--topic", res.events_topic, "--emulator-host", res.host]
    args += ["--count", str(count), "--seed", str(seed), "--no-progress"]
    args += ["--rate", str(rate)] if rate else ["--max"]
    args += list(extra)  # e.g. ("--anomaly-rate", "value_spike=0.3")
    result = run_hyp(*args, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"hyp loadgen failed: {result.stderr[-2000:]}")
    return result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""


def pull_all(host: str, subscription: str, *, idle_s: float = 1.0, limit: float = 60.0) -> list[Any]:
    """Pull and ack everything on a subscription until it stays empty for ``idle_s``."""
    from services.common.pubsub_clients import subscriber

    return drain(subscriber(host), subscription, idle_s=idle_s, limit=limit)
