"""`hyp detector`: run the Beam streaming detector until SIGTERM / Ctrl-C, then drain and exit 0."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("services.detector")

DRAIN_TIMEOUT_S = 60.0


def _parser() -> argparse.ArgumentParser:
    from services.common.config import Parser
    from services.detector.flags import add_arguments

    parser = Parser(
        prog="hyp detector",
        description="Beam streaming detector: read purchase events, score them with the registry's @champion "
        "(or Beam's online detectors), publish anomalies to hyp-detections, land events and verdicts in the "
        "warehouse. Settings from the environment (HYP_DETECTOR_*, PUBSUB_EMULATOR_HOST, MLFLOW_TRACKING_URI, "
        "HYP_WAREHOUSE_DIR); flags override. Other Beam pipeline flags (--runner, --project, --flink_master, ...) "
        "pass through to Beam.",
    )
    parser.add_argument("--runner", help="Beam runner (default BundleBasedDirectRunner)")
    parser.add_argument("--project", help="GCP project of the topics and subscription (env HYP_PROJECT)")
    add_arguments(parser)
    return parser


def _beam_args(argv: list[str]) -> list[str]:
    """Beam spells its flags with underscores; accept dashes too (--flink-master)."""
    out = []
    for arg in argv:
        if arg.startswith("--") and "-" in arg[2:].split("=", 1)[0]:
            name, eq, value = arg[2:].partition("=")
            arg = "--" + name.replace("-", "_") + eq + value
        out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    parser.parse_known_args(args)  # --help and bad choices exit here with a one-line reason

    from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

    from services.common.config import ConfigError, fail
    from services.common.logs import setup_logging
    from services.detector.options import config, settings_for

    options = PipelineOptions(_beam_args(args))
    standard = options.view_as(StandardOptions)
    standard.streaming = True
    if not standard.runner:
        standard.runner = "BundleBasedDirectRunner"
    try:
        settings = settings_for(options)
        setup_logging(settings.log_level)
        cfg = config(options, settings)
    except ConfigError as exc:
        return fail("detector", exc)
    return run(cfg, options)


def run(cfg, options) -> int:  # cfg: DetectorConfig, options: PipelineOptions
    import apache_beam as beam

    from services.detector import commit, dataflow, local_read, metrics, pipeline

    if dataflow.is_dry_run(options, cfg.runner):
        return _dry_run(cfg, options)
    if cfg.source == "local":
        try:
            local_read.check_beam_internals()
        except local_read.BeamInternalsChanged as exc:
            print(f"hyp detector: the local read cannot run on this Beam: {exc}", file=sys.stderr)
            return 1
    if cfg.source == "kafka":
        from services.detector.kafka import ensure_topic

        ensure_topic(cfg.kafka_bootstrap_servers, cfg.kafka_topic)
    worker = metrics.worker_label(cfg.worker_id)
    server = (
        metrics.serve(cfg.metrics_port, worker_id=worker, allowed_hosts=cfg.allowed_hosts) if cfg.metrics_port else None
    )

    p = beam.Pipeline(options=options)
    pipeline.build(p, cfg)
    stop = threading.Event()
    wake = threading.Event()  # a signal or the end of the pipeline: the main loop sleeps until one

    def request_stop(signum: int, _frame: object) -> None:
        if stop.is_set():
            log.warning("second signal: exiting without waiting for the drain (unacknowledged messages replay)")
            raise SystemExit(1)
        log.info("signal %s: draining in-flight batches, then exiting", signal.Signals(signum).name)
        stop.set()
        wake.set()

    previous = {s: signal.signal(s, request_stop) for s in (signal.SIGTERM, signal.SIGINT)}
    log.info(
        "detector starting",
        extra={
            "fields": {
                "source": cfg.source,
                "worker_id": cfg.worker_id,
                "runner": cfg.runner,
                "subscription": cfg.subscription,
                "scorer": cfg.scorer,
                "batch_size": cfg.batch_size,
            }
        },
    )
    compactor = _start_compactor(cfg)
    result = p.run()
    outcome: dict[str, BaseException | None] = {"error": None}
    finished = threading.Event()

    def wait() -> None:
        try:
            result.wait_until_finish()
        except BaseException as exc:  # reported by main
            outcome["error"] = exc
        finally:
            finished.set()
            wake.set()

    threading.Thread(target=wait, name="hyp-detector-wait", daemon=True).start()
    idle_since, last_pulled = time.monotonic(), -1
    # Wakes for a signal or the pipeline's end; only --stop-after-idle needs a periodic look.
    check_s = min(1.0, cfg.stop_after_idle / 4) if cfg.stop_after_idle > 0 else 30.0
    try:
        while not finished.is_set():
            wake.wait(check_s)
            if cfg.stop_after_idle > 0 and cfg.source == "local" and not stop.is_set():
                pulled = local_read.subscription_for(pipeline.subscription_config(cfg)).pulled
                if pulled != last_pulled:
                    idle_since, last_pulled = time.monotonic(), pulled
                elif time.monotonic() - idle_since > cfg.stop_after_idle:
                    log.info("no input for %.1f s: draining and stopping", cfg.stop_after_idle)
                    stop.set()
            if stop.is_set():
                break
        if stop.is_set() and not finished.is_set():
            if cfg.source == "local":
                local_read.stop_all()  # the read ends its output; the runner drains and finishes
                if not finished.wait(DRAIN_TIMEOUT_S):
                    log.warning("drain took over %.0f s: cancelling (unacknowledged messages replay)", DRAIN_TIMEOUT_S)
                    result.cancel()
            else:
                result.cancel()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        # batches the pipeline finished but the warehouse has not committed yet: commit, acknowledge
        if not commit.close_all(DRAIN_TIMEOUT_S):
            log.warning("the last warehouse commit took over %.0f s (unacknowledged messages replay)", DRAIN_TIMEOUT_S)
        local_read.close_all()
        if compactor is not None:
            compactor.stop()
        if server is not None:
            server.shutdown()
    if outcome["error"] is not None and not stop.is_set():
        error = outcome["error"]
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        print(f"hyp detector: pipeline failed: {reason}", file=sys.stderr)
        return 1
    log.info("detector stopped")
    return 0


def _dry_run(cfg, options) -> int:
    """Translate the job for Dataflow offline and print what it would run (services/detector/dataflow.py)."""
    import json

    import apache_beam as beam

    from services.detector import dataflow, pipeline

    try:
        p = beam.Pipeline(options=options)  # Dataflow's option checks (project id, gs:// locations) run here
        pipeline.build(p, cfg)
        result = p.run()  # --dry_run: returns once the job is built; nothing staged or submitted
    except (ImportError, ValueError) as exc:
        reason = " ".join(str(exc).split())
        print(f"hyp detector: cannot translate the job for Dataflow: {reason}", file=sys.stderr)
        return 2
    print(json.dumps(dataflow.summary(result), indent=2))
    return 0


def _start_compactor(cfg) -> Any:
    """The warehouse compactor (services.warehouse.compaction.Compactor), when this process writes the warehouse.

    Several processes may each run one: the compactor itself keeps a single owner by a file lock.
    """
    if cfg.compact_interval_s <= 0:
        return None
    try:
        from services.warehouse.compaction import Compactor  # type: ignore[attr-defined]
    except ImportError:
        log.info("warehouse compaction is not available in this version; not compacting")
        return None
    compactor = Compactor(cfg.warehouse_dir, interval_s=cfg.compact_interval_s)
    compactor.start()
    return compactor


if __name__ == "__main__":
    raise SystemExit(main())
