"""Settings of `hyp bigquery` (port 9050, the port the community emulator uses)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.common.settings import CommonSettings


class BigQuerySettings(CommonSettings):
    host: str = Field("127.0.0.1", validation_alias="HYP_BIGQUERY_HOST")
    port: int = Field(9050, ge=1, le=65535, validation_alias="HYP_BIGQUERY_PORT")
    # the BigQuery Storage Read API (gRPC): None = the REST port + 1 (9051), 0 = any free port
    read_port: int | None = Field(None, ge=0, le=65535, validation_alias="HYP_BIGQUERY_READ_PORT")
    # query jobs report their result as an anonymous destination table (BigQuery does): google-cloud-bigquery then
    # reads results through the Storage Read API, and with google-cloud-bigquery-storage installed and no
    # bqstorage_client given it opens one to Google's endpoint (no emulator variable), which fails here. Off: the
    # client reads results over REST, as before; on: pass bqstorage_client= (docs/bigquery.md)
    query_result_tables: bool = Field(False, validation_alias="HYP_BIGQUERY_QUERY_RESULT_TABLES")
    # tabledata.insertAll's documented limits: 10 MB per HTTP request, 50,000 rows per request
    max_request_bytes: int = Field(10 * 1024 * 1024, ge=1024, validation_alias="HYP_BIGQUERY_MAX_REQUEST_BYTES")
    max_rows_per_request: int = Field(50_000, ge=1, validation_alias="HYP_BIGQUERY_MAX_ROWS_PER_REQUEST")
    # a load job's upload is held in memory until its last chunk: its largest size
    max_upload_bytes: int = Field(256 * 1024 * 1024, ge=1024, validation_alias="HYP_BIGQUERY_MAX_UPLOAD_BYTES")
    # insertId de-duplication is best effort, as on BigQuery: ids seen within this window (seconds)
    dedup_window_s: float = Field(60.0, ge=0, validation_alias="HYP_BIGQUERY_DEDUP_WINDOW_S")
    # and at most this many ids remembered per table (bounded memory: about 200 bytes an id)
    dedup_max_ids: int = Field(200_000, ge=0, validation_alias="HYP_BIGQUERY_DEDUP_MAX_IDS")
    # extract_table writes only under this folder (default: <warehouse>/_exports)
    export_dir: Path | None = Field(None, validation_alias="HYP_BIGQUERY_EXPORT_DIR")
