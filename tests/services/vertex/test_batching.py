"""Server-side batching of a deployed model: concurrent requests scored in one call, each answered with its
own rows; a bad request among them fails alone."""

from __future__ import annotations

import asyncio

import numpy as np
import orjson
import pytest
from sklearn.linear_model import LogisticRegression

from services.endpoint.resources.batching import Batcher
from services.endpoint.resources.errors import ApiError
from services.endpoint.resources.prebuilt import SklearnModel

pytestmark = pytest.mark.local_only("Vertex's prebuilt containers do not batch across requests; answers are the same")


class Counted(SklearnModel):
    calls: list[int]

    def predict_rows(self, instances):
        self.calls.append(len(instances))
        return super().predict_rows(instances)


def model() -> Counted:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 2))
    counted = Counted(LogisticRegression().fit(X, X[:, 0] > 0))
    object.__setattr__(counted, "calls", [])
    return counted


def test_concurrent_requests_share_one_call_and_each_gets_its_own_rows():
    m = model()
    requests = [[[float(i), -1.0]] * (i % 3 + 1) for i in range(-4, 4)]

    async def run():
        batcher = Batcher(m, max_rows=100)
        return await asyncio.gather(*(batcher.predict_json(r) for r in requests))

    answers = asyncio.run(run())
    assert [orjson.loads(a) for a in answers] == [m.estimator.predict(np.array(r)).tolist() for r in requests]
    assert m.calls == [sum(len(r) for r in requests)]  # all queued before the first call: one call


def test_a_bad_request_fails_alone_and_max_rows_bounds_a_batch():
    m = model()
    good = [[0.5, 0.5]]
    bad = [[1.0, 2.0, 3.0]]  # three features for two

    async def run():
        batcher = Batcher(m, max_rows=2)
        return await asyncio.gather(
            *(batcher.predict_json(r) for r in [good, good, bad, good, good]), return_exceptions=True
        )

    answers = asyncio.run(run())
    assert isinstance(answers[2], ApiError) and answers[2].status == "INVALID_ARGUMENT"
    assert [orjson.loads(a) for i, a in enumerate(answers) if i != 2] == [[True]] * 4
    assert max(m.calls) <= 2
