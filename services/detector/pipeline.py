"""The detector pipeline: extract -> transform -> load, each stage a small labelled transform.

Elements are :class:`~services.detector.batch.Batch` objects (many messages each). I/O lives only
in :func:`Extract` and :func:`Load`; :func:`Transform` is pure apart from the model, so tests feed
it with ``beam.Create`` and check it with ``assert_that``.

Order is what makes the local read lossless: ``Load`` publishes detections and dead letters, then hands
the batch to the committer, which writes the warehouse rows of consecutive batches in one commit and only
then acknowledges their messages, so an acknowledgement only exists once the writes returned. Each stage
is one bundle per batch on the direct runner, so the graph is kept to four steps per batch: read, parse,
score, load.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import RunInference

from services.detector import commit, local_read, records, scoring, sinks
from services.detector import kafka_read as kafka_read_module
from services.detector.batch import Batch, Message
from services.detector.kafka_read import kafka_message as kafka_message  # re-exported: records -> Message
from services.detector.options import DetectorConfig


def subscription_config(cfg: DetectorConfig) -> local_read.SubscriptionConfig:
    return local_read.SubscriptionConfig(
        subscription=cfg.subscription,
        emulator_host=cfg.emulator_host,
        max_messages=min(cfg.batch_size, 5000),
        max_outstanding=cfg.max_outstanding,
        ack_deadline_s=cfg.ack_deadline,
    )


# --- extract -------------------------------------------------------------------------------------


def pubsub_message(message: Any) -> Message:
    """Beam's PubsubMessage (ReadFromPubSub with_attributes=True) -> Message (no ack id: the runner acks)."""
    publish = getattr(message, "publish_time", None)
    publish_us = int(publish.timestamp() * 1_000_000) if publish is not None else int(time.time() * 1_000_000)
    return Message(message.data or b"", dict(message.attributes or {}), message.message_id or "", publish_us)


def to_batch(messages: list[Message]) -> Batch:
    return Batch(messages=tuple(messages), received_at=time.time())


def kafka_read(cfg: DetectorConfig) -> beam.PTransform:
    """The Python-only Kafka read (kafka_read.py): builds offline, runs on the portable Flink runner."""
    return kafka_read_module.ReadKafka(cfg.kafka_bootstrap_servers, cfg.kafka_topic, cfg.kafka_group)


@beam.ptransform_fn
def Extract(pbegin: beam.pvalue.PBegin, cfg: DetectorConfig) -> beam.PCollection:
    """Batches of messages from the configured source."""
    if cfg.source == "local":
        return pbegin | "ReadPubSubBatches" >> local_read.ReadPubSubBatches(
            subscription_config(cfg), batch_size=cfg.batch_size, linger_s=cfg.batch_linger_s
        )
    if cfg.source == "pubsub":
        from apache_beam.io.gcp.pubsub import ReadFromPubSub

        messages = (
            pbegin
            | "ReadFromPubSub" >> ReadFromPubSub(subscription=cfg.subscription, with_attributes=True)
            | "ToMessage" >> beam.Map(pubsub_message)
        )
    else:
        messages = pbegin | "ReadKafka" >> kafka_read(cfg)
    return (
        messages
        | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=cfg.batch_size)
        | "ToBatch" >> beam.Map(to_batch)
    )


# --- transform -----------------------------------------------------------------------------------


def scoring_failed(failure: tuple[Any, Any]) -> list[Batch]:
    """RunInference's failed batches (a backstop: the handler catches the model's own errors) -> the same
    batches with their purchases rejected (dead letter)."""
    batches, exc = failure
    reason = f"scoring: {type(exc).__name__}: {exc}"
    return [scoring.reject_purchases(b, reason) for b in (batches if isinstance(batches, list | tuple) else [batches])]


def parse(batch: Batch) -> list[Batch]:
    """Parse a batch; the one-element list is what RunInference (batching skipped) takes as its model batch."""
    return [records.parse_batch(batch)]


