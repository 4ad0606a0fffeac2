"""Batches of columns -> events: dicts with attributes (the stream) or Arrow tables (files, training sets).

Both renderings read the same columns, so a Parquet backfill holds what the
stream would have sent. Labels go to attributes only, never into the event.
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loadgen.catalogue import AFFILIATIONS, COUPON_NAMES, catalogue, users
from loadgen.config import ANOMALY_KINDS, EVENT_TYPES
from loadgen.core import PURCHASE, Batch

CURRENCY = "EUR"
CHECKOUT_PAGE, CONFIRMATION_PAGE = "/checkout", "/checkout/confirmation"
PREVIOUS_PAGES = ("/", "/search")  # codes 0, 1; code 2 = the product's category page
KIND_NAMES = ("", *ANOMALY_KINDS)
SEP = (",", ":")


@lru_cache(maxsize=1)
def _pages() -> tuple[list[str], list[str]]:
    """page lookup (product pages, then the confirmation page) and page_previous lookup."""
    cat = catalogue()
    product_pages = [f"/product/{i}" for i in cat.item_id]
    category_pages = [f"/category/{c.lower().replace(' ', '-')}" for c in cat.item_category]
    return [*product_pages, CONFIRMATION_PAGE], [*PREVIOUS_PAGES, CHECKOUT_PAGE, *category_pages]


def page_indices(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    first = batch.product[batch.offsets[:-1]]
    purchase = batch.etype == PURCHASE
    page = np.where(purchase, catalogue().size, first)
    prev = np.where(purchase, 2, np.where(batch.prev_page == 2, 3 + first, batch.prev_page))
    return page, prev


def datetime_strings(ts: np.ndarray) -> np.ndarray:
    """Epoch seconds -> the workshop's "YYYY-MM-DD HH:MM:SS.mmm" (UTC)."""
    ms = np.rint(ts * 1000).astype(np.int64).astype("datetime64[ms]")
    return np.char.replace(np.datetime_as_string(ms, unit="ms"), "T", " ")


def _timestamps(batch: Batch, now: float) -> np.ndarray:
    return np.where(np.isnan(batch.ts), now, batch.ts)


def client_id(index: int) -> str:
    return f"{index // 2:06d}.{index % 2 + 1}"


def messages(batch: Batch, n_users: int, run_id: str, now: float | None = None) -> list[tuple[dict, dict[str, str]]]:
    """(event, attributes) pairs; ``now`` (epoch s) stamps real-clock events and ``sent_at``."""
    now = time.time() if now is None else now
    cat, user_ids = catalogue(), users(n_users).user_id
    pages, prevs = _pages()
    page, prev = page_indices(batch)
    when = datetime_strings(_timestamps(batch, now)).tolist()
    etype, user, client = batch.etype.tolist(), batch.user.tolist(), batch.client.tolist()
    offsets, product, qty = batch.offsets.tolist(), batch.product.tolist(), batch.qty.tolist()
    price = (batch.price / 100).tolist()
    value, tax, shipping = (batch.value / 100).tolist(), (batch.tax / 100).tolist(), (batch.shipping / 100).tolist()
    coupon, affiliation, txn, kind = (
        batch.coupon.tolist(), batch.affiliation.tolist(), batch.txn.tolist(), batch.kind.tolist()
    )  # fmt: skip
    page, prev = page.tolist(), prev.tolist()
    base = cat.item_base
    sent_at = str(int(now * 1000))
    out = []
    for i in range(len(etype)):
        items = [{**base[product[j]], "price": price[j], "quantity": qty[j]} for j in range(offsets[i], offsets[i + 1])]
        event: dict[str, Any] = {
            "event_datetime": when[i],
            "event": EVENT_TYPES[etype[i]],
            "user_id": user_ids[user[i]],
            "client_id": client_id(client[i]),
            "page": pages[page[i]],
            "page_previous": prevs[prev[i]],
        }
        if etype[i] == PURCHASE:
            p = {
                "transaction_id": f"T{txn[i]:012d}",
                "affiliation": AFFILIATIONS[affiliation[i]],
                "value": value[i],
                "tax": tax[i],
                "shipping": shipping[i],
                "currency": CURRENCY,
            }
            if coupon[i]:
                p["coupon"] = COUPON_NAMES[coupon[i]]
            p["items"] = items
            event["ecommerce"] = {"purchase": p}
        else:
            event["ecommerce"] = {"items": items}
        attributes = {
            "anomaly": "1" if kind[i] else "0",
            "anomaly_kind": KIND_NAMES[kind[i]],
            "event": EVENT_TYPES[etype[i]],
            "sent_at": sent_at,
            "run_id": run_id,
        }
        out.append((event, attributes))
    return out


