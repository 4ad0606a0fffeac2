"""Server-side batching of a deployed model: concurrent requests scored in one call, each answered with its
own rows; a bad request among them fails alone."""

from __future__ import annotations

import asyncio
import threading
import time

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


class Where(Counted):
    """Records the thread of each call; ``pause`` seconds of CPU per call make it a slow model."""

    threads: list[int]
    pause: float = 0.0

    def predict_rows(self, instances):
        self.threads.append(threading.get_ident())
        end = time.thread_time() + self.pause
        while time.thread_time() < end:  # the model's own CPU work, slow on purpose (nothing waits for it)
            pass
        return super().predict_rows(instances)


def where(pause: float) -> Where:
    m = Where(model().estimator)
    object.__setattr__(m, "calls", [])
    object.__setattr__(m, "threads", [])
    object.__setattr__(m, "pause", pause)
    return m


def test_a_quick_model_is_called_on_the_event_loop_after_its_first_call_a_slow_one_in_a_thread():
    quick, slow = where(0.0), where(0.05)

    async def run(m: Where, inline_below_s: float) -> tuple[int, list[bytes]]:
        batcher = Batcher(m, max_rows=100, inline_below_s=inline_below_s)
        answers = [await batcher.predict_json([[0.5, 0.5]]) for _ in range(3)]
        return threading.get_ident(), answers

    loop_thread, answers = asyncio.run(run(quick, inline_below_s=1.0))  # a bound no call here comes near
    assert [orjson.loads(a) for a in answers] == [[True]] * 3
    assert quick.threads[0] != loop_thread  # not yet measured: a worker thread
    assert quick.threads[1:] == [loop_thread, loop_thread]  # measured quick: the loop itself

    loop_thread, answers = asyncio.run(run(slow, inline_below_s=0.01))  # each call computes for 0.05 s
    assert [orjson.loads(a) for a in answers] == [[True]] * 3
    assert loop_thread not in slow.threads


def test_a_quick_model_turning_slow_goes_back_to_a_worker_thread():
    m = where(0.0)

    async def run() -> list[int]:
        batcher = Batcher(m, max_rows=100, inline_below_s=0.01)
        batcher.cost_s = 0.0  # measured quick
        await batcher.predict_json([[0.5, 0.5]])  # on the loop
        object.__setattr__(m, "pause", 0.2)  # now each call computes for 0.2 s: the average goes over 0.01 s
        await batcher.predict_json([[0.5, 0.5]])
        await batcher.predict_json([[0.5, 0.5]])
        return [threading.get_ident()]

    [loop_thread] = asyncio.run(run())
    assert m.threads[:2] == [loop_thread, loop_thread] and m.threads[2] != loop_thread
