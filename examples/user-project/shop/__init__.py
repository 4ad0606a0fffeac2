"""The shop's order flow: publish orders, read them back, load them into BigQuery, keep receipts in GCS."""
