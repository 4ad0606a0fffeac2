"""One home for the names the parts of the stack share: GCP resource names and the label SQL.

Resource names follow Google's resource-name format (``projects/P/topics/T``,
``projects/P/locations/L/endpoints/E``); a name already in full form is kept as given, as
Google's client libraries accept both. Metric names shared by services and the console live in
:mod:`services.common.metric_names`.
"""

from __future__ import annotations

# Collections of project-scoped Pub/Sub resources, as they appear in a resource name.
TOPICS = "topics"
SUBSCRIPTIONS = "subscriptions"
SNAPSHOTS = "snapshots"


def project_resource(project: str, collection: str, name: str) -> str:
    """``projects/P/<collection>/<name>``; a name already starting with ``projects/`` is kept."""
    return name if name.startswith("projects/") else f"projects/{project}/{collection}/{name}"


def topic(project: str, name: str) -> str:
    return project_resource(project, TOPICS, name)


def subscription(project: str, name: str) -> str:
    return project_resource(project, SUBSCRIPTIONS, name)


def short(name: str) -> str:
    """The last segment of a resource name: ``projects/p/topics/t`` -> ``t``."""
    return name.rsplit("/", 1)[-1]


def location(project: str, location: str) -> str:
    return f"projects/{project}/locations/{location}"


def endpoint(project: str, location_id: str, endpoint_id: str) -> str:
    """A Vertex AI endpoint: ``projects/P/locations/L/endpoints/E``."""
    return f"{location(project, location_id)}/endpoints/{endpoint_id}"


def model(project: str, location_id: str, model_id: str) -> str:
    """A Vertex AI model: ``projects/P/locations/L/models/M``."""
    return f"{location(project, location_id)}/models/{model_id}"


def rest_url(base_url: str, name: str, version: str = "v1") -> str:
    """The REST URL of a resource under a service's base URL: ``<base>/v1/<name>``."""
    return f"{base_url.rstrip('/')}/{version}/{name}"


def predict_url(base_url: str, project: str, location_id: str, endpoint_id: str) -> str:
    """The REST URL of an endpoint's ``:predict`` method (API version v1)."""
    return rest_url(base_url, endpoint(project, location_id, endpoint_id)) + ":predict"


# The label the load generator puts on each event (attribute ``anomaly`` = "1"), read in SQL over the
# warehouse's ``attributes`` JSON column: training, evaluation, drift windows and summaries share it.
LABEL_SQL = "coalesce(json_extract_string(attributes, '$.anomaly'), '0') = '1'"
# The generator's anomaly kind (empty for normal events).
ANOMALY_KIND_SQL = "coalesce(json_extract_string(attributes, '$.anomaly_kind'), '')"


def attribute_sql(key: str) -> str:
    """SQL reading one message attribute from the warehouse's ``attributes`` JSON column."""
    if not key.replace("_", "").isalnum():
        raise ValueError(f"attribute name {key!r}: letters, digits and underscores only")
    return f"json_extract_string(attributes, '$.{key}')"
