"""The loop closed with real parts: Pub/Sub emulator, `hyp detector`, MLflow server, models package,
warehouse, load generator, `hyp endpoint`.

History (a baseline) is written straight into a tmp warehouse; from then on the load generator
publishes to the emulator and the real Beam detector scores the events and writes ``cloud_run``
(labels in ``attributes``) and ``dataflow_anomaly`` (its verdicts, with the scoring version).
A first run makes the workshop's BQML-style k-means @champion; the generator then switches to the
drift scenario's new normal, the drift sensor fires, a challenger trained on the drifted window
wins the gate on drifted held-out rows, @champion moves, and the detector's and the endpoint's
reported versions follow without a restart. Precision and recall on the drifted stream are
measured from the detector's own verdicts, per scoring version, and asserted to recover.
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from services.common import names
from services.common.processes import wait_for
from services.testing.hyp import HypProcess
from tests.services.detector.harness import Resources, start_detector

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(480)]

ANOMALY_RATE = 0.03


def _config(**updates):
    from loadgen.config import DEFAULT_ANOMALY_RATES, GeneratorConfig

    total = sum(DEFAULT_ANOMALY_RATES.values())
    rates = {k: v * ANOMALY_RATE / total for k, v in DEFAULT_ANOMALY_RATES.items()}
    base = {"clock": "simulated", "start": datetime(2026, 11, 22, 6, 0), "sim_rate": 10.0, "mix": {"purchase": 1.0}}
    return GeneratorConfig.build(**{**base, "anomaly_rates": rates, **updates})


def _drift():
    from loadgen.scenario import load

    return load("drift").phases[-1].drift  # the scenario's "new normal"


class Stream:
    """The load generator writing purchases into the warehouse, as the pipeline's writer does."""

    def __init__(self, warehouse: Path) -> None:
        from loadgen.generator import EventGenerator
        from loadgen.sinks.parquet import ParquetSink

        self.gen = EventGenerator(seed=11, config=_config())
        # the baseline goes where the detector's rows go (the orchestrator reads that table here)
        self.sink = ParquetSink(warehouse, self.gen.config.n_users, self.gen.run_id, table="dataflow")

    def write(self, n: int) -> None:
        self.sink.send(self.gen.next_columns(n), time.time())
        self.sink.flush()

    def drift(self) -> None:
        self.gen.configure(self.gen.config.model_copy(update={"drift": _drift()}))


class Publisher:
    """The same generator, live: ``rate`` purchases per second to the emulator, as `hyp loadgen` sends them."""

    def __init__(self, gen, res: Resources, rate: float = 200.0) -> None:  # gen: loadgen EventGenerator
        from loadgen.sinks.pubsub import PubSubSink

        self.gen, self.rate = gen, rate
        self.sink = PubSubSink(res.events_topic, res.host, self.gen.config.n_users, self.gen.run_id)
        self.sent = 0
        self.closed = False
        self.lock = threading.Lock()  # held while a batch is drawn and sent; pause() takes it
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="publisher", daemon=True)

    def _run(self) -> None:
        tick = 0.5
        while not self.stop.wait(tick):
            with self.lock:
                n = int(self.rate * tick)
                self.sink.send(self.gen.next_columns(n), time.time())
                self.sent += n

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join(10)
        if not self.closed:
            self.closed = True
            self.sink.close()


def _settings(tmp_path: Path, tracking_uri: str, model_name: str, **overrides):
    from services.orchestrator.settings import OrchestratorSettings

    base = {
        "data_dir": tmp_path / "orch",
        "warehouse_dir": tmp_path / "warehouse",
        "events_table": "dataflow",  # the detector's table: this loop has no processor writing cloud_run
        "mlflow_tracking_uri": tracking_uri,
        "model_name": model_name,
        "max_rows": 4000,
        "window_minutes": 30.0,
        "min_rows": 1000,
        "window_wait_s": 30.0,
        "retry_backoff_s": 0.2,
        "sensor_interval_s": 0.5,
        "cooldown_s": 0.0,
        "confirm_timeout_s": 90.0,
        "endpoint_url": None,
        "detector_metrics_url": None,
        "webhook_url": None,
    }
    return OrchestratorSettings(_env_file=None).model_copy(update={**base, **overrides})


