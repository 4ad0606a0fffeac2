"""`hyp bigquery`: BigQuery's REST API (v2) over the warehouse folder, for Google's own client.

Layout: settings.py (the command's settings), errors.py (BigQuery's JSON error shape), names.py
(BigQuery's naming rules), schema.py (table schemas and row conversion), catalog.py (datasets, tables
and their Parquet files), routes.py (the HTTP surface), app.py (the FastAPI app). docs/bigquery.md.
"""
