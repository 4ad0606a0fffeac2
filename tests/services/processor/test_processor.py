"""The processor against a real endpoint (in-test model) and a real warehouse folder; no emulator."""

from __future__ import annotations

import asyncio
import json

import pytest

from services.common.processes import free_port
from services.warehouse.query import files, query
from tests.services.processor.helpers import (
    RecordingDeadLetter,
    envelope,
    make_app,
    processor_client,
    purchase_event,
    run,
    settings,
    view_event,
)


def rows(warehouse, sql: str) -> list[dict]:
    return query(warehouse, sql).to_pylist()


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def test_purchase_lands_in_cloud_run_and_cloud_run_anomaly(tmp_path, endpoint_url):
    async def scenario():
        async with processor_client(make_app(settings(tmp_path, endpoint_url))) as c:
            normal = await c.post("/", json=envelope(purchase_event(50.0), "m1", {"anomaly": "0", "run_id": "r"}))
            spike = await c.post("/", json=envelope(purchase_event(1_000_000.1, 100, 100, user="u2"), "m2"))
            view = await c.post("/", json=envelope(view_event(), "m3"))
            return normal, spike, view

    normal, spike, view = run(scenario())
    assert (normal.status_code, spike.status_code, view.status_code) == (204, 204, 204), normal.text
    events = rows(tmp_path, "SELECT * FROM cloud_run ORDER BY message_id")
    assert [e["message_id"] for e in events] == ["m1", "m2", "m3"]
    assert [e["event"] for e in events] == ["purchase", "purchase", "view_item"]
    first = events[0]
    assert first["source"] == "processor" and first["value"] == 50.0
    assert json.loads(first["attributes"]) == {"anomaly": "0", "run_id": "r"}
    assert first["publish_time"].isoformat() == "2026-11-22T08:00:00.123456"
    scored = rows(tmp_path, "SELECT * FROM cloud_run_anomaly ORDER BY message_id")
    assert [(s["message_id"], s["anomaly"], s["nearest_centroid_id"]) for s in scored] == [
        ("m1", False, 1),
        ("m2", True, 2),
    ]
    assert scored[1]["value"] == 1_000_000.1 and scored[1]["transaction_id"] == "t-u2-1000000.1"
    assert {s["model_version"] for s in scored} == {"1"}
    assert scored[0]["score"] == pytest.approx(1.0)


def test_redelivery_adds_no_second_row_also_after_a_restart(tmp_path, endpoint_url):
    s = settings(tmp_path, endpoint_url)

    async def deliver(times: int) -> list[int]:
        async with processor_client(make_app(s)) as c:
            return [(await c.post("/", json=envelope(purchase_event(), "dup-1"))).status_code for _ in range(times)]

    assert run(deliver(3)) == [204, 204, 204]
    assert run(deliver(2)) == [204, 204]  # a new process: the ledger comes back from the warehouse
    assert rows(tmp_path, "SELECT count(*) AS n FROM cloud_run")[0]["n"] == 1
    assert rows(tmp_path, "SELECT count(*) AS n FROM cloud_run_anomaly")[0]["n"] == 1


def test_concurrent_duplicate_deliveries_write_once_and_pushes_share_files(tmp_path, endpoint_url):
    async def scenario():
        async with processor_client(make_app(settings(tmp_path, endpoint_url))) as c:
            bodies = [envelope(purchase_event(10.0 + i), f"m{i}") for i in range(40)]
            bodies += [envelope(purchase_event(10.0), "m0")] * 5  # the same message, racing itself
            return await asyncio.gather(*(c.post("/", json=b) for b in bodies))

    answers = run(scenario())
    assert {a.status_code for a in answers} == {204}
    assert rows(tmp_path, "SELECT count(*) AS n, count(DISTINCT message_id) AS d FROM cloud_run")[0] == {
        "n": 40,
        "d": 40,
    }
    assert rows(tmp_path, "SELECT count(*) AS n FROM cloud_run_anomaly")[0]["n"] == 40
    # group commit: concurrent pushes went into fewer files than pushes
    assert len(files(tmp_path, "cloud_run")) < 40


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "body: not JSON"),
        (b"[]", "body: expected a push envelope"),
        (b"{}", "message: missing"),
        (b'{"message": {"data": "e30="}}', "message.messageId: missing"),
        (b'{"message": {"data": "%%%", "messageId": "1"}}', "message.data: not valid base64"),
        (b'{"message": {"data": 5, "messageId": "1"}}', "message.data: expected a base64 string"),
        (b'{"message": {"data": "e30=", "messageId": "1", "attributes": {"a": 1}}}', "message.attributes"),
        (b'{"message": {"data": "e30=", "messageId": "1", "publishTime": "yesterday"}}', "message.publishTime"),
        # what Pub/Sub never delivers (its publish limits), found by the fuzz tier: the dead-letter publish failed
        (b'{"message": {"data": "", "messageId": "1", "attributes": {"": ""}}}', "attribute key is empty"),
        (b'{"message": {"data": "", "messageId": "1", "attributes": {"k": "%s"}}}' % (b"v" * 1025), "over 1024 bytes"),
    ],
)
def test_malformed_envelopes_get_400_with_the_reason(tmp_path, endpoint_url, body, reason):
    async def scenario():
        async with processor_client(make_app(settings(tmp_path, endpoint_url))) as c:
            return await c.post("/", content=body)

    r = run(scenario())
    assert r.status_code == 400
    assert reason in r.json()["reason"]
    assert not files(tmp_path, "cloud_run")


