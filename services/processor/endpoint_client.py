"""Calls the Vertex-AI-compatible endpoint over its REST contract (what the workshop's SDK call sends).

``PredictBatcher`` gathers the instances of concurrent pushes into one ``:predict`` call: one call
runs at a time, and what queued meanwhile (plus what arrives within ``linger_s``) goes in the next.
Each push gets its own prediction or its own error; a 4xx for a batch is retried instance by
instance so only the offending push is dead-lettered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from services.common import names


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
        self.url = names.predict_url(base_url, project, location, endpoint_id)
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


class PredictBatcher:
    def __init__(self, client: VertexClient, *, linger_s: float = 0.005, max_instances: int = 500) -> None:
        self.client, self.linger_s, self.max_instances = client, linger_s, max_instances
        self._queue: list[tuple[dict[str, Any], asyncio.Future[Scored]]] = []
        self._task: asyncio.Task[None] | None = None
        self.calls = 0
        self.on_call: Any = None  # called with (instances, seconds) after each :predict

    async def predict(self, instance: dict[str, Any]) -> Scored:
        future: asyncio.Future[Scored] = asyncio.get_running_loop().create_future()
        self._queue.append((instance, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="predict-batcher")
        return await asyncio.shield(future)

    async def _run(self) -> None:
        if self.linger_s > 0:
            await asyncio.sleep(self.linger_s)
        while self._queue:
            batch, self._queue = self._queue[: self.max_instances], self._queue[self.max_instances :]
            await self._call(batch)

    async def _call(self, batch: list[tuple[dict[str, Any], asyncio.Future[Scored]]]) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        try:
            scored = await self.client.predict([i for i, _ in batch])
        except EndpointRejected as exc:
            if len(batch) == 1:
                _settle(batch[0][1], exc)
            else:  # which instance? each alone
                await asyncio.gather(*(self._call([one]) for one in batch))
            return
        except Exception as exc:
            for _, future in batch:
                _settle(future, exc)
            return
        finally:
            self.calls += 1
            if self.on_call is not None:
                self.on_call(len(batch), loop.time() - start)
        for (_, future), result in zip(batch, scored, strict=True):
            if not future.done():
                future.set_result(result)

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            await asyncio.wait([self._task], timeout=self.client.http.timeout.read or 5.0)
        await self.client.aclose()


def _settle(future: asyncio.Future[Scored], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
