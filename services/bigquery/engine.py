"""One query engine for every user of the warehouse's SQL: `hyp bigquery`'s jobs, `hyp sql` and the console's
SQL box all run BigQuery Standard SQL through the same translator (sql.py) and the same table resolution
(jobs.py: the catalog first, then the stack's own tables in ``ecommerce_sink``), on a DuckDB connection
confined to the warehouse (services/warehouse/guard.py).

:func:`run_query` is the read-only entry of `hyp sql` and the console: one query, unqualified names in the
workshop's dataset ``ecommerce_sink``, anything but a query refused by name (``check_query_only``).
"""

from __future__ import annotations

import os
from typing import Any

from services.bigquery.errors import BigQueryError
from services.bigquery.jobs import WORKSHOP_DATASET, QueryTimeout

__all__ = ["WORKSHOP_DATASET", "BigQueryError", "QueryTimeout", "run_query"]


def run_query(
    warehouse_dir: str | os.PathLike[str],
    query: str,
    *,
    project: str,
    default_dataset: str | None = WORKSHOP_DATASET,
    timeout_s: float | None = None,
) -> Any:  # -> pyarrow.Table
    """The rows of one BigQuery query over the warehouse; BigQueryError (invalidQuery, notFound, ...) or
    QueryTimeout (stopped inside DuckDB after ``timeout_s``) otherwise."""
    from services.bigquery.catalog import Catalog
    from services.bigquery.jobs import Jobs
    from services.bigquery.sql import check_query_only

    check_query_only(query)
    answer = Jobs(Catalog(warehouse_dir)).select(project, query, default_dataset, timeout_s)
    assert answer.data is not None
    return answer.data
