"""The workshop's nested ``ecommerce`` record, stored beside the flat event columns.

``cloud_run`` and ``dataflow`` rows carry both shapes: the flat columns (``value``, ``tax``, ``items`` as
JSON, ...) that the stack's own readers use, and the ``ecommerce`` RECORD of the workshop's
``ecommerce_events_bq_schema.json`` (``items[]`` and ``purchase{..., items[]}``) that BigQuery clients
query as ``ecommerce.purchase.tax``. A writer gives either; :func:`nest` derives the record from the flat
columns (vectorized: the items JSON goes through Arrow's JSON reader) and :func:`weekday` the workshop's
``weekday`` column. The Arrow types here equal what ``hyp bigquery`` makes of the workshop schema
(tests/services/warehouse/test_ecommerce.py checks it), so one Parquet column serves both.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc


def _repeated(kind: pa.DataType) -> pa.DataType:
    return pa.list_(pa.field("element", kind, nullable=False))


_S, _I, _F = pa.string(), pa.int64(), pa.float64()
ITEM = pa.struct(
    [
        ("index", _I),
        ("item_id", _I),
        ("item_name", _S),
        ("item_list_name", _S),
        ("item_list_id", _S),
        ("price", _F),
        ("item_variant", _S),
        ("quantity", _I),
        ("item_brand", _S),
        ("item_category", _S),
        ("item_category_2", _S),
        ("item_category_3", _S),
        ("item_category_4", _S),
    ]
)
PURCHASE_ITEM = pa.struct(
    [
        ("item_coupon", _S),
        ("quantity", _I),
        ("item_variant", _S),
        ("item_category", _S),
        ("item_name", _S),
        ("item_id", _I),
        ("item_brand", _S),
        ("item_price", _F),
    ]
)
PURCHASE = pa.struct(
    [
        pa.field("items", _repeated(PURCHASE_ITEM), nullable=False),
        ("coupon", _S),
        ("tax", _F),
        ("shipping", _F),
        ("value", _F),
        ("affiliation", _S),
        ("currency", _S),
        ("transaction_id", _S),
    ]
)
ECOMMERCE = pa.struct([pa.field("items", _repeated(ITEM), nullable=False), pa.field("purchase", PURCHASE)])

# every key an item may carry in the flat ``items`` JSON (both item shapes); item_id read as text
_RAW_ITEM = pa.struct(
    [(f.name, _S if f.name == "item_id" else f.type) for f in ITEM] + [("item_coupon", _S), ("item_price", _F)]
)
_RAW = pa.schema([("i", pa.list_(_RAW_ITEM))])
_MAX_ID_DIGITS = 18  # an INTEGER item_id: digits only, within int64


_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def weekday(times: pa.ChunkedArray | pa.Array) -> pa.Array:
    """The workshop's ``weekday`` (``Monday`` ...) of each event time (a lookup by day of the week:
    strftime's ``%A`` cost about as much as the rest of a 200,000-row append)."""
    if isinstance(times, pa.ChunkedArray):
        times = times.combine_chunks()
    return pa.array(_WEEKDAYS, _S).take(pc.day_of_week(times))


def raw_items(offsets: pa.Array, fields: dict[str, pa.Array]) -> pa.ListArray:
    """Items given as columns (one value per item, ``offsets`` splitting them into rows) in the form
    :func:`nest` takes instead of parsing the ``items`` JSON: a writer that has the items as arrays (the
    load generator) skips the JSON round trip. Missing fields are null; ``item_id`` is taken as text."""
    n = len(offsets) - 1 if len(offsets) else 0
    count = len(next(iter(fields.values()))) if fields else 0
    values = pa.StructArray.from_arrays(
        [fields[f.name].cast(f.type) if f.name in fields else pa.nulls(count, f.type) for f in _RAW_ITEM],
        fields=list(_RAW_ITEM),
    )
    out = pa.ListArray.from_arrays(offsets.cast(pa.int32()), values)
    assert len(out) == n
    return out


