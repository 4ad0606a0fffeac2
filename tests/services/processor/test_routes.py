"""The processor's push: its logic without HTTP, and one route answered alike through FastAPI and app.state.front."""

from __future__ import annotations

import json

import httpx

from tests.services.processor.helpers import (
    RecordingDeadLetter,
    envelope,
    make_app,
    processor_client,
    run,
    settings,
    view_event,
)


def test_the_push_logic_answers_without_http(tmp_path, endpoint_url):
    app = make_app(settings(tmp_path, endpoint_url), deadletter=RecordingDeadLetter())

    async def scenario():
        async with app.router.lifespan_context(app):
            processor = app.state.parts["processor"]
            good = await processor.handle(json.dumps(envelope(view_event(), "v1")).encode())
            again = await processor.handle(json.dumps(envelope(view_event(), "v1")).encode())
            junk = await processor.handle(b"{")
            return good, again, junk

    good, again, junk = run(scenario())
    assert good == (204, None) and again == (204, None)
    assert junk[0] == 400 and junk[1].startswith("body: not JSON")
    assert app.state.registry.get_sample_value("hyp_processor_pushes_total", {"outcome": "duplicate"}) == 1


PUSHES = [
    json.dumps(envelope(view_event(), "front-1")).encode(),  # 204
    json.dumps(envelope(view_event(), "front-1")).encode(),  # 204, a duplicate
    b'{"message": {"data": "e30="}}',  # 400: no messageId
    b"not json",  # 400
    json.dumps(envelope(view_event(), "big", {"pad": "x" * 2000})).encode(),  # 413 (limit 1024)
]


def test_front_and_fastapi_route_answer_pushes_alike(tmp_path, endpoint_url):
    def answers(folder, front: bool) -> list[tuple[int, bytes, dict[str, str]]]:
        app = make_app(settings(tmp_path / folder, endpoint_url, HYP_PROCESSOR_MAX_BODY_BYTES=1024))

        async def scenario():
            if not front:
                async with processor_client(app) as c:
                    return [await c.post("/", content=body) for body in PUSHES]
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app.state.front)
                async with httpx.AsyncClient(transport=transport, base_url="http://processor") as c:
                    return [await c.post("/", content=body) for body in PUSHES]

        return [(r.status_code, r.content, dict(r.headers)) for r in run(scenario())]

    through_fastapi, through_front = answers("a", front=False), answers("b", front=True)
    assert [status for status, _, _ in through_front] == [204, 204, 400, 400, 413]
    assert through_front == through_fastapi
    assert json.loads(through_front[4][1]) == {
        "status": 413,
        "reason": f"body: {len(PUSHES[4])} bytes is over the limit of 1024",
    }
