"""The fuzz tier's stack: one private `hyp up` (no load generator) whose HTTP APIs and emulator surfaces the
tier's tests throw generated input at, then check that no process died."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.stack import definition as d
from services.testing.local_stack import LocalHypStack

# every service that serves HTTP of ours; their dependencies (pubsub, mlflow, init, endpoint) come along
FUZZED = ["processor", "orchestrator", "console", "bigquery", "storage", "detector"]

# service -> its HTTP port (definition.py): the APIs fuzzed from an OpenAPI document
OPENAPI_PORTS = {
    "endpoint": d.ENDPOINT_PORT,
    "processor": d.PROCESSOR_PORT,
    "orchestrator": d.ORCHESTRATOR_PORT,
    "console": d.CONSOLE_PORT,
    "bigquery": d.BIGQUERY_PORT,
    "storage": d.STORAGE_PORT,
}
# every HTTP port of ours in that stack (MLflow's is MLflow's own server)
HTTP_PORTS = {**OPENAPI_PORTS, "pubsub": d.PUBSUB_REST_PORT, "detector": d.DETECTOR_METRICS_PORT}


@pytest.fixture(scope="package")
def fuzz_stack() -> Iterator[LocalHypStack]:
    with LocalHypStack(FUZZED) as stack:
        yield stack


def url(stack: LocalHypStack, service: str) -> str:
    return f"http://127.0.0.1:{stack.port(service, OPENAPI_PORTS[service])}"
