"""The SQL box: one read-only BigQuery Standard SQL query, run by `hyp bigquery`'s engine in process
(services/bigquery/engine.py: the same translator and table names as `hyp sql` and the BigQuery API,
unqualified tables in ``ecommerce_sink``), confined to the warehouse (services/warehouse/guard.py). Bad or
writing SQL, or SQL reaching outside the warehouse (files, extensions, settings), gets a 400 naming the
problem; a query stopped at the time limit, 408."""

from __future__ import annotations

import asyncio
import functools
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.console.deps import SettingsDep

router = APIRouter(prefix="/api")

SQL_TIMEOUT_S = 20.0


class SqlRequest(BaseModel):
    sql: str = Field(min_length=1, max_length=20_000)


@router.post("/sql")
async def sql(body: SqlRequest, settings: SettingsDep) -> JSONResponse:
    """One read-only BigQuery query over the warehouse; bad or writing SQL gets a 400 naming the problem."""
    from services.bigquery.engine import BigQueryError, QueryTimeout, run_query

    run = functools.partial(
        run_query, settings.warehouse_dir, body.sql, project=settings.project, timeout_s=SQL_TIMEOUT_S
    )
    try:  # DuckDB stops the query at SQL_TIMEOUT_S; the wait's own limit is a backstop
        table = await asyncio.wait_for(asyncio.to_thread(run), SQL_TIMEOUT_S + 10)
    except QueryTimeout as exc:
        return JSONResponse({"error": f"sql: {exc.message}"}, status_code=408)
    except BigQueryError as exc:
        return JSONResponse({"error": f"sql: {exc.message}"}, status_code=400)
    except TimeoutError:
        return JSONResponse({"error": f"sql: no answer within {SQL_TIMEOUT_S:.0f} s"}, status_code=408)
    limit = settings.sql_max_rows
    rows = table.slice(0, limit).to_pylist()
    return JSONResponse(
        {
            "columns": table.column_names,
            "rows": [[_plain(r[c]) for c in table.column_names] for r in rows],
            "total_rows": table.num_rows,
            "truncated": table.num_rows > limit,
        }
    )


def _plain(value: Any) -> Any:
    """A cell as JSON can hold it: times as ISO text, decimals as floats, bytes as text, NaN as null."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and value != value:
        return None
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)