def test_unusable_events_go_to_the_dead_letter_topic_with_the_reason(tmp_path, endpoint_url):
    dead = RecordingDeadLetter()
    bad_purchase = purchase_event()
    del bad_purchase["ecommerce"]["purchase"]["tax"]

    async def scenario():
        async with processor_client(make_app(settings(tmp_path, endpoint_url), deadletter=dead)) as c:
            a = await c.post("/", json=envelope(None, "bad-1", {"anomaly": "1"}, raw=b"\x00garbage"))
            b = await c.post("/", json=envelope(bad_purchase, "bad-2"))
            again = await c.post("/", json=envelope(bad_purchase, "bad-2"))  # redelivered: not published twice
            return a, b, again

    a, b, again = run(scenario())
    assert (a.status_code, b.status_code, again.status_code) == (204, 204, 204)
    assert [(d[0], d[1]["anomaly"]) for d in dead.published[:1]] == [(b"\x00garbage", "1")]
    assert "payload: not JSON" in dead.published[0][2]
    assert "ecommerce.purchase.tax: missing" in dead.published[1][2]
    assert len(dead.published) == 2
    assert not files(tmp_path, "cloud_run")


def test_without_a_dead_letter_topic_unusable_events_are_400_so_pubsub_dead_letters_them(tmp_path, endpoint_url):
    async def scenario():
        async with processor_client(make_app(settings(tmp_path, endpoint_url), deadletter=None)) as c:
            return await c.post("/", json=envelope(None, "bad-1", raw=b'{"event": "refund"}'))

    r = run(scenario())
    assert r.status_code == 400
    assert "event: unknown event type 'refund'" in r.json()["reason"]


def test_endpoint_down_is_503_then_redelivery_scores_without_duplicating_the_event(tmp_path, endpoint_url):
    down = settings(tmp_path, closed_port_url())
    up = settings(tmp_path, endpoint_url)

    async def deliver(s):
        async with processor_client(make_app(s)) as c:
            return await c.post("/", json=envelope(purchase_event(), "m-outage"))

    r = run(deliver(down))
    assert r.status_code == 503 and "endpoint" in r.json()["reason"]
    assert r.headers["retry-after"] == "1"
    # the event row is already durable; the anomaly row waits for the endpoint
    assert rows(tmp_path, "SELECT count(*) AS n FROM cloud_run")[0]["n"] == 1
    assert not files(tmp_path, "cloud_run_anomaly")
    assert run(deliver(up)).status_code == 204
    assert rows(tmp_path, "SELECT count(*) AS n FROM cloud_run")[0]["n"] == 1
    assert rows(tmp_path, "SELECT message_id FROM cloud_run_anomaly") == [{"message_id": "m-outage"}]


def test_a_slow_endpoint_counts_as_down(tmp_path):
    from services.endpoint.app import create_app
    from services.endpoint.settings import EndpointSettings
    from services.testing.asgi import serve_in_thread
    from tests.services.endpoint.helpers import FakeSource, TinyKMeans

    class Slow(TinyKMeans):
        def predict(self, frame):
            if self.calls:  # warm-up is quick; requests are not
                import time

                time.sleep(1.0)
            return super().predict(frame)

    app = create_app(EndpointSettings(HYP_ENDPOINT_RELOAD_INTERVAL_S="0"), FakeSource({"1": Slow()}, alias="1"))
    with serve_in_thread(app) as url:

        async def deliver():
            async with processor_client(make_app(settings(tmp_path, url, HYP_PROCESSOR_ENDPOINT_TIMEOUT_S=0.2))) as c:
                return await c.post("/", json=envelope(purchase_event(), "m-slow"))

        r = run(deliver())
    assert r.status_code == 503
    assert "no answer within the timeout" in r.json()["reason"]


def test_health_and_metrics(tmp_path, endpoint_url):
    async def scenario():
        async with processor_client(make_app(settings(tmp_path, endpoint_url))) as c:
            await c.post("/", json=envelope(purchase_event(), "m1"))
            await c.post("/", content=b"nope")
            return (await c.get("/health")).json(), (await c.get("/metrics")).text

    health, metrics = run(scenario())
    assert health["status"] == "ok"
    assert health["processed"] == {"cloud_run": 1, "cloud_run_anomaly": 1}
    assert 'hyp_processor_pushes_total{outcome="scored"} 1.0' in metrics
    assert 'hyp_processor_pushes_total{outcome="bad_envelope"} 1.0' in metrics


def test_the_processor_hosts_the_warehouse_compactor_and_stops_it_on_shutdown(tmp_path, endpoint_url):
    from services.common.processes import wait_for
    from tests.services.processor.helpers import fill_warehouse

    fill_warehouse(tmp_path, 40)  # 40 small files per table, as a day of commits leaves them
    app = make_app(settings(tmp_path, endpoint_url, HYP_PROCESSOR_COMPACT_INTERVAL_S=0.2))

    async def scenario():
        async with processor_client(app) as c:
            assert (await c.get("/health")).status_code == 200  # before any compaction ran
            compactor = app.state.parts["compactor"]
            await asyncio.to_thread(
                wait_for, lambda: len(files(tmp_path, "cloud_run")) < 40, 60, "the first compaction"
            )
        return compactor

    compactor = run(scenario())
    assert not compactor.owner  # stopped with the service: the lock is free for another process
    assert rows(tmp_path, "SELECT count(*) AS n FROM cloud_run")[0]["n"] == 80
