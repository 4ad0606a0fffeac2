"""Several detector workers on one subscription (as Dataflow's workers share one): two real `hyp detector`
processes on a real emulator, events with labelled anomalies, nothing lost, duplicates counted."""

from __future__ import annotations

import json

import pytest

from services.common.names import LABEL_SQL
from services.detector.metrics import WORKER_ID
from services.detector.workers import worker_specs
from services.warehouse.query import query
from services.warehouse.tables import DETECTOR_TABLE
from tests.services.detector.harness import Detector, Resources, publish_events, pull_all, start_detector
from tests.services.detector.helpers import verdict_table

EVENTS = 6000
EVENTS_TABLE = DETECTOR_TABLE  # the detector's events table
# small batches and a small outstanding window, so one worker cannot pull the whole backlog ahead of the other
WORKER_FLAGS: tuple[str, ...] = ("--scorer", "zscore", "--detector-batch-size", "250", "--max-outstanding", "1000")
WORKER_FLAGS += ("--commit-max-rows", "500", "--compact-interval-s", "0")


def worker_events(det: Detector, worker_id: str) -> float:
    return det.metrics().get(f'hyp_detector_events_total{{{WORKER_ID}="{worker_id}"}}', 0.0)


@pytest.mark.integration
@pytest.mark.timeout(300)
@pytest.mark.gcp_parity("https://cloud.google.com/pubsub/docs/subscription-overview")
def test_two_workers_share_one_subscription_and_lose_nothing(pubsub_emulator, tmp_path, record_property):
    res = Resources(pubsub_emulator.host, pubsub_emulator.project).create()
    warehouse = tmp_path / "warehouse"
    specs = worker_specs(2, extra=WORKER_FLAGS)
    workers = []
    try:
        for spec in specs:  # the launcher's command lines, on free ports instead of theirs
            args = list(spec.args[1:])
            i = args.index("--metrics-port")
            del args[i : i + 2]  # start_detector picks a free port
            workers.append(start_detector(res, warehouse, tmp_path, *args))
        for det in workers:
            det.wait_up()
        publish_events(res, EVENTS, rate=2000, extra=("--anomaly-rate", "value_spike=0.1"))

        def handled() -> float:
            return sum(worker_events(det, spec.worker_id) for det, spec in zip(workers, specs, strict=True))

        from services.common.processes import wait_for

        wait_for(lambda: handled() >= EVENTS, 180, f"{EVENTS} events handled by the two workers", interval=0.5)
        per_worker = {
            spec.worker_id: worker_events(det, spec.worker_id) for det, spec in zip(workers, specs, strict=True)
        }
    finally:
        codes = [det.stop() for det in workers]
    assert codes == [0, 0], [det.log()[-2000:] for det in workers]
    assert all(n > 0 for n in per_worker.values()), f"a worker did nothing: {per_worker}"

    row = query(
        warehouse,
        f"SELECT count(*) AS rows, count(DISTINCT message_id) AS ids FROM {EVENTS_TABLE} WHERE source='detector'",
    ).to_pylist()[0]
    scored = query(
        warehouse,
        f"""SELECT count(DISTINCT e.message_id) AS labelled, count(DISTINCT v.message_id) AS scored
            FROM {EVENTS_TABLE} e LEFT JOIN {verdict_table()} v USING (message_id)
            WHERE {LABEL_SQL.replace("attributes", "e.attributes")}""",
    ).to_pylist()[0]
    flagged = {
        r["message_id"] for r in query(warehouse, f"SELECT message_id FROM {verdict_table()} WHERE anomaly").to_pylist()
    }
    detections = pull_all(res.host, res.detections_subscription)
    published = {json.loads(m.data)["message_id"] for m in detections}
    duplicates = row["rows"] - row["ids"]
    record_property("duplicates", duplicates)
    record_property("per_worker", per_worker)
    print(
        f"\ntwo workers: {EVENTS} events, {row['ids']} distinct in the warehouse, {duplicates} duplicate rows, "
        f"{len(detections) - len(published)} duplicate detections; per worker {per_worker}; "
        f"{scored['labelled']} labelled anomalies, all scored: {scored['scored'] == scored['labelled']}"
    )
    assert row["ids"] == EVENTS  # every event handled at least once, by one worker or the other
    assert scored["labelled"] > 0 and scored["scored"] == scored["labelled"]  # every labelled anomaly has a verdict
    assert published == flagged  # every anomaly flagged reached hyp-detections, from whichever worker
    # duplicates only come from redelivery (a lease that expired); leases are extended, so there should be few
    assert duplicates <= EVENTS // 100, f"{duplicates} duplicate rows"


# --- fast tier: the launcher's specs, the worker label, the setting ----------------------------------------------


@pytest.mark.local_only("the command lines hyp up starts for --detector-workers N")
def test_worker_specs_one_keeps_the_single_detector_two_get_ids_and_ports():
    (one,) = worker_specs(1, metrics_port=9464)
    assert one.args == ("detector", "--metrics-port", "9464") and one.worker_id == ""
    specs = worker_specs(3, metrics_port=9500, extra=("--scorer", "zscore"))
    assert [s.worker_id for s in specs] == ["0", "1", "2"]
    assert [s.metrics_url() for s in specs] == [f"http://127.0.0.1:{p}/metrics" for p in (9500, 9501, 9502)]
    assert specs[1].args == ("detector", "--worker-id", "1", "--metrics-port", "9501", "--scorer", "zscore")
    for bad in (0, 65):
        with pytest.raises(ValueError, match=r"1\.\.64"):
            worker_specs(bad)
    with pytest.raises(ValueError, match="65535"):
        worker_specs(4, metrics_port=65534)


