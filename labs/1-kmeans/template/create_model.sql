-- Challenge 1: the workshop's BigQuery ML statement. Fill in the blanks (___), then:
--   python bq.py create_model.sql
-- The purchases are in `<project-id>.ecommerce_sink.cloud_run` (the nested ecommerce.purchase record).
CREATE OR REPLACE MODEL
  `<project-id>.ecommerce_sink.anomaly_detection`
OPTIONS
  ( MODEL_REGISTRY = ___,
    MODEL_TYPE = ___,
    NUM_CLUSTERS = ___ ) AS
  SELECT
    ___ AS tax,
    ___ AS shipping,
    ___ AS value
  FROM `<project-id>.ecommerce_sink.cloud_run`
  WHERE ___
;
