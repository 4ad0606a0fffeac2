-- Challenge 5: the training query of your custom model. DuckDB SQL over the warehouse tables (try: hyp sql "DESCRIBE cloud_run").
-- Keep only purchases, and select the three features the model learns from.
-- The labels (for the evaluation only) travel in the attributes JSON column, never in the payload.
SELECT ___
FROM cloud_run
WHERE ___
