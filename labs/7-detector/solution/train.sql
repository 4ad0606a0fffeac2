-- A custom model may use more than the workshop's three features: the basket (items, items_count)
-- feeds the shared feature function when it is present.
SELECT tax, shipping, value, items, items_count,
       json_extract_string(attributes, '$.anomaly') AS anomaly,
       coalesce(json_extract_string(attributes, '$.anomaly_kind'), '') AS anomaly_kind
FROM cloud_run
WHERE event = 'purchase'