def _stream_quality(warehouse: Path, onset: datetime) -> dict[str, dict]:
    """Precision/recall of the detector's own verdicts on the drifted stream, per scoring version."""
    from services.warehouse.query import query

    sql = f"""
        SELECT model_version, count(*) AS n,
               count(*) FILTER (WHERE anomaly AND label) AS tp, count(*) FILTER (WHERE anomaly AND NOT label) AS fp,
               count(*) FILTER (WHERE NOT anomaly AND label) AS fn
        FROM (SELECT model_version, anomaly,
                     coalesce(json_extract_string(attributes, '$.anomaly'), '0') = '1' AS label
              FROM dataflow_anomaly
              WHERE event_datetime > TIMESTAMP '{onset.isoformat(sep=" ")}')
        GROUP BY 1"""
    out = {}
    for row in query(warehouse, sql).to_pylist():
        tp, fp, fn = row["tp"], row["fp"], row["fn"]
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        quality = {"precision": precision, "recall": recall, "f1": f1}
        out[row["model_version"]] = {"n": row["n"], "anomalies": tp + fn, **quality}
    return out


def test_drift_retrains_promotes_and_the_consumers_follow(mlflow_server, pubsub_emulator, tmp_path):
    from loadgen.dataset import labelled_purchases
    from models import registry
    from models.training import evaluate_model
    from services.orchestrator import window
    from services.orchestrator.modelops import ModelsPackageOps
    from services.orchestrator.params import RunParams
    from services.orchestrator.runner import Orchestrator
    from services.orchestrator.sensors import Sensors

    model_name = f"orch-it-{uuid.uuid4().hex[:6]}"  # not the session's purchase-anomaly: other tests use it
    warehouse = tmp_path / "warehouse"
    stream = Stream(warehouse)
    stream.write(4000)  # history: the baseline, already in the warehouse
    res = Resources(pubsub_emulator.host, pubsub_emulator.project).create()
    # the detector waits (up to 60 s) for a first @champion: started now, it loads while the first run trains
    detector = start_detector(
        res, warehouse, tmp_path, "--tracking-uri", mlflow_server.tracking_uri, "--model-name", model_name,
        "--reload-interval", "1", "--detector-batch-size", "1000",
    )  # fmt: skip
    # not waited on: the endpoint answers /health once a first @champion exists, which the first run makes
    endpoint = HypProcess(
        "endpoint", "--mlflow-tracking-uri", mlflow_server.tracking_uri, "--model-name", model_name,
        "--reload-interval", "1", log_path=tmp_path / "endpoint.log",
    ).start(wait=False)  # fmt: skip
    endpoint_url = endpoint.url
    publisher = Publisher(stream.gen, res)
    orch = sensors = None
    try:
        settings = _settings(
            tmp_path, mlflow_server.tracking_uri, model_name,
            endpoint_url=endpoint_url, detector_metrics_url=detector.metrics_url,
        )  # fmt: skip
        assert settings.candidates[0] == "envelope", settings.candidates  # the defaults are what is tested
        orch = Orchestrator(settings, ModelsPackageOps(settings))
        sensors = Sensors(orch)
        publisher.thread.start()  # events flow from now on: the detector reports the version of its last batch

        # 1. the workshop's first model: BQML-style k-means becomes @champion
        bootstrap = orch.resolve(RunParams(candidates=["kmeans"], reason="bootstrap: the workshop's k-means"))
        first, created = orch.trigger({"kind": "manual", "reason": "bootstrap"}, bootstrap)
        assert created and orch.wait(300)
        first = orch.history.get(first["id"])
        assert first["status"] == "succeeded", first
        assert first["decision"] == "promote" and "no champion yet" in first["reason"]
        v1 = first["promoted_version"]
        assert first["consumers"]["endpoint"]["status"] == "confirmed", first["consumers"]
        assert first["consumers"]["detector"]["status"] == "confirmed", first["consumers"]
        assert first["consumers"]["detector"]["version"] == v1
        assert sensors.tick() is None, sensors.last  # no drift yet

        # 2. drift onset: let the detector catch up, note the last baseline event, switch the generator
        with publisher.lock:
            assert detector.wait_events(publisher.sent, 60) >= publisher.sent, detector.log()[-3000:]
            onset = window.latest_event_time(warehouse, "dataflow")
            stream.drift()
        sensors.start()
        run = wait_for(lambda: orch.history.list(limit=1)[0] if len(orch.history.list()) == 2 else None, 90, "drift")
        assert run["trigger"]["kind"] == "drift", run["trigger"]
        print(f"\ndrift trigger: {run['trigger']['reason']}; features: {run['trigger']['features']}")
        assert orch.wait(300)
        second = orch.history.get(run["id"])
        assert second["status"] == "succeeded", second
        assert second["decision"] == "promote", second["reason"]
        v2 = second["promoted_version"]
        assert v2 != v1
        assert registry.champion_version(registry.client(mlflow_server.tracking_uri), model_name) == v2

        # the gate compared like with like: every held-out row is of the new normal
        inputs = next(s for s in second["steps"] if s["name"] == "window")["inputs"]
        print(f"drift onset after {onset}; window {inputs['window_start']}..{inputs['window_end']}, "
              f"held out from {inputs['holdout_start']} ({inputs['holdout_rows']} rows)")  # fmt: skip
        assert datetime.fromisoformat(inputs["holdout_start"]) > onset, inputs
        evaluate_step = next(s for s in second["steps"] if s["name"] == "evaluate")["outputs"]
        print(f"gate: {second['reason']}")
        print(f"held-out (drifted) champion v{v1}: {_pr(evaluate_step['champion'])}")
        for kind, metrics in evaluate_step["candidates"].items():
            print(f"held-out (drifted) challenger {kind}: {_pr(metrics)}")

        # 3. both consumers follow without a restart
        print(f"consumers: {second['consumers']}")
        assert second["consumers"]["endpoint"]["status"] == "confirmed", second["consumers"]
        assert second["consumers"]["detector"]["status"] == "confirmed", second["consumers"]
        assert detector.process.poll() is None and endpoint.process.poll() is None, "a consumer restarted"
        predict = names.predict_url(endpoint_url, settings.project, settings.location, settings.endpoint_id)
        answer = httpx.post(predict, json={"instances": [{"tax": 9.0, "shipping": 5.0, "value": 60.0}]})
        assert answer.status_code == 200 and answer.json()["modelVersionId"] == v2

        # 4. precision and recall on the drifted stream recover: the detector's verdicts, v1 vs v2
        wait_for(lambda: _stream_quality(warehouse, onset).get(v2, {}).get("n", 0) >= 2000, 90, "2,000 scored by v2")
        publisher.close()
        quality = _stream_quality(warehouse, onset)
        for version in (v1, v2):
            q = quality.get(version)
            print(f"drifted stream scored by v{version}: {q and q['n']} purchases, {q and q['anomalies']} anomalies, "
                  f"{q and _pr(q)}")  # fmt: skip
        assert quality[v2]["precision"] >= 0.9 and quality[v2]["recall"] >= 0.8, quality
        assert v1 not in quality or quality[v2]["f1"] > quality[v1]["f1"] + 0.1, quality

        fresh = labelled_purchases(6000, 99, drift=_drift(), anomaly_rates=_config().anomaly_rates)
        old = evaluate_model(registry.unwrap(registry.load_version(mlflow_server.tracking_uri, model_name, v1)), fresh)
        new = evaluate_model(registry.unwrap(registry.load_version(mlflow_server.tracking_uri, model_name, v2)), fresh)
        print(f"fresh drifted set, 6000 purchases: before (v{v1}) {_pr(old)} -> after (v{v2}) {_pr(new)}")
        assert new["precision"] >= 0.9 and new["recall"] >= 0.8, new
        assert new["f1"] > old["f1"] + 0.1

        runs = [r["id"] for r in orch.history.list()]
        assert runs == [second["id"], first["id"]]
        tracked = registry.client(mlflow_server.tracking_uri).get_run(second["mlflow_run_id"])
        assert tracked.data.tags["hyp.decision"] == "promote"
        assert "step.train.seconds" in tracked.data.metrics
    finally:
        publisher.close()
        if orch is not None:
            orch.stop()
        if sensors is not None:
            sensors.join()
        endpoint.stop()
        assert detector.stop() == 0, detector.log()[-3000:]


def _pr(m: dict) -> str:
    return f"precision={m['precision']:.3f} recall={m['recall']:.3f} f1={m['f1']:.3f}"
