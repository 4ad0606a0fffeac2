-- The features of the workshop's k-means (tax, shipping, value), purchases only, with the labels
-- read from the message attributes so hyp train can tell which cluster holds the anomalies.
SELECT tax, shipping, value,
       json_extract_string(attributes, '$.anomaly') AS anomaly,
       coalesce(json_extract_string(attributes, '$.anomaly_kind'), '') AS anomaly_kind
FROM cloud_run
WHERE event = 'purchase'
