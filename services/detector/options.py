"""Pipeline options of the detector (a ``PipelineOptions`` subclass, as in the Dataflow solution guide).

Every option defaults to None here and is resolved against :class:`DetectorSettings` (the
environment) by :func:`resolve`, so flags override the environment and the pipeline builder
gets one plain, validated :class:`DetectorConfig`.
"""

from __future__ import annotations

from dataclasses import dataclass

from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions

from services.detector.flags import SCORERS, SOURCES, add_arguments
from services.detector.settings import DetectorSettings

LOCAL_RUNNERS = ("BundleBasedDirectRunner",)


class DetectorOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        add_arguments(parser)


@dataclass(frozen=True)
class DetectorConfig:
    """Everything the pipeline builder needs, resolved and checked."""

    source: str
    runner: str
    project: str
    subscription: str  # full path
    detections_topic: str  # full path
    deadletter_topic: str  # full path
    emulator_host: str | None
    warehouse_dir: str
    scorer: str
    tracking_uri: str
    model_name: str
    model_alias: str
    reload_interval: float
    batch_size: int
    max_outstanding: int
    ack_deadline: int
    kafka_bootstrap_servers: str | None
    kafka_topic: str
    kafka_group: str
    metrics_port: int
    stop_after_idle: float
    batch_linger_s: float = 0.05
    commit_max_rows: int = 10_000
    commit_interval_s: float = 1.0
    compact_interval_s: float = 30.0


class OptionsError(ValueError):
    """A bad option value; the message names it."""


def _path(project: str, kind: str, name: str) -> str:
    return name if name.startswith("projects/") else f"projects/{project}/{kind}/{name}"


def resolve(options: PipelineOptions, settings: DetectorSettings) -> DetectorConfig:
    """Flags over environment; raise OptionsError naming the first bad value."""
    o = options.view_as(DetectorOptions)
    runner = options.view_as(StandardOptions).runner or "BundleBasedDirectRunner"
    project = options.view_as(GoogleCloudOptions).project or settings.project

    def pick(name: str, default):
        value = getattr(o, name)
        return default if value is None else value

    source = pick("source", settings.source)
    if source not in SOURCES:
        raise OptionsError(f"source: {source!r} is not one of {', '.join(SOURCES)}")
    if source == "local" and runner not in LOCAL_RUNNERS:
        raise OptionsError(f"source: local works only on {', '.join(LOCAL_RUNNERS)}, not {runner}; use --source pubsub")
    scorer = pick("scorer", settings.scorer)
    if scorer not in SCORERS:
        raise OptionsError(f"scorer: {scorer!r} is not one of {', '.join(SCORERS)}")
    cfg = DetectorConfig(
        source=source,
        runner=runner,
        project=project,
        subscription=_path(project, "subscriptions", pick("subscription", settings.subscription)),
        detections_topic=_path(project, "topics", pick("detections_topic", settings.detections_topic)),
        deadletter_topic=_path(project, "topics", pick("deadletter_topic", settings.deadletter_topic)),
        emulator_host=pick("emulator_host", settings.pubsub_emulator_host) or None,
        warehouse_dir=str(pick("warehouse_dir", settings.warehouse_dir)),
        scorer=scorer,
        tracking_uri=pick("tracking_uri", settings.mlflow_tracking_uri),
        model_name=pick("model_name", settings.model_name),
        model_alias=pick("model_alias", settings.model_alias),
        reload_interval=float(pick("reload_interval", settings.reload_interval)),
        batch_size=int(pick("detector_batch_size", settings.batch_size)),
        max_outstanding=int(pick("max_outstanding", settings.max_outstanding)),
        ack_deadline=int(pick("ack_deadline", settings.ack_deadline)),
        kafka_bootstrap_servers=pick("kafka_bootstrap_servers", settings.kafka_bootstrap_servers),
        kafka_topic=pick("kafka_topic", settings.kafka_topic),
        kafka_group=pick("kafka_group", settings.kafka_group),
        metrics_port=int(pick("metrics_port", settings.metrics_port)),
        stop_after_idle=float(pick("stop_after_idle", settings.stop_after_idle)),
        batch_linger_s=float(pick("batch_linger_s", settings.batch_linger_s)),
        commit_max_rows=int(pick("commit_max_rows", settings.commit_max_rows)),
        commit_interval_s=float(pick("commit_interval_s", settings.commit_interval_s)),
        compact_interval_s=float(pick("compact_interval_s", settings.compact_interval_s)),
    )
    for name in ("batch_size", "max_outstanding", "ack_deadline"):
        if getattr(cfg, name) < 1:
            raise OptionsError(f"{name}: must be at least 1, got {getattr(cfg, name)}")
    if not 10 <= cfg.ack_deadline <= 600:
        raise OptionsError(f"ack_deadline: must be 10..600 seconds (Pub/Sub's range), got {cfg.ack_deadline}")
    if cfg.max_outstanding < cfg.batch_size:
        raise OptionsError(f"max_outstanding: {cfg.max_outstanding} is below the batch size {cfg.batch_size}")
    if cfg.commit_max_rows < 1:
        raise OptionsError(f"commit_max_rows: must be at least 1, got {cfg.commit_max_rows}")
    if source == "local" and cfg.commit_max_rows + cfg.batch_size > cfg.max_outstanding:
        raise OptionsError(
            f"commit_max_rows: {cfg.commit_max_rows} plus a batch ({cfg.batch_size}) must fit in max_outstanding "
            f"({cfg.max_outstanding}): messages waiting for a commit stay outstanding"
        )
    if not 0 < cfg.commit_interval_s <= 600:
        raise OptionsError(f"commit_interval_s: must be above 0 and at most 600, got {cfg.commit_interval_s}")
    if not 0 <= cfg.batch_linger_s <= 10:
        raise OptionsError(f"batch_linger_s: must be 0..10 seconds, got {cfg.batch_linger_s}")
    if cfg.compact_interval_s < 0:
        raise OptionsError(f"compact_interval_s: must be 0 (off) or positive, got {cfg.compact_interval_s}")
    if cfg.reload_interval <= 0:
        raise OptionsError(f"reload_interval: must be positive, got {cfg.reload_interval}")
    if not 0 <= cfg.metrics_port <= 65535:
        raise OptionsError(f"metrics_port: {cfg.metrics_port} is not a port")
    if source == "kafka" and not cfg.kafka_bootstrap_servers:
        raise OptionsError("kafka_bootstrap_servers: required with --source kafka (env HYP_KAFKA_BOOTSTRAP_SERVERS)")
    return cfg
