from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from models.errors import ModelInputError
from models.features import BASE_COLUMNS, FEATURE_SETS, features, fill_missing

ITEMS = json.dumps([{"item_id": "a", "price": 10.0, "quantity": 2}, {"item_id": "b", "item_price": 5.0}])


def test_base_features_accept_a_frame_dicts_and_one_dict() -> None:
    row = {"tax": 5, "shipping": 0, "value": 25}  # ints, as JSON instances often are
    for rows in (pd.DataFrame([row]), [row], row):
        f = features(rows)
        assert list(f.columns) == list(BASE_COLUMNS)
        assert f.to_numpy().tolist() == [[5.0, 0.0, 25.0]]


def test_rich_features_use_items_when_present() -> None:
    f = features([{"tax": 5.0, "shipping": 4.0, "value": 25.0, "items": ITEMS}], FEATURE_SETS["all"]).iloc[0]
    assert f["tax_rate"] == pytest.approx(0.2)
    assert f["items_count"] == 2
    assert f["items_gap"] == pytest.approx(0.0)  # 10*2 + 5*1 = 25
    assert f["max_quantity"] == pytest.approx(math.log1p(2))
    assert f["log_value"] == pytest.approx(math.log1p(25.0))


def test_item_features_are_nan_without_items_and_the_model_fills_them() -> None:
    f = features([{"tax": 5.0, "shipping": 4.0, "value": 25.0}], FEATURE_SETS["rich"])
    assert np.isnan(f["items_gap"].iloc[0]) and np.isnan(f["max_quantity"].iloc[0])
    filled = fill_missing(f.to_numpy(), np.array([0.0, 0.0, 0.0, -0.5, 0.7]))
    assert filled[0, 3:].tolist() == [-0.5, 0.7]


def test_items_as_a_list_and_items_count_fallback() -> None:
    f = features([{"tax": 1.0, "shipping": 0.0, "value": 5.0, "items": [{"price": 5.0}]}], ("items_gap",))
    assert f["items_gap"].iloc[0] == pytest.approx(0.0)
    g = features([{"tax": 1.0, "shipping": 0.0, "value": 5.0, "items_count": 3}], ("items_count",))
    assert g["items_count"].iloc[0] == 3


def test_nonpositive_value_does_not_divide_by_zero() -> None:
    f = features(
        [{"tax": 0.0, "shipping": 0.0, "value": 0.0}, {"tax": -2.0, "shipping": 1.0, "value": -10.0}],
        FEATURE_SETS["all"][:6],
    )
    assert np.isfinite(f.to_numpy()).all()
    assert f["tax_rate"].tolist() == [0.0, -10.0]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"tax": 1.0, "value": 2.0}], "missing column.*shipping"),
        ([{"tax": 1.0, "shipping": float("nan"), "value": 2.0}], r"shipping: row 0 is missing \(NaN\)"),
        (
            [{"tax": 1.0, "shipping": 0.0, "value": 2.0}, {"tax": float("inf"), "shipping": 0.0, "value": 1.0}],
            r"tax: row 1 is not finite \(inf\)",
        ),
        ([{"tax": "abc", "shipping": 0.0, "value": 2.0}], "tax: row 0 is not a number"),
        (["not a row"], "row 0: expected an object"),
    ],
)
def test_bad_rows_get_one_clear_error(rows: list, message: str) -> None:
    with pytest.raises(ModelInputError, match=message):
        features(rows)


def test_unknown_feature_is_an_error() -> None:
    with pytest.raises(ModelInputError, match="unknown feature"):
        features([{"tax": 1.0, "shipping": 0.0, "value": 2.0}], ("colour",))


ODD_ITEMS = [
    ITEMS,
    json.dumps([{"price": 2, "quantity": 3}, {"item_price": 1.5}]),
    '[{"price": NaN, "quantity": 1}, {"price": 2, "quantity": 3}]',  # orjson refuses NaN: the stdlib reads it
    '[{"price": 100000000000000000000000000, "quantity": 2}]',
    '[{"price": 1' + "0" * 400 + '}, {"price": 3}]',  # an integer past float64: that item is skipped
    '[{"item_price": "5.5", "quantity": "2"}, {"price": null, "item_price": 5}, {"price": true}]',
    '[1, [2], {"quantity": null, "price": 4}]',
    '[{"price": "abc"}, {"price": -5, "quantity": -1}]',
    "{not json",
    "",
    "null",
    "3",
    None,
    float("nan"),
    [{"price": 5.0, "quantity": 2}],
]


def test_the_one_pass_item_columns_equal_the_per_row_definition() -> None:
    from models.features import _item_columns, _item_stats

    columns = np.column_stack(_item_columns(ODD_ITEMS))
    expected = np.array([_item_stats(v) for v in ODD_ITEMS], dtype=np.float64)
    assert np.array_equal(columns, expected, equal_nan=True)
    assert columns[2].tolist() == [1.0, 6.0, 3.0, 2.0]  # the NaN-priced item is skipped, not the row
    assert columns[4].tolist() == [1.0, 3.0, 1.0, 3.0]
    assert np.isnan(columns[8]).all() and columns[9].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_a_base_feature_model_never_reads_items() -> None:
    f = features([{"tax": 1.0, "shipping": 0.0, "value": 5.0, "items": object()}], FEATURE_SETS["base"])
    assert f.to_numpy().tolist() == [[1.0, 0.0, 5.0]]
