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
    """What the pipeline builder needs: the merged, checked settings (each field reads as ``cfg.<field>``,
    so a new settings field needs nothing here), Beam's runner, and the names in full form."""

    settings: DetectorSettings
    runner: str

    @property
    def subscription(self) -> str:
        return names.subscription(self.settings.project, self.settings.subscription)

    @property
    def detections_topic(self) -> str:
        return names.topic(self.settings.project, self.settings.detections_topic)

    @property
    def deadletter_topic(self) -> str:
        return names.topic(self.settings.project, self.settings.deadletter_topic)

    @property
    def emulator_host(self) -> str | None:
        return self.settings.pubsub_emulator_host or None

    @property
    def tracking_uri(self) -> str:
        return self.settings.mlflow_tracking_uri

    @property
    def warehouse_dir(self) -> str:
        return str(self.settings.warehouse_dir)

    def __getattr__(self, name: str) -> Any:  # only for names not above: the settings' fields
        if name.startswith("_") or name == "settings":  # unpickling looks up __setstate__ before settings is set
            raise AttributeError(name)
        return getattr(self.settings, name)


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
    return DetectorConfig(settings, runner)


def resolve(options: PipelineOptions) -> DetectorConfig:
    """Flags over the environment; raise ConfigError naming the first bad value."""
    return config(options, settings_for(options))