@lru_cache(maxsize=1)
def _item_prefixes() -> pa.Array:
    cat = catalogue()
    return pa.array([json.dumps(b, separators=(",", ":"))[:-1] + ',"price":' for b in cat.item_base])


def money_strings(cents: np.ndarray) -> pa.Array:
    """Integer cents -> JSON numbers with two decimals ("-12.30")."""
    a = np.abs(cents)
    sign = pa.array(np.where(cents < 0, "-", ""))
    whole = pc.cast(pa.array(a // 100), pa.string())
    frac = pc.utf8_lpad(pc.cast(pa.array(a % 100), pa.string()), 2, "0")
    return pc.binary_join_element_wise(sign, whole, ".", frac, "")


def items_json(batch: Batch) -> pa.Array:
    """The ``items`` column: each row's items as compact JSON, built without Python loops."""
    lines = pc.binary_join_element_wise(
        _item_prefixes().take(pa.array(batch.product)),
        money_strings(batch.price),
        ',"quantity":',
        pc.cast(pa.array(batch.qty), pa.string()),
        "}",
        "",
    )
    lists = pa.ListArray.from_arrays(pa.array(batch.offsets.astype(np.int32)), lines)
    return pc.binary_join_element_wise("[", pc.binary_join(lists, ","), "]", "")


@lru_cache(maxsize=1)
def _item_base_columns() -> dict[str, pa.Array]:
    """The catalogue's item fields as one Arrow column each, one value per product."""
    base = catalogue().item_base
    return {key: pa.array([str(b[key]) for b in base], pa.string()) for key in base[0]}


def items_columns(batch: Batch) -> tuple[pa.Array, dict[str, pa.Array]]:
    """The same items as :func:`items_json`, as (row offsets, one column per item field): what
    services.warehouse.ecommerce.raw_items takes, so the warehouse's nested record needs no JSON parse."""
    product = pa.array(batch.product)
    fields = {key: column.take(product) for key, column in _item_base_columns().items()}
    fields["price"] = pa.array(batch.price / 100)
    fields["quantity"] = pa.array(batch.qty.astype(np.int64))
    return pa.array(batch.offsets.astype(np.int32)), fields


_TABLES: dict[int, tuple[object, pa.Array]] = {}  # id(values) -> (values, as Arrow): long tables built once


def _lookup(values: list[str] | tuple[str, ...], index: np.ndarray) -> pa.Array:
    if len(values) < 64:  # small tables are cheap to convert (and some are built anew per call)
        return pa.array(values, pa.string()).take(pa.array(index))
    entry = _TABLES.get(id(values))
    if entry is None or entry[0] is not values:  # the user table (20,000 ids) took ~3 ms per send
        if len(_TABLES) >= 8:
            _TABLES.clear()
        entry = _TABLES[id(values)] = (values, pa.array(values, pa.string()))
    return entry[1].take(pa.array(index))


def _money(cents: np.ndarray, purchase: np.ndarray) -> pa.Array:
    return pa.array(cents / 100, mask=~purchase)


def attributes_json(batch: Batch, run_id: str, sent_at_ms: int) -> pa.Array:
    """The ``attributes`` column: the message attributes as a JSON object per row."""
    heads = [
        json.dumps({"anomaly": "1" if k else "0", "anomaly_kind": KIND_NAMES[k], "event": e}, separators=SEP)[:-1]
        for k in range(len(KIND_NAMES))
        for e in EVENT_TYPES
    ]
    tail = json.dumps({"sent_at": str(sent_at_ms), "run_id": run_id}, separators=SEP).replace("{", ",", 1)
    return pc.binary_join_element_wise(_lookup(heads, attribute_index(batch)), tail, "")


def columns(batch: Batch, n_users: int, now: float | None = None) -> dict[str, pa.Array]:
    """The event's ``cloud_run`` columns (services.common.events.event_row), as Arrow arrays."""
    now = time.time() if now is None else now
    purchase = batch.etype == PURCHASE
    pages, prevs = _pages()
    page, prev = page_indices(batch)
    ts_us = np.rint(_timestamps(batch, now) * 1e6).astype(np.int64)
    client = pc.binary_join_element_wise(
        pc.utf8_lpad(pc.cast(pa.array(batch.client // 2), pa.string()), 6, "0"),
        pc.cast(pa.array(batch.client % 2 + 1), pa.string()),
        ".",
    )
    txn = pc.binary_join_element_wise("T", pc.utf8_lpad(pc.cast(pa.array(batch.txn), pa.string()), 12, "0"), "")
    no_purchase = pa.array(~purchase)
    return {
        "event_datetime": pa.array(ts_us, pa.timestamp("us")),
        "event": _lookup(EVENT_TYPES, batch.etype),
        "user_id": _lookup(users(n_users).user_id, batch.user),
        "client_id": client,
        "page": _lookup(pages, page),
        "page_previous": _lookup(prevs, prev),
        "transaction_id": pc.if_else(no_purchase, pa.scalar(None, pa.string()), txn),
        "affiliation": pc.if_else(no_purchase, pa.scalar(None, pa.string()), _lookup(AFFILIATIONS, batch.affiliation)),
        "currency": pc.if_else(no_purchase, pa.scalar(None, pa.string()), CURRENCY),
        "coupon": _lookup([None, *COUPON_NAMES[1:]], np.where(purchase, batch.coupon, 0)),  # type: ignore[list-item]
        "value": _money(batch.value, purchase),
        "tax": _money(batch.tax, purchase),
        "shipping": _money(batch.shipping, purchase),
        "items_count": pa.array(np.diff(batch.offsets).astype(np.int32)),
        "items": items_json(batch),
    }


def labels(batch: Batch) -> dict[str, pa.Array]:
    return {
        "anomaly": pa.array((batch.kind > 0).astype(np.int64)),
        "anomaly_kind": _lookup(KIND_NAMES, batch.kind),
    }


def _null_string() -> pa.Scalar:
    return pa.scalar(None, pa.string())


def payloads(batch: Batch, n_users: int, now: float | None = None) -> pa.Array:
    """Each event as compact JSON (the Pub/Sub message data), built column-wise: equal to the dict events."""
    now = time.time() if now is None else now
    c = columns(batch, n_users, now)
    when = pa.array(datetime_strings(_timestamps(batch, now)))
    purchase = pa.array(batch.etype == PURCHASE)
    head = pc.binary_join_element_wise(
        '{"event_datetime":"', when, '","event":"', c["event"], '","user_id":"', c["user_id"],
        '","client_id":"', c["client_id"], '","page":"', c["page"], '","page_previous":"', c["page_previous"],
        '","ecommerce":', "",
    )  # fmt: skip
    coupon = pc.if_else(
        pc.is_null(c["coupon"]), "", pc.binary_join_element_wise(',"coupon":"', pc.fill_null(c["coupon"], ""), '"', "")
    )
    bought = pc.binary_join_element_wise(
        '{"purchase":{"transaction_id":"', pc.fill_null(c["transaction_id"], ""), '","affiliation":"',
        pc.fill_null(c["affiliation"], ""), '","value":', money_strings(batch.value), ',"tax":',
        money_strings(batch.tax), ',"shipping":', money_strings(batch.shipping), f',"currency":"{CURRENCY}"',
        coupon, ',"items":', c["items"], "}}}", "",
    )  # fmt: skip
    browsed = pc.binary_join_element_wise('{"items":', c["items"], "}}", "")
    return pc.binary_join_element_wise(head, pc.if_else(purchase, bought, browsed), "")


def attribute_dicts(batch: Batch, run_id: str, sent_at_ms: int) -> list[dict[str, str]]:
    """The message attributes of each row (labels, event type, send time, run)."""
    templates = attribute_templates(run_id, sent_at_ms)
    return [dict(templates[i]) for i in attribute_index(batch).tolist()]


def attribute_index(batch: Batch) -> np.ndarray:
    """Index of each row's (anomaly kind, event type) pair, as used by :func:`attribute_templates`."""
    return batch.kind.astype(np.int64) * len(EVENT_TYPES) + batch.etype


def attribute_templates(run_id: str, sent_at_ms: int) -> list[dict[str, str]]:
    return [
        {
            "anomaly": "1" if k else "0",
            "anomaly_kind": KIND_NAMES[k],
            "event": e,
            "sent_at": str(sent_at_ms),
            "run_id": run_id,
        }
        for k in range(len(KIND_NAMES))
        for e in EVENT_TYPES
    ]
