"""Time from drift onset to the new champion scoring the stream, with the orchestrator's default settings.

Starts a real `hyp pubsub` emulator, `hyp mlflow`, `hyp endpoint` and `hyp detector`; fills a tmp
warehouse with a baseline history (simulated clock, ending now); makes the workshop's BQML-style
k-means @champion with a manual run; then the load generator publishes to the emulator in real
time at --rate events/s (the detector writes the warehouse), switches to the drift scenario's "new
normal", and the script times: drift onset -> drift sensor fires -> new version promoted -> the
endpoint answers with it -> the detector scores the stream with it.

    .venv/bin/python benchmarks/orchestrator_bench.py [--rate 200] [--anomaly-rate 0.05]

Prints a markdown table and the command that made it. Everything runs on 127.0.0.1 and is
stopped at the end.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from teardown import stop_on_signals  # noqa: E402  (beside this script)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="events per second (default: the stack's 200)")
    parser.add_argument("--anomaly-rate", type=float, default=0.05, help="share of purchases that are anomalies")
    parser.add_argument("--baseline-minutes", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=400.0, help="give up after this many seconds of drift")
    args = parser.parse_args(argv)
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up

    import httpx

    from loadgen.config import DEFAULT_ANOMALY_RATES, GeneratorConfig
    from loadgen.generator import EventGenerator
    from loadgen.scenario import load
    from loadgen.sinks.parquet import ParquetSink
    from services.common import names
    from services.common.processes import stop_group as stop
    from services.common.processes import wait_for
    from services.orchestrator import consumers
    from services.orchestrator.modelops import ModelsPackageOps
    from services.orchestrator.params import RunParams
    from services.orchestrator.runner import Orchestrator
    from services.orchestrator.sensors import Sensors
    from services.orchestrator.settings import OrchestratorSettings
    from services.testing.hyp import HypProcess
    from services.testing.pubsub import start_emulator
    from tests.fixtures.mlflow import start_mlflow
    from tests.services.detector.harness import Resources, start_detector
    from tests.services.orchestrator.test_integration import Publisher

    tmp = Path(tempfile.mkdtemp(prefix="hyp-orch-bench-"))
    server = start_mlflow(tmp / "mlflow")
    emulator = start_emulator(tmp / "pubsub")
    endpoint = detector = publisher = orch = sensors = None
    try:
        total = sum(DEFAULT_ANOMALY_RATES.values())
        rates = {k: v * args.anomaly_rate / total for k, v in DEFAULT_ANOMALY_RATES.items()}
        n_base = int(args.rate * args.baseline_minutes * 60)
        start = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=args.baseline_minutes)
        config = GeneratorConfig.build(clock="simulated", start=start, sim_rate=args.rate, anomaly_rates=rates)
        gen = EventGenerator(seed=5, config=config)
        # the detector's table: this loop has no processor writing cloud_run (HYP_ORCH_EVENTS_TABLE=dataflow)
        sink = ParquetSink(tmp / "warehouse", config.n_users, gen.run_id, table="dataflow")
        sink.send(gen.next_columns(n_base), time.time())
        sink.flush()

        # not waited on: it answers /health once the bootstrap run below has made a first @champion
        endpoint = HypProcess(
            "endpoint", "--mlflow-tracking-uri", server.tracking_uri, "--model-name", "purchase-anomaly",
            "--reload-interval", "1", log_path=tmp / "endpoint.log",
        ).start(wait=False)  # fmt: skip
        endpoint_url = endpoint.url
        settings = OrchestratorSettings(_env_file=None).model_copy(
            update={
                "data_dir": tmp / "orch",
                "warehouse_dir": tmp / "warehouse",
                "events_table": "dataflow",
                "mlflow_tracking_uri": server.tracking_uri,
                "endpoint_url": endpoint_url,
                "cooldown_s": 0.0,  # the bootstrap run has just ended; nothing else differs from the defaults
            }
        )
        orch = Orchestrator(settings, ModelsPackageOps(settings))
        bootstrap = orch.resolve(RunParams(candidates=["kmeans"], reason="bootstrap: the workshop's k-means"))
        boot, _ = orch.trigger({"kind": "manual", "reason": "bootstrap"}, bootstrap)
        orch.wait(600)
        boot = cast(dict[str, Any], orch.history.get(boot["id"]))
        if boot["status"] != "succeeded":
            print(f"bootstrap run failed: {boot['reason']}", file=sys.stderr)
            return 1
        v1 = boot["promoted_version"]
        boot_secs = sum(s["seconds"] for s in boot["steps"])

        # the live part: generator -> emulator -> detector -> warehouse, on the wall clock
        res = Resources(emulator.host, emulator.project).create()
        detector = start_detector(res, tmp / "warehouse", tmp, "--tracking-uri", server.tracking_uri)
        gen.configure(config.model_copy(update={"clock": "real"}))
        publisher = Publisher(gen, res, rate=args.rate)
        publisher.thread.start()
        detector.wait_up()
        try:
            wait_for(
                lambda: consumers.version_from_metrics(httpx.get(detector.metrics_url).text) == v1,
                120,
                f"the detector to score with v{v1}",
                interval=0.2,
            )
        except TimeoutError as exc:
            print(f"{exc}:\n{detector.log()[-2000:]}", file=sys.stderr)
            return 1
        orch.settings = settings = settings.model_copy(update={"detector_metrics_url": detector.metrics_url})

        sensors = Sensors(orch)
        sensors.start()
        with publisher.lock:  # drift onset
            gen.configure(gen.config.model_copy(update={"drift": load("drift").phases[-1].drift}))
            t0 = time.monotonic()
        marks: dict[str, float] = {}
        predict = names.predict_url(endpoint_url, settings.project, settings.location, settings.endpoint_id)
        run = None
        record: dict[str, Any] | None
        while time.monotonic() - t0 < args.timeout:
            runs = orch.history.list(limit=1)
            if "fired" not in marks and runs and runs[0]["id"] != boot["id"]:
                marks["fired"] = time.monotonic() - t0
                run = runs[0]
            if run is not None:
                record = cast(dict[str, Any], orch.history.get(run["id"]))
                v2 = record.get("promoted_version")
                if v2 and "promoted" not in marks:
                    marks["promoted"] = time.monotonic() - t0
                if record["status"] != "running" and not v2:
                    print(f"run ended without promotion: {record['reason']}", file=sys.stderr)
                    break
                if v2 and "endpoint" not in marks:
                    answer = httpx.post(
                        predict,
                        json={"instances": [{"tax": 9, "shipping": 5, "value": 60}]},
                    )
                    if answer.status_code == 200 and answer.json().get("modelVersionId") == v2:
                        marks["endpoint"] = time.monotonic() - t0
                seen = consumers.version_from_metrics(httpx.get(detector.metrics_url).text) if v2 else None
                if seen and seen == v2 and "detector" not in marks:
                    marks["detector"] = time.monotonic() - t0
                if "endpoint" in marks and "detector" in marks:
                    break
            time.sleep(0.2)
        publisher.close()
        orch.wait(120)
        record = orch.history.get(run["id"]) if run else None
        steps = {s["name"]: s["seconds"] for s in (record or {}).get("steps", [])}

        given = sys.argv[1:] if argv is None else argv
        cmd = " ".join([".venv/bin/python benchmarks/orchestrator_bench.py", *(shlex.quote(a) for a in given)])
        print(f"\n`{cmd}`\n")
        print(
            f"Stream {args.rate:g} events/s (15% purchases, {args.anomaly_rate:.0%} anomalies) through the emulator "
            f"and `hyp detector`, baseline history {args.baseline_minutes:g} min = {n_base} events; bootstrap run "
            f"(k-means) {boot_secs:.1f} s -> v{v1}; defaults: window {settings.window_minutes:g} min / "
            f"{settings.max_rows} rows, min {settings.min_rows} training rows, candidates "
            f"{','.join(settings.candidates)}, sensor every {settings.sensor_interval_s:g} s, drift on the newest "
            f"{settings.drift_recent_rows} purchases; detector and endpoint check @champion every 5 s and 1 s.\n"
        )
        print("| stage | seconds after drift onset |")
        print("|---|---|")
        for key, label in (
            ("fired", "drift sensor fired"),
            ("promoted", "new version promoted (@champion moved)"),
            ("endpoint", "endpoint answers with the new version"),
            ("detector", "detector scores the stream with the new version"),
        ):
            print(f"| {label} | {marks[key]:.1f} |" if key in marks else f"| {label} | not reached |")
        if steps:
            print("\n| run step | seconds |\n|---|---|")
            for step, secs in steps.items():
                print(f"| {step} | {secs:.1f} |")
        if record:
            print(f"\ndecision: {record.get('decision')}: {record.get('reason')}")
        return 0 if "endpoint" in marks and "detector" in marks else 1
    finally:
        if publisher is not None:
            publisher.close()
        if orch is not None:
            orch.stop()
        if sensors is not None:
            sensors.join()
        if endpoint is not None:
            endpoint.stop()
        if detector is not None:
            detector.stop()
        emulator.stop()
        stop(server.process)


if __name__ == "__main__":
    raise SystemExit(main())
