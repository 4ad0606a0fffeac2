"""`hyp bigquery`: BigQuery's REST API over the warehouse folder (port 9050), for Google's client."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.bigquery.settings import BigQuerySettings
    from services.common.config import Command


def command() -> Command[BigQuerySettings]:
    from services.bigquery.settings import BigQuerySettings
    from services.common.config import Command

    cli = Command(
        "bigquery",
        BigQuerySettings,
        description="Serve BigQuery's REST API (v2) over the warehouse folder for Google's google-cloud-bigquery "
        "client: set BIGQUERY_EMULATOR_HOST=http://HOST:PORT and use anonymous credentials; and the BigQuery Storage "
        "Read API (gRPC, on PORT + 1) for google-cloud-bigquery-storage's BigQueryReadClient.",
    )
    cli.flag("host", help="bind address")
    cli.flag("port", help="port")
    cli.flag("read_port", "--read-port", help="gRPC port of the Storage Read API (default: port + 1; 0: any free)")
    cli.flag("query_result_tables", help="true: query jobs report an anonymous destination table (read API path)")
    cli.flag("warehouse_dir", help="warehouse folder (tables live under its _bigquery folder)")
    cli.flag("max_request_bytes", help="largest request body accepted")
    cli.flag("dedup_window_s", "--dedup-window", help="seconds an insertId is remembered")
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    from services.bigquery.app import create_app
    from services.common.serve import run_server

    return run_server(command(), argv, create_app)


if __name__ == "__main__":
    raise SystemExit(main())