@pytest.mark.local_only("Prometheus exposition of the detector's own metrics")
def test_a_workers_page_labels_every_sample_and_the_unlabelled_registry_stays_readable():
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from services.detector.metrics import DetectorMetrics, labelled

    m = DetectorMetrics()
    m.events.inc(5)
    m.latency.observe(0.02)
    m.model_version.labels("7").set(1)
    text = generate_latest(labelled(m.registry, {WORKER_ID: "1"})).decode()
    samples = [s for family in text_string_to_metric_families(text) for s in family.samples]
    assert samples and all(s.labels.get(WORKER_ID) == "1" for s in samples)
    assert {(s.name, s.value) for s in samples} >= {("hyp_detector_events_total", 5.0)}
    assert any(s.labels == {WORKER_ID: "1", "model_version": "7"} for s in samples)
    assert m.sample("hyp_detector_events_total") == 5.0  # tests' reads keep the unlabelled names
    import socket

    from services.detector.metrics import worker_label

    assert worker_label("3") == "3" and worker_label("") == ""
    assert worker_label("hostname") == socket.gethostname()[:63]  # compose replicas: one command line, own names


@pytest.mark.local_only("hyp detector's --worker-id setting")
def test_worker_id_is_checked_as_a_label_value(monkeypatch):
    from apache_beam.options.pipeline_options import PipelineOptions

    from services.common.config import ConfigError
    from services.detector.options import settings_for

    assert settings_for(PipelineOptions(["--worker-id", "w-1.a"])).worker_id == "w-1.a"
    with pytest.raises(ConfigError) as exc:
        settings_for(PipelineOptions(["--worker-id", "a b"]))
    assert exc.value.name == "--worker-id"
    monkeypatch.setenv("HYP_DETECTOR_WORKER_ID", "x" * 64)
    with pytest.raises(ConfigError) as exc:
        settings_for(PipelineOptions([]))
    assert exc.value.name == "HYP_DETECTOR_WORKER_ID"


@pytest.mark.integration
@pytest.mark.timeout(420)
@pytest.mark.local_only("the MLflow registry alias, polled by each worker (Vertex AI has no such alias)")
def test_a_new_champion_reaches_every_worker_without_a_restart(pubsub_emulator, champion, tmp_path):
    from models.registry import client, set_champion
    from services.common.processes import wait_for
    from services.common.pubsub_clients import publisher
    from services.testing import events

    res = Resources(pubsub_emulator.host, pubsub_emulator.project).create()
    flags = ("--scorer", "champion", "--tracking-uri", champion.tracking_uri, "--reload-interval", "1")
    flags += ("--detector-batch-size", "50", "--max-outstanding", "500", "--commit-max-rows", "100")
    specs = worker_specs(2)
    workers = [start_detector(res, tmp_path / "warehouse", tmp_path, "--worker-id", s.worker_id, *flags) for s in specs]
    pub = publisher(res.host)
    sent = 0

    def publish(n: int) -> None:
        nonlocal sent
        futures = [pub.publish(res.events_topic, json.dumps(events.purchase(40.0 + i % 9)).encode()) for i in range(n)]
        for future in futures:
            future.result(timeout=30)
        sent += n

    def version_of(det: Detector, worker_id: str, version: str) -> bool:
        key = f'hyp_detector_model_version{{model_version="{version}",{WORKER_ID}="{worker_id}"}}'
        return det.metrics().get(key) == 1

    c = client(champion.tracking_uri)
    try:
        for det in workers:
            det.wait_up()
        old = c.get_model_version(champion.model_name, champion.version)
        model_id = getattr(old, "model_id", None) or old.source.rsplit("/", 1)[-1]  # MLflow 3 logged-model id
        new = c.create_model_version(champion.model_name, old.source, run_id=old.run_id, model_id=model_id)
        wait_for(lambda: c.get_model_version(champion.model_name, new.version).status == "READY", 60, "new version")

        def all_on(version: str) -> bool:
            publish(100)  # both workers need batches to score: each reports the version of its last batch
            return all(version_of(d, s.worker_id, version) for d, s in zip(workers, specs, strict=True))

        wait_for(lambda: all_on(str(champion.version)), 120, "both workers scoring with the champion", interval=0.5)
        set_champion(c, new.version, action="manual", reason="workers hot reload test")
        wait_for(lambda: all_on(str(new.version)), 120, "both workers on the new champion", interval=0.5)
        assert all(d.process.poll() is None for d in workers), "a worker restarted instead of hot-reloading"
    finally:
        set_champion(c, champion.version, action="manual", reason="workers hot reload test done")  # session fixture
        codes = [d.stop() for d in workers]
    assert codes == [0, 0], [d.log()[-2000:] for d in workers]
