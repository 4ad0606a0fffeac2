"""Vectorised drawing of events as columns (numpy), the one source of every output.

The stream (``EventGenerator``), the labelled training sets (``labelled_purchases``)
and the Parquet sink all take their rows from :func:`draw_events` /
:func:`draw_purchases`, so they share one distribution. Money is integer cents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from loadgen.catalogue import (
    BASE_SHIPPING_CENTS,
    COUPON_DISCOUNTS,
    FREE_SHIPPING_CENTS,
    REDUCED_VAT_RATES,
    SHIPPING_CAP_CENTS,
    SHIPPING_PER_EXTRA_UNIT_CENTS,
    VAT_RATES,
    catalogue,
    users,
)
from loadgen.config import ANOMALY_KINDS, GeneratorConfig

VIEW, CART, PURCHASE = 0, 1, 2
KIND_CODES = {k: i + 1 for i, k in enumerate(ANOMALY_KINDS)}  # 0 = normal
SPIKE, MISMATCH, TAX, SHIPPING, NONPOSITIVE, BURST = (KIND_CODES[k] for k in ANOMALY_KINDS)

# Normal quantity per basket line: 1..5, mostly 1. A fraud burst line has 10..40.
QTY_VALUES = np.arange(1, 6)
QTY_P = np.array([0.70, 0.18, 0.07, 0.03, 0.02])
MAX_EXTRA_LINES = 5
BURST_QTY = (10, 40)
SPIKE_VALUE_CENTS = (2_400_000, 120_000_000)  # items worth 24,000 .. 1,200,000 EUR: >= 20,400 after any coupon
MISMATCH_HIGH, MISMATCH_LOW = (1.6, 4.0), (0.2, 0.6)
TAX_HIGH, TAX_LOW = (0.40, 1.20), (0.005, 0.035)  # normal tax / value lies in 0.055..0.25
SHIPPING_OUTLIER_CENTS = (15_000, 90_000)


@dataclass
class State:
    """What carries over from one batch to the next: the simulated clock and an unfinished burst."""

    clock: float = 0.0  # epoch seconds of the last simulated timestamp
    burst_user: int = 0
    burst_product: int = 0
    burst_left: int = 0


@dataclass
class Batch:
    """n events as columns; items are flattened with ``offsets`` (row i owns lines offsets[i]:offsets[i+1])."""

    etype: np.ndarray  # int8 VIEW/CART/PURCHASE
    user: np.ndarray  # int64 user index
    client: np.ndarray  # int64 client index
    ts: np.ndarray  # float64 epoch seconds; NaN = stamp with the wall clock when rendered
    prev_page: np.ndarray  # int8 code of page_previous for views and carts
    offsets: np.ndarray  # int64, n + 1
    product: np.ndarray  # int64 per line
    price: np.ndarray  # int64 cents per line
    qty: np.ndarray  # int64 per line
    value: np.ndarray  # int64 cents (purchases; 0 elsewhere)
    tax: np.ndarray
    shipping: np.ndarray
    coupon: np.ndarray  # int8 index into COUPON_NAMES
    affiliation: np.ndarray  # int8
    txn: np.ndarray  # int64 transaction number
    kind: np.ndarray  # int8 anomaly code, 0 = normal
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.etype)

    def take(self, start: int, stop: int) -> Batch:
        lo, hi = self.offsets[start], self.offsets[stop]
        rows = slice(start, stop)
        return Batch(
            self.etype[rows], self.user[rows], self.client[rows], self.ts[rows], self.prev_page[rows],
            self.offsets[start : stop + 1] - lo, self.product[lo:hi], self.price[lo:hi], self.qty[lo:hi],
            self.value[rows], self.tax[rows], self.shipping[rows], self.coupon[rows], self.affiliation[rows],
            self.txn[rows], self.kind[rows],
        )  # fmt: skip


def _offsets(lines: np.ndarray) -> np.ndarray:
    offsets = np.zeros(len(lines) + 1, dtype=np.int64)
    np.cumsum(lines, out=offsets[1:])
    return offsets


def _round(x: np.ndarray) -> np.ndarray:
    return np.rint(x).astype(np.int64)


def _loguniform(rng: np.random.Generator, bounds: tuple[float, float], n: int) -> np.ndarray:
    return np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]), n))


def _assign_kinds(rng: np.random.Generator, config: GeneratorConfig, m: int, state: State):
    """Anomaly code per purchase, plus burst user/product per row (bursts may continue into the next batch)."""
    rates = config.anomaly_rates
    burst_rate = rates["burst"]
    kind = np.zeros(m, dtype=np.int8)
    u = rng.random(m)
    scale = 1.0 / (1.0 - burst_rate) if burst_rate < 1 else 1.0
    edge = 0.0
    for name in ANOMALY_KINDS[:-1]:
        lo, edge = edge, edge + rates[name] * scale
        kind[(u >= lo) & (u < edge)] = KIND_CODES[name]
    b_user = np.zeros(m, dtype=np.int64)
    b_prod = np.zeros(m, dtype=np.int64)
    lo_size, hi_size = config.burst_size
    mean_size = (lo_size + hi_size) / 2
    # a burst starts on a normal purchase with this probability; its rows then make up ~burst_rate of purchases
    p_start = burst_rate / (mean_size * (1.0 - burst_rate)) if 0 < burst_rate < 1 else float(burst_rate > 0)
    starts = np.flatnonzero(rng.random(m) < p_start)
    cursor = 0
    if state.burst_left:
        n = min(state.burst_left, m)
        kind[:n], b_user[:n], b_prod[:n] = BURST, state.burst_user, state.burst_product
        state.burst_left -= n
        cursor = n
    if len(starts):
        cat, pop = catalogue(), users(config.n_users)
        for s in starts.tolist():
            if s < cursor:
                continue
            size = int(rng.integers(lo_size, hi_size + 1))
            user = int(rng.choice(pop.n, p=pop.activity))
            prod = int(cat.burst_products[rng.integers(len(cat.burst_products))])
            end = min(s + size, m)
            kind[s:end], b_user[s:end], b_prod[s:end] = BURST, user, prod
            state.burst_left = s + size - end
            state.burst_user, state.burst_product = user, prod
            cursor = s + size
    return kind, b_user, b_prod


def draw_purchases(rng: np.random.Generator, config: GeneratorConfig, m: int, state: State) -> Batch:
    """m purchase rows, normal or anomalous by the config's rates."""
    cat, pop, drift = catalogue(), users(config.n_users), config.drift
    kind, b_user, b_prod = _assign_kinds(rng, config, m, state)
    burst = kind == BURST
    user = rng.choice(pop.n, size=m, p=pop.activity)
    user[burst] = b_user[burst]
    lines = 1 + np.minimum(rng.poisson(0.9 * drift.basket_factor, m), MAX_EXTRA_LINES)
    lines[burst] = 1
    offsets = _offsets(lines)
    n_lines = int(offsets[-1])
    product = rng.choice(cat.size, size=n_lines, p=cat.popularity)
    qty = QTY_VALUES[rng.choice(len(QTY_VALUES), size=n_lines, p=QTY_P)]
    burst_lines = offsets[:-1][burst]
    product[burst_lines] = b_prod[burst]
    qty[burst_lines] = rng.integers(BURST_QTY[0], BURST_QTY[1] + 1, size=len(burst_lines))
    price = _round(cat.price_cents[product] * drift.price_factor)
    price = np.maximum(price, 1)
    spike = kind == SPIKE
    if spike.any():
        # the whole basket is repriced so that it is worth 20k..1.2M EUR: consistent, only absurdly large
        row_total = np.add.reduceat(price * qty, offsets[:-1])
        factor = _loguniform(rng, SPIKE_VALUE_CENTS, m) / row_total
        line_spike = np.repeat(spike, lines)
        price[line_spike] = _round(price[line_spike] * np.repeat(factor, lines)[line_spike])
    items_total = np.add.reduceat(price * qty, offsets[:-1])
    units = np.add.reduceat(qty, offsets[:-1])
    coupon = np.where(rng.random(m) < drift.coupon_rate, rng.integers(1, len(COUPON_DISCOUNTS), m), 0)
    coupon[burst] = 0
    value = _round(items_total * (1.0 - COUPON_DISCOUNTS[coupon]))
    mismatch = kind == MISMATCH
    if mismatch.any():
        high = rng.random(m) < 0.5
        ratio = np.where(high, rng.uniform(*MISMATCH_HIGH, m), rng.uniform(*MISMATCH_LOW, m))
        value[mismatch] = _round(value * ratio)[mismatch]
    country = pop.country[user]
    # each line at its own rate (standard, or reduced for food and books): the basket's blended rate
    line_country = np.repeat(country, lines)
    line_rate = np.where(cat.reduced[product], REDUCED_VAT_RATES[line_country], VAT_RATES[line_country])
    line_total = price * qty
    blended = np.add.reduceat(line_total * line_rate, offsets[:-1]) / np.maximum(items_total, 1)
    tax = _round(value * blended)
    taxed = kind == TAX
    if taxed.any():
        high = rng.random(m) < 0.5
        rate = np.where(high, rng.uniform(*TAX_HIGH, m), rng.uniform(*TAX_LOW, m))
        tax[taxed] = np.maximum(_round(value * rate), 1)[taxed]
    shipping = BASE_SHIPPING_CENTS[country] + SHIPPING_PER_EXTRA_UNIT_CENTS * (units - 1)
    shipping = np.minimum(shipping, SHIPPING_CAP_CENTS)
    shipping = np.where(items_total >= FREE_SHIPPING_CENTS, 0, _round(shipping * drift.shipping_factor))
    outlier = kind == SHIPPING
    if outlier.any():
        shipping[outlier] = rng.integers(*SHIPPING_OUTLIER_CENTS, size=m)[outlier]
    nonpos = kind == NONPOSITIVE
    if nonpos.any():
        variant = rng.integers(0, 3, size=m)
        negative, zero, neg_ship = nonpos & (variant == 0), nonpos & (variant == 1), nonpos & (variant == 2)
        value[negative], tax[negative] = -value[negative], -tax[negative]
        value[zero], tax[zero] = 0, 0
        shipping[neg_ship] = -rng.integers(500, 5_000, size=m)[neg_ship]
    return Batch(
        etype=np.full(m, PURCHASE, dtype=np.int8),
        user=user,
        client=user * 2 + (rng.random(m) < 0.3),
        ts=np.full(m, np.nan),
        prev_page=np.zeros(m, dtype=np.int8),
        offsets=offsets,
        product=product,
        price=price,
        qty=qty,
        value=value,
        tax=tax,
        shipping=shipping,
        coupon=coupon.astype(np.int8),
        affiliation=(rng.random(m) < 0.2).astype(np.int8),
        txn=rng.integers(0, 10**12, size=m),
        kind=kind,
    )


