"""Vertex AI's resources in the endpoint service: models (a view of the MLflow registry), endpoints,
deployed models with a traffic split, and the long-running operations Vertex answers with.

:mod:`.registry` is the model view, :mod:`.endpoints` the endpoints and what they serve,
:mod:`.artifacts` the prebuilt-container formats served in process, :mod:`.operations` the LRO
bodies; the HTTP routes are in :mod:`services.endpoint.routes.resources`.
"""