@beam.ptransform_fn
def Transform(batches: beam.PCollection, make_scorer: Callable[[], scoring.Scorer]) -> beam.PCollection:
    """Parse (bad events -> rejected), then score purchases in one model call per batch."""
    parsed = batches | "Parse" >> beam.Map(parse)
    handler = scoring.BatchModelHandler(make_scorer)  # yields scored Batches: no postprocess stage
    ok, failures = parsed | "Score" >> RunInference(handler).with_exception_handling()
    failed = failures.failed_inferences | "ScoringFailed" >> beam.FlatMap(scoring_failed)
    return (ok, failed) | "Scored" >> beam.Flatten()


# --- load ----------------------------------------------------------------------------------------


@beam.ptransform_fn
def Load(batches: beam.PCollection, cfg: DetectorConfig) -> beam.PCollection:
    """Detections (first: they are the latency that matters), warehouse, dead letters, then acknowledge.

    One step per batch (``sinks.LoadFn``), so the direct runner pays for one bundle, not five. With the
    local read the warehouse rows of consecutive batches are committed together by a background thread,
    which acknowledges the messages after the commit (commit.py).
    """
    ack = subscription_config(cfg) if cfg.source == "local" else None
    return batches | "Sink" >> beam.ParDo(
        sinks.LoadFn(
            cfg.detections_topic, cfg.deadletter_topic, cfg.emulator_host, cfg.warehouse_dir, ack, commit_config(cfg)
        )
    )


def commit_config(cfg: DetectorConfig) -> commit.CommitConfig:
    return commit.CommitConfig(
        cfg.warehouse_dir,
        max_rows=cfg.commit_max_rows,
        interval_s=cfg.commit_interval_s,
        journal_key=journal_key(cfg.subscription, cfg.worker_id),
    )


def journal_key(subscription: str, worker_id: str) -> str:
    """The commit journal's name of one worker: its subscription's id and worker id, as a safe file name."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", subscription.rsplit("/", 1)[-1]) or "detector"
    return f"{name}-w{worker_id}" if worker_id else name


def make_scorer_factory(cfg: DetectorConfig) -> Callable[[], scoring.Scorer]:
    """A picklable zero-argument factory for the configured scorer."""
    if cfg.scorer == "champion":
        return _ChampionFactory(cfg.tracking_uri, cfg.model_name, cfg.model_alias, cfg.reload_interval)
    if cfg.scorer == "vertex":
        return _VertexFactory(cfg.vertex_endpoint_id, cfg.project, cfg.location, cfg.vertex_api_endpoint)
    return _OnlineFactory(cfg.scorer)


class _ChampionFactory:
    def __init__(self, uri: str, name: str, alias: str, interval: float) -> None:
        self.args = (uri, name, alias, interval)

    def __call__(self) -> scoring.Scorer:
        uri, name, alias, interval = self.args
        return scoring.shared_scorer(
            ("champion", *self.args), lambda: scoring.ChampionScorer(uri, name, alias, poll_interval_s=interval)
        )


class _VertexFactory:
    """A Vertex AI endpoint through Beam's VertexAIModelHandlerJSON (services/detector/vertex.py)."""

    def __init__(self, endpoint_id: str, project: str, location: str, api_endpoint: str | None) -> None:
        self.args = (endpoint_id, project, location, api_endpoint)

    def __call__(self) -> scoring.Scorer:
        from services.detector.vertex import VertexScorer

        return scoring.shared_scorer(("vertex", *self.args), lambda: VertexScorer(*self.args))


class _OnlineFactory:
    def __init__(self, detector: str) -> None:
        self.detector = detector

    def __call__(self) -> scoring.Scorer:
        return scoring.shared_scorer(("online", self.detector), lambda: scoring.OnlineScorer(self.detector))


def build(pipeline: beam.Pipeline, cfg: DetectorConfig) -> beam.PCollection:
    """Extract -> Transform -> Load on ``pipeline``; returns the per-batch counts after acknowledgement."""
    return (
        pipeline | "Extract" >> Extract(cfg) | "Transform" >> Transform(make_scorer_factory(cfg)) | "Load" >> Load(cfg)
    )
