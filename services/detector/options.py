"""Pipeline options of the detector (a ``PipelineOptions`` subclass, as in the Dataflow solution guide).

Its flags are :class:`DetectorSettings` fields (services/detector/flags.py); :func:`resolve` merges the
ones given over the environment through services/common/config.py, so the checks run once on the
merged values, and hands the pipeline builder one plain :class:`DetectorConfig`. Beam's own options
(``--runner``, ``--project``, ``--flink_master``, ...) stay Beam's; ``--project`` also sets the
settings' project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions, StandardOptions

from services.common import names
from services.common.config import ConfigError, load, values, where
from services.detector.flags import FLAGS, add_arguments
from services.detector.settings import DetectorSettings

LOCAL_RUNNERS = ("BundleBasedDirectRunner",)


class DetectorOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser: Any) -> None:
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


class OptionsError(ConfigError):
    """A bad option value; ``name`` is the flag or variable to change."""


def settings_for(options: PipelineOptions) -> DetectorSettings:
    """The detector's flags in ``options`` over the environment, validated together; ConfigError naming
    the flag or variable."""
    given = values(options.view_as(DetectorOptions), FLAGS)
    project = options.view_as(GoogleCloudOptions).project
    if project:
        given["project"] = project
    return load(DetectorSettings, given, FLAGS)


def config(options: PipelineOptions, settings: DetectorSettings) -> DetectorConfig:
    """The pipeline's configuration from the merged ``settings`` and Beam's own options (the runner)."""
    runner = options.view_as(StandardOptions).runner or "BundleBasedDirectRunner"
    if settings.source == "local" and runner not in LOCAL_RUNNERS:
        flagged = {f.field: f.flags[0] for f in FLAGS}
        name = where(DetectorSettings, "source", {}, flagged)
        local = ", ".join(LOCAL_RUNNERS)
        raise OptionsError(name, f"local works only on {local}, not {runner}; use --source pubsub")
    project = settings.project
    return DetectorConfig(
        source=settings.source,
        runner=runner,
        project=project,
        subscription=names.subscription(project, settings.subscription),
        detections_topic=names.topic(project, settings.detections_topic),
        deadletter_topic=names.topic(project, settings.deadletter_topic),
        emulator_host=settings.pubsub_emulator_host or None,
        warehouse_dir=str(settings.warehouse_dir),
        scorer=settings.scorer,
        tracking_uri=settings.mlflow_tracking_uri,
        model_name=settings.model_name,
        model_alias=settings.model_alias,
        reload_interval=settings.reload_interval,
        batch_size=settings.batch_size,
        max_outstanding=settings.max_outstanding,
        ack_deadline=settings.ack_deadline,
        kafka_bootstrap_servers=settings.kafka_bootstrap_servers,
        kafka_topic=settings.kafka_topic,
        kafka_group=settings.kafka_group,
        metrics_port=settings.metrics_port,
        stop_after_idle=settings.stop_after_idle,
        batch_linger_s=settings.batch_linger_s,
        commit_max_rows=settings.commit_max_rows,
        commit_interval_s=settings.commit_interval_s,
        compact_interval_s=settings.compact_interval_s,
    )


def resolve(options: PipelineOptions) -> DetectorConfig:
    """Flags over the environment; raise ConfigError naming the first bad value."""
    return config(options, settings_for(options))
