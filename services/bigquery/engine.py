"""One query engine for every user of the warehouse's SQL: `hyp bigquery`'s jobs, `hyp sql` and the console's
SQL box all run BigQuery Standard SQL through the same translator (sql.py) and the same table resolution
(jobs.py, through the catalog: the stack's own tables are its dataset ``ecommerce_sink``, workshop.py), on
a DuckDB connection confined to the warehouse (services/warehouse/guard.py).

:func:`run_query` is the read-only entry of `hyp sql` and the console: one query, unqualified names in the
workshop's dataset ``ecommerce_sink``, anything but a query refused by name (``check_query_only``); and
``DESCRIBE table``, a local convenience that lists the table's columns.
"""

from __future__ import annotations

import contextlib
import os
import re
from typing import TYPE_CHECKING, Any

from services.bigquery.errors import BigQueryError
from services.bigquery.jobs import QueryTimeout
from services.bigquery.workshop import DATASET as WORKSHOP_DATASET

if TYPE_CHECKING:
    from services.bigquery.jobs import Jobs

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

    jobs = Jobs(Catalog(warehouse_dir))
    described = _DESCRIBE.fullmatch(query)
    if described:  # a local convenience (BigQuery has INFORMATION_SCHEMA.COLUMNS): the table's columns
        return describe(jobs, project, default_dataset, described.group(1))
    check_query_only(query)
    answer = jobs.select(project, query, default_dataset, timeout_s)
    assert answer.data is not None
    return answer.data


_DESCRIBE = re.compile(r"\s*DESCRIBE\s+(?:TABLE\s+)?([`\w.\-]+)\s*;?\s*", re.IGNORECASE)


def describe(jobs: Jobs, project: str, default_dataset: str | None, table: str) -> Any:  # -> pyarrow.Table
    """``DESCRIBE table``: its columns as BigQuery types them (``column_name``, ``data_type``, ``is_nullable``),
    found by the same names as a query's tables."""
    import pyarrow as pa

    from services.bigquery.jobs import standard_type
    from services.bigquery.sql import translate

    probe = f"SELECT * FROM {table} LIMIT 0"
    fields = jobs.select(project, probe, default_dataset).fields  # the stack's tables, views: as queried
    for ref in translate(probe, project, default_dataset).tables.values():
        with contextlib.suppress(BigQueryError):  # a catalog table: its declared schema (modes included)
            fields = jobs.catalog.fields(ref.project, ref.dataset, ref.table)
    return pa.table(
        {
            "column_name": [f.name for f in fields],
            "data_type": [standard_type(f) for f in fields],
            "is_nullable": ["NO" if f.mode == "REQUIRED" else "YES" for f in fields],
        }
    )
