"""Transform stage with TestPipeline + beam.Create: parse, score, tag with the model version."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that

from services.detector import pipeline
from services.detector.scoring import OnlineScorer
from tests.services.detector.helpers import batch, message, purchase_event, view_event


class ThresholdScorer:
    """A stand-in model: value above 1,000 is an anomaly (the real champion is in the integration tests)."""

    version = "test-1"

    def score(self, rows):
        return [{"score": r["value"], "is_anomaly": r["value"] > 1000, "model_version": self.version} for r in rows], (
            self.version
        )

    def close(self):
        pass


class BrokenScorer(ThresholdScorer):
    def score(self, rows):
        raise RuntimeError("model exploded")


def _input():
    return [
        batch(message(0, purchase_event(0)), message(1, view_event(1)), message(2, b"{bad")),
        batch(message(3, purchase_event(3, value=5000.0))),
    ]


def test_transform_parses_scores_and_tags_every_verdict():
    def check(batches):
        by_first = {b.messages[0].message_id: b for b in batches}
        assert set(by_first) == {"m0", "m3"}
        first, second = by_first["m0"], by_first["m3"]
        assert [r.message.message_id for r in first.rejected] == ["m2"]
        assert [v["is_anomaly"] for v in first.verdicts] == [False]
        assert [v["is_anomaly"] for v in second.verdicts] == [True]
        assert {v["model_version"] for b in batches for v in b.verdicts} == {"test-1"}
        assert first.model_version == second.model_version == "test-1"

    with test_pipeline.TestPipeline(runner="BundleBasedDirectRunner") as p:
        out = p | beam.Create(_input()) | pipeline.Transform(ThresholdScorer)
        assert_that(out, check)


def test_scoring_failure_dead_letters_the_purchases_and_keeps_the_rest():
    def check(batches):
        rejected = {r.message.message_id: r.reason for b in batches for r in b.rejected}
        assert set(rejected) == {"m0", "m2", "m3"}
        assert "model exploded" in rejected["m0"] and "model exploded" in rejected["m3"]
        assert [m.message_id for b in batches for m in b.event_messages] == ["m1"]
        assert all(not b.verdicts for b in batches)

    with test_pipeline.TestPipeline(runner="BundleBasedDirectRunner") as p:
        out = p | beam.Create(_input()) | pipeline.Transform(BrokenScorer)
        assert_that(out, check)


def test_online_scorer_flags_an_outlier_after_warm_up():
    scorer = OnlineScorer("zscore")
    normal = [{"value": 40.0 + (i % 10)} for i in range(200)]
    verdicts, version = scorer.score([*normal, {"value": 50_000.0}])
    assert version == "beam-zscore"
    assert verdicts[0]["score"] is None and not verdicts[0]["is_anomaly"]  # warm-up: no verdict yet
    assert not any(v["is_anomaly"] for v in verdicts[5:200])
    assert verdicts[-1]["is_anomaly"] and verdicts[-1]["model_version"] == "beam-zscore"


def test_the_scorer_is_one_per_process_so_bundles_share_what_it_learnt():
    # The direct runner rebuilds RunInference's DoFn (and its Shared handle) every bundle: the factory
    # must hand back the same scorer, or the model reloads per batch and online detectors forget.
    factory = pipeline._OnlineFactory("robust-zscore")
    assert factory() is factory() is pipeline._OnlineFactory("robust-zscore")()
    assert factory() is not pipeline._OnlineFactory("iqr")()
