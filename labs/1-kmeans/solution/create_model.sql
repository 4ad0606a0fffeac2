-- The workshop's statement, verbatim but for the project id.
CREATE OR REPLACE MODEL
  `<project-id>.ecommerce_sink.anomaly_detection`
OPTIONS
  ( MODEL_REGISTRY = 'VERTEX_AI',
    MODEL_TYPE='KMEANS',
    NUM_CLUSTERS=2 ) AS
  SELECT
    ecommerce.purchase.tax AS tax,
    ecommerce.purchase.shipping AS shipping,
    ecommerce.purchase.value AS value
  FROM `<project-id>.ecommerce_sink.cloud_run`
  WHERE event='purchase'
;