def nest(data: pa.Table, items: pa.ListArray | None = None) -> pa.Array:
    """The ``ecommerce`` record of each flat row: ``purchase`` for purchases (their items as
    ``purchase.items``), ``items`` for every other event; item ids that are not integers read as null.
    ``items`` (from :func:`raw_items`) stands in for parsing the flat ``items`` JSON."""
    n = data.num_rows

    def text(name: str) -> pa.Array:  # large_string (pandas) or string alike
        return data.column(name).combine_chunks().cast(_S) if name in data.column_names else pa.nulls(n, _S)

    purchase = pc.fill_null(pc.equal(text("event"), "purchase"), False)
    raw = items if items is not None else _parse_items(text("items"))
    values = raw.flatten()
    ids = values.field("item_id")
    digits = pc.and_(pc.utf8_is_digit(ids), pc.less_equal(pc.utf8_length(ids), _MAX_ID_DIGITS))
    item_id = pc.cast(pc.if_else(digits, ids, pa.scalar(None, _S)), _I)
    listed, bought_price = values.field("price"), values.field("item_price")
    columns = {f.name: values.field(f.name) for f in _RAW_ITEM} | {"item_id": item_id}
    columns_event = columns | {"price": pc.coalesce(listed, bought_price)}
    columns_bought = columns | {"item_price": pc.coalesce(bought_price, listed)}
    items = pa.StructArray.from_arrays([columns_event[f.name] for f in ITEM], fields=list(ITEM))
    bought = pa.StructArray.from_arrays([columns_bought[f.name] for f in PURCHASE_ITEM], fields=list(PURCHASE_ITEM))
    # each row's items go to ecommerce.items or to purchase.items: split them by the row they belong to
    of_purchase = pc.take(purchase, pc.list_parent_indices(raw))
    event_items = _lists(raw, pc.invert(purchase), items.filter(pc.invert(of_purchase)), ITEM)
    bought_items = _lists(raw, purchase, bought.filter(of_purchase), PURCHASE_ITEM)

    def column(name: str, kind: pa.DataType) -> pa.Array:
        return data.column(name).combine_chunks().cast(kind) if name in data.column_names else pa.nulls(n, kind)

    detail = pa.StructArray.from_arrays(
        [bought_items] + [column(f.name, f.type) for f in list(PURCHASE)[1:]],
        fields=list(PURCHASE),
        mask=pc.invert(purchase),
    )
    return pa.StructArray.from_arrays([event_items, detail], fields=list(ECOMMERCE))


def _lists(raw: pa.ListArray, keep: pa.Array, values: pa.Array, kind: pa.DataType) -> pa.Array:
    """Lists of ``values`` with ``raw``'s lengths where ``keep``, empty elsewhere (``values`` already filtered)."""
    lengths = pc.if_else(keep, pc.fill_null(pc.list_value_length(raw), 0), 0)
    offsets = pa.concat_arrays([pa.array([0], pa.int32()), pc.cumulative_sum(lengths).cast(pa.int32())])
    return pa.ListArray.from_arrays(offsets, values, type=_repeated(kind))


def _parse_items(text: pa.Array) -> pa.ListArray:
    """The flat ``items`` JSON of each row as a list of raw items (a null or bad value: no items)."""
    if len(text) == 0:
        return pa.array([], pa.list_(_RAW_ITEM))  # type: ignore[return-value]
    body = pc.fill_null(text, "[]")
    lines = pc.binary_join_element_wise('{"i":', body, "}", "")
    try:
        import pyarrow.json as pajson

        buffer = "\n".join(lines.to_pylist()).encode()
        options = pajson.ParseOptions(explicit_schema=_RAW, unexpected_field_behavior="ignore")
        single = pajson.ReadOptions(use_threads=False, block_size=max(1 << 20, len(buffer) + 1))
        parsed = pajson.read_json(io.BytesIO(buffer), read_options=single, parse_options=options)
        parsed = parsed.column("i").combine_chunks()
        if len(parsed) == len(text):
            return parsed  # type: ignore[no-any-return]
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass  # numbers where text was expected, or the reverse: row by row below
    return pa.array([_items(v) for v in text.to_pylist()], pa.list_(_RAW_ITEM))  # type: ignore[return-value]


def _items(value: str | None) -> list[dict[str, Any]]:
    """One row's items, leniently: ids to text, numbers from text, anything else dropped."""
    try:
        items = json.loads(value) if value else []
    except ValueError:
        return []
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        row: dict[str, Any] = {}
        for f in _RAW_ITEM:
            v = item.get(f.name)
            if v is None or isinstance(v, dict | list):
                continue
            try:
                if f.type == _S:
                    row[f.name] = v if isinstance(v, str) else json.dumps(v)
                elif f.type == _I:
                    row[f.name] = int(v)
                else:
                    row[f.name] = float(v)
            except (TypeError, ValueError):
                continue
        out.append(row)
    return out
