"""The orchestrator (Vertex AI Pipelines / Mage triggers): sensors -> retrain -> evaluate -> gate -> promote."""
