"""The send loop: open-loop rate control, phases, progress bar, clean stop, and the run report.

Open loop: event k of a phase is due at ``k / rate`` seconds after the phase
starts, whatever the sink's latency; each turn sends everything that is due
(in batches), so a slow sink makes the run fall behind (reported as lag) rather
than quietly lowering the rate.

The loop sleeps between turns: a turn comes at most every ``TICK_S`` (or when the
next event is due, if later), so at 200 events/s it wakes 10 times a second and
sends ~20 events each time instead of waking for every event. The lag therefore
includes up to one tick of batching. A stop (SIGTERM) ends the sleep at once.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import numpy as np

from loadgen.config import ANOMALY_KINDS, Drift, GeneratorConfig
from loadgen.core import PURCHASE
from loadgen.generator import EventGenerator
from loadgen.sinks import Sink

RAMP_STEP_S = 0.5  # how often a ramping phase updates its drift
TICK_S = 0.1  # at most this often a paced run wakes up and sends what is due (one batch per tick)


@dataclass(frozen=True)
class RunPhase:
    config: GeneratorConfig
    rate: float | None = None  # events/s; None = as fast as possible
    count: int | None = None
    duration: float | None = None
    ramp_from: Drift | None = None  # ramp linearly from this drift to config.drift
    name: str = ""


@dataclass
class Report:
    run_id: str
    sent: int = 0
    elapsed_s: float = 0.0
    achieved_rate: float = 0.0
    target_rate: float | None = None
    max_lag_s: float = 0.0  # the furthest behind schedule the run fell
    final_lag_s: float = 0.0
    purchases: int = 0
    anomalies: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    stopped: bool = False

    def as_dict(self) -> dict:
        out = asdict(self)
        for k in ("elapsed_s", "achieved_rate", "max_lag_s", "final_lag_s"):
            out[k] = round(out[k], 3)
        return out


def _progress(enabled: bool, total: int | None):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="ev", unit_scale=True, file=sys.stderr, mininterval=0.5, smoothing=0.1)


def _warm_up(generator: EventGenerator) -> None:
    """Build the catalogue and run every Arrow kernel once, so the first timed batch is not slow."""
    from loadgen.render import attributes_json, payloads

    sample = EventGenerator(0, generator.config.model_copy(update={"clock": "real"})).next_columns(64)
    payloads(sample, generator.config.n_users)
    attributes_json(sample, generator.run_id, 0)


def run(
    generator: EventGenerator,
    sink: Sink,
    phases: list[RunPhase],
    *,
    max_batch: int = 1000,
    count: int | None = None,
    duration: float | None = None,
    progress: bool = False,
    stop: threading.Event | None = None,
) -> Report:
    """Send the phases in order; ``count``/``duration`` cap the whole run. Closes the sink."""
    stop = stop or threading.Event()
    rates = [p.rate for p in phases]
    report = Report(run_id=generator.run_id, target_rate=rates[0] if len(set(rates)) == 1 else None)
    kinds: Counter[int] = Counter()
    totals = [p.count for p in phases]
    total = count or (sum(totals) if all(totals) else None)  # type: ignore[arg-type]
    bar = _progress(progress, total)
    _warm_up(generator)
    start = time.monotonic()
    run_deadline = start + duration if duration else math.inf
    try:
        for phase in phases:
            if stop.is_set() or (count and report.sent >= count) or time.monotonic() >= run_deadline:
                break
            if phase.ramp_from is not None:
                generator.configure(phase.config.model_copy(update={"drift": phase.ramp_from}))
            else:
                generator.configure(phase.config)
            generator.prime()
            t0 = time.monotonic()
            deadline = min(t0 + phase.duration if phase.duration else math.inf, run_deadline)
            limit = phase.count or math.inf
            if count:
                limit = min(limit, count - report.sent)
            sent, last_ramp, last_bar, next_turn = 0, t0, t0, t0
            while not stop.is_set() and sent < limit:
                now = time.monotonic()
                final = now >= deadline  # a paced run still sends what fell due before its deadline
                if final and not phase.rate:
                    break
                if phase.rate and not final and now < next_turn:
                    # sleep until the next tick, and at least until the next event is due; a stop wakes it
                    stop.wait(min(max(next_turn, t0 + sent / phase.rate) - now, deadline - now))
                    continue
                if phase.ramp_from is not None and phase.duration and now - last_ramp >= RAMP_STEP_S:
                    drift = phase.ramp_from.lerp(phase.config.drift, (now - t0) / phase.duration)
                    generator.configure(phase.config.model_copy(update={"drift": drift}))
                    last_ramp = now
                n = int(min(max_batch, limit - sent))
                if phase.rate:
                    elapsed = min(now, deadline) - t0
                    due = (math.ceil(elapsed * phase.rate) if final else math.floor(elapsed * phase.rate) + 1) - sent
                    if due <= 0 and final:
                        break
                    if due <= 0:
                        next_turn = t0 + sent / phase.rate
                        continue
                    if due <= n:  # everything due fits in this send: the next turn is a tick away
                        next_turn = now + TICK_S
                    lag = max(0.0, elapsed - sent / phase.rate)
                    report.max_lag_s = max(report.max_lag_s, lag)
                    report.final_lag_s = lag
                    n = min(n, due)
                batch = generator.next_columns(n)
                sink.send(batch, time.time())
                sent += n
                report.sent += n
                report.purchases += int(np.count_nonzero(batch.etype == PURCHASE))
                kinds.update(batch.kind[batch.kind > 0].tolist())
                if bar is not None:
                    bar.update(n)
                    if now - last_bar >= 0.5:
                        bar.set_postfix_str(f"{phase.name or 'run'} lag {report.final_lag_s:.2f}s", refresh=False)
                        last_bar = now
    finally:
        try:
            sink.close()
        finally:
            if bar is not None:
                bar.close()
    report.elapsed_s = time.monotonic() - start
    report.achieved_rate = report.sent / report.elapsed_s if report.elapsed_s > 0 else 0.0
    report.by_kind = {k: kinds.get(i + 1, 0) for i, k in enumerate(ANOMALY_KINDS)}
    report.anomalies = sum(report.by_kind.values())
    report.stopped = stop.is_set()
    return report
