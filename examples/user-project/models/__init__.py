"""This project's own data model (a package named like one of hyp-local's, which must not shadow it)."""

from models.order import Order

OWNER = "shop-orders"

__all__ = ["OWNER", "Order"]
