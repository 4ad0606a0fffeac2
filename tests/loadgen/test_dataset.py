"""labelled_purchases: the training-set API, same rows as the stream's purchases."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from loadgen.config import ANOMALY_KINDS, Drift, GeneratorConfig
from loadgen.core import State, draw_purchases
from loadgen.dataset import labelled_purchases
from loadgen.generator import EventGenerator
from loadgen.render import columns, labels, messages
from services.common.events import event_row


def test_columns_and_labels():
    df = labelled_purchases(20_000, seed=1)
    expected = set(event_row({"event": "purchase", "event_datetime": "2026-01-01 00:00:00"})) | {
        "anomaly",
        "anomaly_kind",
    }
    assert set(df.columns) == expected
    assert len(df) == 20_000 and (df.event == "purchase").all()
    assert set(df.anomaly.unique()) <= {0, 1}
    assert ((df.anomaly == 1) == (df.anomaly_kind != "")).all()
    assert set(df.anomaly_kind.unique()) - {""} <= set(ANOMALY_KINDS)
    assert pd.api.types.is_datetime64_any_dtype(df.event_datetime)
    items = json.loads(df["items"].iloc[0])
    assert df.items_count.iloc[0] == len(items) and {"price", "quantity", "item_id"} <= set(items[0])


def test_same_seed_same_rows():
    pd.testing.assert_frame_equal(labelled_purchases(3000, seed=5), labelled_purchases(3000, seed=5))
    assert not labelled_purchases(3000, seed=5)["value"].equals(labelled_purchases(3000, seed=6)["value"])


def test_rows_equal_the_stream_rendering_of_the_same_draw():
    config = GeneratorConfig(anomaly_rates={k: 0.05 for k in ANOMALY_KINDS})
    batch = draw_purchases(np.random.default_rng(3), config, 2000, State())
    cols = columns(batch, config.n_users, now=1_800_000_000.0)
    cols.update(labels(batch))
    table = [
        dict(zip(cols, values, strict=True)) for values in zip(*(v.to_pylist() for v in cols.values()), strict=True)
    ]
    for i, (event, attributes) in enumerate(messages(batch, config.n_users, "r", now=1_800_000_000.0)):
        row = event_row(event)
        got = table[i]
        for key in ("user_id", "client_id", "page", "page_previous", "transaction_id", "affiliation", "currency"):
            assert got[key] == row[key], key
        assert got["coupon"] == row["coupon"]
        assert (got["value"], got["tax"], got["shipping"]) == (row["value"], row["tax"], row["shipping"])
        assert json.loads(got["items"]) == json.loads(row["items"])
        assert got["anomaly_kind"] == attributes["anomaly_kind"]


def test_same_distribution_as_the_stream():
    df = labelled_purchases(30_000, seed=8)
    stream = [e for e, _ in EventGenerator(8, GeneratorConfig(mix={"purchase": 1})).next_batch(30_000)]
    stream_values = np.array([e["ecommerce"]["purchase"]["value"] for e in stream])
    for q in (0.1, 0.25, 0.5, 0.75, 0.9):
        a, b = np.quantile(df["value"], q), np.quantile(stream_values, q)
        assert abs(a - b) / b < 0.06, (q, a, b)


def test_drift_and_rates_options():
    base = labelled_purchases(10_000, seed=2, anomaly_rates={})
    drifted = labelled_purchases(10_000, seed=2, anomaly_rates={}, drift=Drift(price_factor=1.5))
    assert base.anomaly.sum() == 0 == drifted.anomaly.sum()
    assert 1.35 < drifted["value"].median() / base["value"].median() < 1.65
