"""The Vertex AI endpoint: the champion model behind Vertex's online-prediction REST contract."""
