"""The endpoint's HTTP routes, one APIRouter per contract: Vertex AI's REST surface, the custom
container's and MLflow's scoring routes, and the operational ones (health, metrics)."""
