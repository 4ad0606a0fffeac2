"""The detector's flags, generated from :class:`~services.detector.settings.DetectorSettings`, shared by
`hyp detector --help` (plain argparse, no Beam import) and
:class:`~services.detector.options.DetectorOptions` (Beam's parser).

Each of the detector's own settings fields is a flag in both spellings (``--batch-linger-s`` and Beam's
``--batch_linger_s``), its help from the field's description; a few shared settings are flags too,
some under the names they have always had (:data:`NAMES`).
"""

from __future__ import annotations

import argparse

from services.common.config import Flag, add_flags
from services.common.settings import CommonSettings
from services.detector.settings import ONLINE_DETECTORS, SCORERS, SOURCES, DetectorSettings

__all__ = ["FLAGS", "NAMES", "ONLINE_DETECTORS", "SCORERS", "SOURCES", "add_arguments", "detector_flags"]

# shared settings the detector takes as flags, with their help
SHARED = {
    "pubsub_emulator_host": "Pub/Sub emulator host:port",
    "warehouse_dir": "warehouse folder",
    "mlflow_tracking_uri": "MLflow tracking URI",
    "model_name": "registered model name",
    "model_alias": "served alias",
}
# field -> flag names where they differ from the field's (``--detector-batch-size``: Beam users know it so)
NAMES = {
    "batch_size": ("detector_batch_size",),
    "pubsub_emulator_host": ("emulator_host",),
    "mlflow_tracking_uri": ("tracking_uri",),
    "kafka_bootstrap_servers": ("kafka_bootstrap_servers", "kafka_bootstrap"),
}
ORDER = ("source", "subscription", "detections_topic", "deadletter_topic", "pubsub_emulator_host", "warehouse_dir",
         "scorer", "mlflow_tracking_uri", "model_name", "model_alias")  # fmt: skip


def _spellings(names: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    for name in names:
        for spelled in ("--" + name.replace("_", "-"), "--" + name):
            if spelled not in out:
                out.append(spelled)
    return tuple(out)


def detector_flags() -> tuple[Flag, ...]:
    own = [name for name in DetectorSettings.model_fields if name not in CommonSettings.model_fields]
    fields = [*ORDER, *(name for name in own if name not in ORDER)]
    return tuple(Flag(f, _spellings(NAMES.get(f, (f,))), SHARED.get(f, "")) for f in fields)


FLAGS = detector_flags()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_flags(parser, DetectorSettings, FLAGS)
