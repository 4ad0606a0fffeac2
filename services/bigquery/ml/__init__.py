"""BigQuery ML in `hyp bigquery`'s SQL: CREATE/DROP MODEL (statements.py), the ML.* table functions
(functions.py), models kept in their dataset (store.py), k-means on the models package (kmeans.py)."""