def draw_browsing(rng: np.random.Generator, config: GeneratorConfig, etype: np.ndarray) -> Batch:
    """view_item / add_to_cart rows: one item each, never anomalous."""
    cat, pop, drift = catalogue(), users(config.n_users), config.drift
    k = len(etype)
    user = rng.choice(pop.n, size=k, p=pop.activity)
    product = rng.choice(cat.size, size=k, p=cat.popularity)
    qty = np.where(etype == CART, QTY_VALUES[rng.choice(len(QTY_VALUES), size=k, p=QTY_P)], 1)
    price = np.maximum(_round(cat.price_cents[product] * drift.price_factor), 1)
    zeros = np.zeros(k, dtype=np.int64)
    return Batch(
        etype=etype.astype(np.int8), user=user, client=user * 2 + (rng.random(k) < 0.3), ts=np.full(k, np.nan),
        prev_page=rng.integers(0, 3, size=k).astype(np.int8), offsets=np.arange(k + 1, dtype=np.int64),
        product=product, price=price, qty=qty, value=zeros, tax=zeros, shipping=zeros,
        coupon=zeros.astype(np.int8), affiliation=zeros.astype(np.int8), txn=zeros, kind=zeros.astype(np.int8),
    )  # fmt: skip


def stamp(rng: np.random.Generator, config: GeneratorConfig, n: int, state: State) -> np.ndarray:
    """Timestamps: Poisson arrivals on the simulated clock, NaN (stamp at render) on the real one."""
    if config.clock == "real":
        return np.full(n, np.nan)
    if state.clock == 0.0:
        state.clock = epoch_seconds(config.start)
    ts = state.clock + np.cumsum(rng.exponential(1.0 / config.sim_rate, n))
    state.clock = float(ts[-1]) if n else state.clock
    return ts


