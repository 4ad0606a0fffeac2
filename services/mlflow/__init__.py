"""`hyp mlflow`: the model registry service (MLflow's tracking server, Vertex AI Model Registry's stand-in)."""
