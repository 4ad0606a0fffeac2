"""Challenge 2: create a Vertex AI endpoint with the SDK (``aiplatform.Endpoint.create``), as on GCP.

`hyp lab start 2` makes sure the endpoint server (Vertex's API on HYP_ENDPOINT_URL) and hyp storage run and
notes the endpoints that exist already; the check lists endpoints through the SDK and passes on one created
since then. Endpoint `1` (the stack's, following ``@champion``) is never the participant's.
"""

from __future__ import annotations

from typing import Any

from services.common import names
from services.labs import sdk
from services.labs.challenges import NotYet, kmeans
from services.labs.challenges.common import copy_solution, copy_template
from services.labs.runtime import ensure_mlflow, ensure_vertex, log, read_state, run_script, update_state
from services.labs.settings import LabSettings

SCRIPT = "create_endpoint.py"
DISPLAY_NAME = "anomaly-detection-endpoint"
INSTANCES = [{"tax": 8.4, "shipping": 4.99, "value": 40.0}, {"tax": 0.0, "shipping": 0.0, "value": 1000000.10}]


def stack_endpoint(s: LabSettings) -> str:
    return names.endpoint(s.project, s.location, s.endpoint_id)


def endpoints(s: LabSettings) -> list[Any]:
    """Every endpoint but the stack's, through the SDK (NotYet when the server does not answer)."""
    from google.api_core import exceptions

    try:
        found = sdk.vertex(s).Endpoint.list()
    except exceptions.GoogleAPICallError as exc:
        raise NotYet(f"Vertex's endpoints.list at {s.endpoint_url} failed: {exc}") from None
    return [e for e in found if e.resource_name != stack_endpoint(s)]


def start(s: LabSettings) -> None:
    ensure_mlflow(s)
    if kmeans.candidate(s) is None:
        log("no k-means of yours yet: applying challenge 1's solution first")
        kmeans.solve(s)
    ensure_vertex(s)
    copy_template(s, 2)
    update_state(s, endpoints_before_2=[e.resource_name for e in endpoints(s)])


def candidate(s: LabSettings) -> Any | None:
    """The newest endpoint created since `hyp lab start 2` (an aiplatform.Endpoint), or None."""
    before = set(read_state(s).get("endpoints_before_2", []))
    mine = [e for e in endpoints(s) if e.resource_name not in before]
    return max(mine, key=lambda e: e.create_time) if mine else None


def check(s: LabSettings) -> str:
    endpoint = candidate(s)
    if endpoint is None:
        raise NotYet(
            f"no endpoint created since the challenge started (Vertex AI's API at {s.endpoint_url}): "
            f"complete and run `python {SCRIPT}`"
        )
    if endpoint.display_name != DISPLAY_NAME:
        raise NotYet(f"your endpoint is named {endpoint.display_name!r}; the workshop's is {DISPLAY_NAME!r}")
    return f"endpoint {endpoint.resource_name} ({endpoint.display_name}) exists, ready for a model"


def solve(s: LabSettings) -> None:
    ensure_mlflow(s)
    ensure_vertex(s)
    run_script(s, copy_solution(s, 2) / SCRIPT)
