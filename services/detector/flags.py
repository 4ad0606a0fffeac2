"""The detector's flags, shared by `hyp detector --help` (plain argparse, no Beam import) and
:class:`~services.detector.options.DetectorOptions` (Beam's parser)."""

from __future__ import annotations

import argparse

SOURCES = ("local", "pubsub", "kafka")
ONLINE_DETECTORS = ("zscore", "robust-zscore", "iqr")
SCORERS = ("champion", *ONLINE_DETECTORS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add(
        "--source",
        choices=SOURCES,
        help="local: batched, ack-after-durable Pub/Sub read for BundleBasedDirectRunner; "
        "pubsub: Beam's ReadFromPubSub (Dataflow); kafka: Beam's ReadFromKafka (Flink)",
    )
    add("--subscription", help="Pub/Sub subscription (short name or projects/P/subscriptions/S)")
    add("--detections_topic", "--detections-topic", dest="detections_topic", help="topic for anomalies")
    add("--deadletter_topic", "--deadletter-topic", dest="deadletter_topic", help="topic for bad messages")
    add("--emulator_host", "--emulator-host", dest="emulator_host", help="Pub/Sub emulator host:port")
    add("--warehouse_dir", "--warehouse-dir", dest="warehouse_dir", help="warehouse folder")
    add("--scorer", choices=SCORERS, help="champion (MLflow registry) or one of Beam's online detectors")
    add("--tracking_uri", "--tracking-uri", dest="tracking_uri", help="MLflow tracking URI")
    add("--model_name", "--model-name", dest="model_name", help="registered model name")
    add("--model_alias", "--model-alias", dest="model_alias", help="served alias")
    add(
        "--reload_interval",
        "--reload-interval",
        dest="reload_interval",
        type=float,
        help="seconds between polls of the alias (hot reload)",
    )
    add(
        "--detector_batch_size",
        "--detector-batch-size",
        dest="detector_batch_size",
        type=int,
        help="messages per batch element",
    )
    add(
        "--batch_linger_s",
        "--batch-linger-s",
        dest="batch_linger_s",
        type=float,
        help="local read: seconds a batch waits after its first message for more (0: take what is there)",
    )
    add(
        "--max_outstanding",
        "--max-outstanding",
        dest="max_outstanding",
        type=int,
        help="messages pulled and not yet acknowledged (flow control)",
    )
    add("--ack_deadline", "--ack-deadline", dest="ack_deadline", type=int, help="lease length in seconds")
    add(
        "--kafka_bootstrap_servers",
        "--kafka-bootstrap-servers",
        "--kafka-bootstrap",
        "--kafka_bootstrap",
        dest="kafka_bootstrap_servers",
        help="Kafka bootstrap servers (source=kafka)",
    )
    add("--kafka_topic", "--kafka-topic", dest="kafka_topic", help="Kafka topic of events (source=kafka)")
    add("--kafka_group", "--kafka-group", dest="kafka_group", help="Kafka consumer group (source=kafka)")
    add("--metrics_port", "--metrics-port", dest="metrics_port", type=int, help="Prometheus port (0: off)")
    add(
        "--stop_after_idle",
        "--stop-after-idle",
        dest="stop_after_idle",
        type=float,
        help="drain and stop after this many seconds without input (0: run until stopped)",
    )
    add(
        "--commit_max_rows",
        "--commit-max-rows",
        dest="commit_max_rows",
        type=int,
        help="local read: commit the warehouse once this many messages are pending (then acknowledge them)",
    )
    add(
        "--commit_interval_s",
        "--commit-interval-s",
        dest="commit_interval_s",
        type=float,
        help="local read: ... or once the oldest pending batch waited this many seconds",
    )
    add(
        "--compact_interval_s",
        "--compact-interval-s",
        dest="compact_interval_s",
        type=float,
        help="seconds between warehouse compactions by this process (0: off)",
    )