def epoch_seconds(when: datetime) -> float:
    """Epoch seconds of a datetime; a naive one is UTC."""
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def draw_events(rng: np.random.Generator, config: GeneratorConfig, n: int, state: State) -> Batch:
    """n events of the configured mix, in stream order."""
    etype = rng.choice(3, size=n, p=config.mix_probabilities).astype(np.int8)
    is_p = etype == PURCHASE
    m = int(is_p.sum())
    p = draw_purchases(rng, config, m, state)
    b = draw_browsing(rng, config, etype[~is_p])
    lines = np.ones(n, dtype=np.int64)
    lines[is_p] = np.diff(p.offsets)
    offsets = _offsets(lines)
    line_p = np.repeat(is_p, lines)

    def rows(a_p: np.ndarray, a_b: np.ndarray) -> np.ndarray:
        out = np.empty(n, dtype=np.result_type(a_p, a_b))
        out[is_p], out[~is_p] = a_p, a_b
        return out

    def per_line(a_p: np.ndarray, a_b: np.ndarray) -> np.ndarray:
        out = np.empty(len(line_p), dtype=np.result_type(a_p, a_b))
        out[line_p], out[~line_p] = a_p, a_b
        return out

    return Batch(
        etype=etype, user=rows(p.user, b.user), client=rows(p.client, b.client), ts=stamp(rng, config, n, state),
        prev_page=rows(p.prev_page, b.prev_page), offsets=offsets, product=per_line(p.product, b.product),
        price=per_line(p.price, b.price), qty=per_line(p.qty, b.qty), value=rows(p.value, b.value),
        tax=rows(p.tax, b.tax), shipping=rows(p.shipping, b.shipping), coupon=rows(p.coupon, b.coupon),
        affiliation=rows(p.affiliation, b.affiliation), txn=rows(p.txn, b.txn), kind=rows(p.kind, b.kind),
    )  # fmt: skip
