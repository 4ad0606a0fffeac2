"""Calls the Vertex-AI-compatible endpoint over its REST contract (what the workshop's SDK call sends)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx


class EndpointUnavailable(RuntimeError):
    """Down, slow, or answering 5xx/429: worth retrying later (the push gets a 503)."""


class EndpointRejected(ValueError):
    """The endpoint refused the instance (4xx): retrying will not help; the event is dead-lettered."""


@dataclass(frozen=True)
class Scored:
    prediction: dict[str, Any]
    model_version: str


class VertexClient:
    def __init__(self, base_url: str, project: str, location: str, endpoint_id: str, timeout_s: float) -> None:
        self.url = f"{base_url.rstrip('/')}/v1/projects/{project}/locations/{location}/endpoints/{endpoint_id}:predict"
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
            trust_env=False,  # never through a proxy: the endpoint is local
        )

    async def predict(self, instances: list[dict[str, Any]]) -> list[Scored]:
        try:
            response = await self.http.post(self.url, json={"instances": instances})
        except httpx.TimeoutException:
            raise EndpointUnavailable(f"endpoint {self.url}: no answer within the timeout") from None
        except httpx.HTTPError as exc:
            raise EndpointUnavailable(f"endpoint {self.url}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 500 or response.status_code in (408, 429):
            raise EndpointUnavailable(f"endpoint answered {response.status_code}: {_message(response)}")
        if response.status_code >= 400:
            raise EndpointRejected(f"endpoint refused the instance ({response.status_code}): {_message(response)}")
        try:
            body = response.json()
            predictions = body["predictions"]
            version = str(body["modelVersionId"])
        except (ValueError, KeyError, TypeError):
            raise EndpointUnavailable("endpoint answered 200 without predictions and modelVersionId") from None
        if not isinstance(predictions, list) or len(predictions) != len(instances):
            raise EndpointUnavailable("endpoint answered a different number of predictions than instances")
        return [Scored(p, version) for p in predictions]

    async def aclose(self) -> None:
        await self.http.aclose()


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("message", body))[:300]
    return str(body)[:300]
