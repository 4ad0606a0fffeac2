"""Challenge 7: the Beam streaming detector scores with the custom model; its detections say which version.

The check publishes labelled purchases with a run id of its own and reads the detections topic
through a subscription the challenge's start created, until a detection of that run arrives.
"""

from __future__ import annotations

import json
import time
import uuid

from services.labs import registry
from services.labs.challenges import NotYet, kmeans
from services.labs.challenges.common import lab_folder
from services.labs.runtime import LabError, ensure_emulator, ensure_mlflow, log, run_hyp, start_managed
from services.labs.settings import LabSettings

WATCH = "hyp-lab-7-detections"


def custom(s: LabSettings) -> registry.Version | None:
    """The newest custom version (a pyod detector or the autoencoder) of the stack's model, purchase-anomaly."""
    return registry.latest(s, registry.CUSTOM)


def ensure_custom_champion(s: LabSettings) -> None:
    """The detector scores the stack's model's @champion: an iforest trained with `hyp train` on the lab's
    warehouse (the detector loads MLflow models, not challenge 5's prebuilt-container artifact)."""
    want = custom(s)
    if want is None:
        kmeans.ensure_data(s)
        sql = (lab_folder(s, 7) / "solution" / "train.sql").read_text()
        args = ["train", "--model", "iforest", "--param", "n_estimators=100", "--eval-rows", "5000", "--sql", sql]
        run_hyp(s, [*args, "--tracking-uri", s.mlflow_tracking_uri, "--warehouse-dir", str(s.warehouse_dir)])
        want = custom(s)
    if want is not None and registry.champion(s) != str(want.version):
        log(f"$ hyp models promote {want.version}")
        registry.promote(s, want.version, "hyp lab: the detector's custom model")


def start(s: LabSettings) -> None:
    ensure_mlflow(s)
    ensure_custom_champion(s)
    ensure_emulator(s)
    watch(s)


def watch(s: LabSettings) -> str:
    """A subscription on the detections topic for the check (created now, so no detection is missed)."""
    from google.api_core.exceptions import AlreadyExists

    from services.common.pubsub_clients import subscriber

    path = s.subscription_path(f"{WATCH}-{s.detections_topic}")
    sub = subscriber(s.pubsub_emulator_host)
    try:
        sub.create_subscription(name=path, topic=s.topic_path(s.detections_topic), timeout=10)
    except AlreadyExists:
        pass
    finally:
        sub.close()
    return path


def detections(s: LabSettings, path: str, run_id: str, wait_s: float) -> list[dict]:
    from services.common.pubsub_clients import subscriber

    sub = subscriber(s.pubsub_emulator_host)
    found: list[dict] = []
    deadline = time.monotonic() + wait_s
    try:
        while time.monotonic() < deadline and not found:
            response = sub.pull(subscription=path, max_messages=500, timeout=10)
            ack = []
            for m in response.received_messages:
                ack.append(m.ack_id)
                if m.message.attributes.get("run_id") == run_id:
                    found.append({**json.loads(m.message.data), "_attributes": dict(m.message.attributes)})
            if ack:
                sub.acknowledge(subscription=path, ack_ids=ack, timeout=10)
            elif not found:
                time.sleep(0.5)
    finally:
        sub.close()
    return found


def check(s: LabSettings) -> str:
    ensure_emulator(s)
    want = custom(s)
    if want is None:
        raise NotYet(f"there is no custom version of {s.model_name} yet: run `hyp lab start 7`")
    path = watch(s)
    run_id = f"lab7-{uuid.uuid4().hex[:8]}"
    args = ["loadgen", "--to", "pubsub", "--topic", s.events_topic, "--count", "200", "--max", "--seed", "9"]
    args += ["--mix", "purchase=1", "--anomaly-rate", "value_spike=0.1", "--run-id", run_id]
    try:
        run_hyp(s, [*args, "--emulator-host", s.pubsub_emulator_host or "", "--no-progress"])
    except LabError as exc:
        raise NotYet(f"could not publish test events: {exc}") from None
    log(f"published 200 purchases (run {run_id}); waiting up to {s.detection_wait_s:.0f} s for detections")
    found = detections(s, path, run_id, s.detection_wait_s)
    if not found:
        raise NotYet(
            f"no detection of the test run reached {s.detections_topic} within {s.detection_wait_s:.0f} s: "
            "is `hyp detector` "
            f"running against the emulator at {s.pubsub_emulator_host}, reading {s.detector_subscription}?"
        )
    versions = sorted({str(d.get("model_version") or d["_attributes"].get("model_version")) for d in found})
    if versions != [str(want.version)]:
        raise NotYet(
            f"the detector scored with version(s) {', '.join(versions)}, not your custom model v{want.version}: "
            f"is @{s.model_alias} on v{want.version} (`hyp models list`)?"
        )
    return f"the detector found {len(found)} anomalies of the test run with your custom model v{want.version}"


def solve(s: LabSettings) -> None:
    ensure_mlflow(s)
    ensure_custom_champion(s)
    ensure_emulator(s)
    watch(s)
    args = [
        "detector",
        "--emulator-host",
        s.pubsub_emulator_host or "",
        "--subscription",
        s.detector_subscription,
        "--detections-topic",
        s.detections_topic,
        "--tracking-uri",
        s.mlflow_tracking_uri,
        "--warehouse-dir",
        str(s.warehouse_dir),
        "--reload-interval",
        "2",
        "--metrics-port",
        "0",
    ]
    start_managed(s, "detector", args, lambda: None)
