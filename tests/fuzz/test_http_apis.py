"""schemathesis over every HTTP API of the stack that publishes an OpenAPI document (endpoint with its Vertex
resources, processor, orchestrator, console, BigQuery), each served by its real process in one private stack:
whatever the generated request, valid by the document or not, the answer is never a 5xx, every 4xx says what
was wrong, and no process dies (the last test: `hyp up`'s supervision counted no restart).

Bounded: at most ``EXAMPLES`` generated requests per operation (positive and negative), a 10 s timeout each."""

from __future__ import annotations

import json

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from services.testing.local_stack import LocalHypStack
from tests.fuzz.conftest import FUZZED, HTTP_PORTS, OPENAPI_PORTS, url

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.local_only("robustness under generated input")]

EXAMPLES = 15
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)


def _schema(stack: LocalHypStack, service: str):  # type: ignore[no-untyped-def]
    if service == "storage":  # serves no document (Cloud Storage has none at /openapi.json): its app's own
        from services.storage.app import create_app
        from services.storage.settings import StorageSettings

        schema = schemathesis.openapi.from_dict(create_app(StorageSettings()).openapi())
    else:
        schema = schemathesis.openapi.from_url(f"{url(stack, service)}/openapi.json")
    schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
    return schema


def check(case, stack: LocalHypStack, service: str) -> None:  # type: ignore[no-untyped-def]
    response = case.call(base_url=url(stack, service), timeout=10)
    what = f"{case.method} {case.formatted_path} body={case.body!r}"
    assert response.status_code < 500, f"{service}: {what} -> {response.status_code} {response.text[:500]}"
    if response.status_code >= 400:
        assert _reason(response.text), f"{service}: {what} -> {response.status_code} with no reason"


def _reason(text: str) -> str:
    """The human-readable reason in an error body (FastAPI's detail, Google's error.message, or plain text)."""
    try:
        body = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or "")
        return str(body.get("detail") or body.get("message") or body.get("reason") or error or "")
    return str(body)


@pytest.mark.parametrize("service", [*OPENAPI_PORTS, "storage"])
def test_no_generated_request_gets_a_5xx(service, fuzz_stack):
    """Every operation of the service's document, ``EXAMPLES`` generated requests each; the failures of all
    operations are collected (one per operation: hypothesis's shrunk example) and reported together."""
    schema = _schema(fuzz_stack, service)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @FUZZ
        @given(case=operation.as_strategy())
        def run(case) -> None:  # type: ignore[no-untyped-def]
            check(case, fuzz_stack, service)

        try:
            run()
        except AssertionError as exc:
            failures.append(str(exc).splitlines()[0][:600])
    assert operations, f"{service} publishes no operation"
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(("service", "port"), list(HTTP_PORTS.items()))
def test_a_foreign_host_header_is_refused(service: str, port: int, fuzz_stack) -> None:
    """DNS rebinding: a page whose name resolves to 127.0.0.1 sends its own name as Host; every HTTP service of
    ours refuses it (services/common/hosts.py) and still answers its own name."""
    address = f"http://127.0.0.1:{fuzz_stack.port(service, port)}"
    with httpx.Client(timeout=10) as client:
        foreign = client.get(f"{address}/", headers={"Host": f"attacker.example:{fuzz_stack.port(service, port)}"})
        own = client.get(f"{address}/")
    assert 400 <= foreign.status_code < 500, (service, foreign.status_code, foreign.text[:200])
    assert "host" in foreign.text.lower(), foreign.text[:200]
    assert own.status_code != foreign.status_code, (service, own.status_code)


def test_every_service_still_runs_unrestarted(fuzz_stack):
    """Last in the module: every fuzzed service is still the process `hyp up` started (no crash, no restart)."""
    state = fuzz_stack.supervision()
    for service in [*FUZZED, *OPENAPI_PORTS]:
        fuzz_stack.pid(service)  # raises when it is not running
        assert state.get(service, {}).get("restarts", 0) == 0, (service, state.get(service))
