"""Reading Prometheus text exposition (the services' own ``/metrics`` pages): sums, histogram quantiles.

One parser for every reader: the console (which keeps only its last two scrapes, to turn counters
into rates, never a time-series database) and ``hyp up``'s live summary. Names are exact, from
:mod:`services.common.metric_names`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from services.common import names


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass
class Scrape:
    """One parsed /metrics page: samples by sample name (``_total``, ``_bucket`` ... kept)."""

    samples: dict[str, list[Sample]] = field(default_factory=dict)

    def total(self, name: str, **match: str) -> float | None:
        """Sum of the samples named ``name`` (an exact name, services.common.metric_names) carrying ``match``."""
        if name not in self.samples:
            return None
        return sum(s.value for s in self.samples[name] if _matches(s, match))

    def matching(self, name: str, short_names: bool = False, **match: str) -> list[Sample]:
        """The samples named ``name`` carrying ``match``; ``short_names``: a short resource name in ``match``
        also matches its full path (``hyp-deadletter`` ~ ``projects/p/topics/hyp-deadletter``)."""
        return [s for s in self.samples.get(name, []) if _matches(s, match, short_names)]

    def label(self, name: str, label: str) -> str | None:
        """``label`` of the first non-zero sample named ``name`` (a gauge set to 1 for the live value)."""
        for s in self.samples.get(name, []):
            if label in s.labels and s.value:
                return s.labels[label]
        return None

    def histogram(self, base: str) -> list[tuple[float, float]]:
        """Cumulative (upper bound, count) pairs of a histogram, summed over its other labels."""
        buckets: dict[float, float] = defaultdict(float)
        for s in self.samples.get(base + "_bucket", []):
            le = s.labels.get("le")
            if le is not None:
                buckets[float(le)] += s.value
        return sorted(buckets.items())


def _matches(sample: Sample, match: dict[str, str], short_names: bool = False) -> bool:
    for key, wanted in match.items():
        got = sample.labels.get(key)
        if got != wanted and not (short_names and got is not None and names.short(got) == wanted):
            return False
    return True


def parse(text: str) -> Scrape:
    """Parse exposition text; raise ValueError naming the problem on garbage."""
    scrape = Scrape()
    try:
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                scrape.samples.setdefault(s.name, []).append(Sample(s.name, dict(s.labels), float(s.value)))
    except Exception as exc:  # the parser raises bare ValueError/TypeError/IndexError on bad lines
        raise ValueError(f"metrics: not Prometheus text ({exc})") from None
    return scrape


def quantile(buckets: list[tuple[float, float]], q: float) -> float | None:
    """Histogram quantile as Prometheus' histogram_quantile computes it (linear within a bucket)."""
    if not buckets or not 0 <= q <= 1:
        return None
    total = buckets[-1][1]
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return prev_bound
            if count == prev_count:
                return bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / (count - prev_count)
        prev_bound, prev_count = bound, count
    return prev_bound


def bucket_delta(now: list[tuple[float, float]], before: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Buckets of the interval between two scrapes (falls back to ``now`` after a restart)."""
    old = dict(before)
    delta = [(b, c - old.get(b, 0.0)) for b, c in now]
    if any(c < 0 for _, c in delta):
        return now
    return delta


def mean(buckets_sum: float | None, buckets_count: float | None) -> float | None:
    if not buckets_count or buckets_sum is None:
        return None
    return buckets_sum / buckets_count
