"""The warehouse: BigQuery's ``ecommerce_sink`` dataset as Parquet folders read by DuckDB."""

from services.warehouse.tables import TABLES, WarehouseError
from services.warehouse.writer import append

__all__ = ["TABLES", "WarehouseError", "append"]
