"""Receipts in Cloud Storage, against `hyp storage` through google-cloud-storage."""

from models import Order
from shop.orders import archive_receipt, read_receipt


def test_a_receipt_reads_back(storage_client):
    storage_client.create_bucket("shop-receipts")
    order = Order("o-9", "grace", 99.0)

    name = archive_receipt(storage_client, "shop-receipts", order)

    assert name == "receipts/o-9.json"
    assert read_receipt(storage_client, "shop-receipts", name) == order
    assert [b.name for b in storage_client.list_blobs("shop-receipts")] == [name]
