-- Look at your clusters (python bq.py explore.sql): how big is each, and which purchases does
-- ML.DETECT_ANOMALIES flag at 2 % contamination?
SELECT centroid_id, feature, numerical_value
FROM ML.CENTROIDS(MODEL `<project-id>.ecommerce_sink.anomaly_detection`)
ORDER BY centroid_id, feature
;
SELECT CENTROID_ID, COUNT(*) AS purchases, ROUND(AVG(value), 2) AS avg_value, MAX(value) AS max_value
FROM ML.PREDICT(MODEL `<project-id>.ecommerce_sink.anomaly_detection`,
  (SELECT ecommerce.purchase.tax AS tax, ecommerce.purchase.shipping AS shipping, ecommerce.purchase.value AS value
   FROM `<project-id>.ecommerce_sink.cloud_run` WHERE event = 'purchase'))
GROUP BY CENTROID_ID
ORDER BY CENTROID_ID
;
SELECT is_anomaly, COUNT(*) AS purchases, ROUND(MIN(normalized_distance), 3) AS min_distance, MAX(value) AS max_value
FROM ML.DETECT_ANOMALIES(MODEL `<project-id>.ecommerce_sink.anomaly_detection`, STRUCT(0.02 AS contamination),
  (SELECT ecommerce.purchase.tax AS tax, ecommerce.purchase.shipping AS shipping, ecommerce.purchase.value AS value
   FROM `<project-id>.ecommerce_sink.cloud_run` WHERE event = 'purchase'))
GROUP BY is_anomaly
;
