"""Loading orders into BigQuery and querying them, against `hyp bigquery` through google-cloud-bigquery."""

from models import Order
from shop.orders import create_orders_table, load_orders, revenue_by_customer


def test_revenue_per_customer(bigquery_client):
    table_id = create_orders_table(bigquery_client, "shop")
    load_orders(bigquery_client, table_id, [Order("o-1", "ada", 12.5), Order("o-2", "grace", 30.0),
                                            Order("o-3", "ada", 7.5)])  # fmt: skip

    assert revenue_by_customer(bigquery_client, table_id) == {"ada": 20.0, "grace": 30.0}
