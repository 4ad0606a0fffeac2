"""The console in headless Chromium (Debian's package, driven by Playwright), against a real emulator.

Needs /usr/bin/chromium (CI: ``apt-get install -y chromium``; never ``playwright install``).
The detector is not started here (Beam + MLflow are too heavy for this test); detections are
published to ``hyp-detections`` in the detector's message shape instead, and say so.
The README's screenshot (docs/console.png) comes from a whole stack instead: tests/services/console/shoot.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest

from services.common.processes import free_port, stop_group, wait_for, wait_healthy
from services.common.settings import DETECTIONS_TOPIC, EVENTS_TOPIC
from tests.services.console.conftest import CHROMIUM, ROOT

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent: apt-get install -y chromium"),
]


@pytest.fixture(scope="module")
def stand_in() -> Iterator[tuple[subprocess.Popen, str]]:
    """A stand-in for the endpoint: any process answering GET /health, stopped by a test."""
    folder = Path(tempfile.mkdtemp(prefix="console-stand-in-"))
    (folder / "health").write_text("ok")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url + "/health", 20, process=proc, what="the stand-in endpoint")
        yield proc, url
    finally:
        if proc.poll() is None:
            stop_group(proc)
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def console(pubsub_emulator, stand_in, tmp_path_factory) -> Iterator[dict[str, str]]:
    from services.warehouse import append

    host, rest = pubsub_emulator.host, pubsub_emulator.rest_url
    warehouse = tmp_path_factory.mktemp("warehouse")
    row = {"subscription_name": "s", "publish_time": datetime(2026, 11, 22), "data": "{}"}
    append(warehouse, "pubsub_direct", [{**row, "message_id": str(i)} for i in range(5)])
    port = free_port()
    dead = f"http://127.0.0.1:{free_port()}"
    env = {
        **os.environ,
        "PUBSUB_EMULATOR_HOST": host,
        "HYP_CONSOLE_PUBSUB_URL": rest,
        "HYP_CONSOLE_DETECTOR_METRICS_URL": dead + "/metrics",
        "HYP_CONSOLE_ENDPOINT_URL": stand_in[1],
        "HYP_CONSOLE_PROCESSOR_URL": dead,
        "HYP_CONSOLE_ORCHESTRATOR_URL": dead,
        "MLFLOW_TRACKING_URI": dead,
        "HYP_CONSOLE_BIGQUERY_URL": dead,  # never a default port another stack may be using
        "HYP_WAREHOUSE_DIR": str(warehouse),
        "HYP_CONSOLE_SUBSCRIPTION_PREFIX": f"console_test_{port}",
        "HYP_CONSOLE_REFRESH_S": "0.5",
        "HYP_CONSOLE_PROBE_TIMEOUT_S": "0.5",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.console", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url + "/health", 20, process=proc, what="hyp console")
        wait_for(
            lambda: httpx.get(url + "/api/snapshot", trust_env=False).json()["live"]["feeds"]["healthy"],
            15,
            "the console's subscriptions to start",
            interval=0.2,
        )
        yield {"url": url, "emulator": host}
    finally:
        stop_group(proc)


@pytest.fixture
def page(chromium, console):
    context = chromium.new_context(viewport={"width": 1600, "height": 1300})
    pg = context.new_page()
    pg.errors, pg.requests = [], []
    pg.on("console", lambda m: pg.errors.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    pg.on("request", lambda r: pg.requests.append(r.url))
    pg.goto(console["url"])
    pg.wait_for_selector("#stream-state.good", timeout=10_000)
    yield pg
    context.close()


def publish_labelled_events(host: str, n: int = 400) -> list[tuple[dict, dict[str, str]]]:
    """Labelled purchase events from the load generator, published as `hyp loadgen` does."""
    from loadgen.config import ANOMALY_KINDS, GeneratorConfig
    from loadgen.generator import EventGenerator
    from services.common.pubsub_clients import publisher
    from services.common.settings import CommonSettings

    settings = CommonSettings()
    client = publisher(host)
    try:
        rates = {kind: 0.3 / len(ANOMALY_KINDS) for kind in ANOMALY_KINDS}
        config = GeneratorConfig(mix={"purchase": 0.5, "view_item": 0.5}, anomaly_rates=rates)
        pairs = EventGenerator(seed=7, config=config).next_batch(n)
        topic = settings.topic_path(EVENTS_TOPIC)
        futures = [
            client.publish(topic, json.dumps(e).encode(), **a)  # type: ignore[arg-type]  # attributes
            for e, a in pairs
        ]
        for f in futures:
            f.result(timeout=10)
    finally:
        client.stop()
    return pairs


def publish_detection(host: str, event: dict, attributes: dict[str, str]) -> None:
    """One message in the detector's shape (docs/architecture.md, Contracts): a stand-in for the Beam detector."""
    from services.common.pubsub_clients import publisher
    from services.common.settings import CommonSettings

    p = event["ecommerce"]["purchase"]
    body = {
        "transaction_id": p["transaction_id"],
        "user_id": event["user_id"],
        "event_datetime": event["event_datetime"],
        "value": p["value"],
        "tax": p["tax"],
        "shipping": p["shipping"],
        "score": 12.5,
        "model_version": "4",
    }
    client = publisher(host)
    try:
        topic = CommonSettings().topic_path(DETECTIONS_TOPIC)
        labels = {**attributes, "model_version": "4"}
        client.publish(topic, json.dumps(body).encode(), **labels).result(timeout=10)  # type: ignore[arg-type]
    finally:
        client.stop()


def assert_clean(pg) -> None:
    assert pg.errors == [], pg.errors
    off = [u for u in pg.requests if urlparse(u).hostname not in {"127.0.0.1", None} and not u.startswith("data:")]
    assert off == [], off


def test_page_loads_with_no_errors_and_no_request_off_the_machine(page):
    page.wait_for_selector('#services li[data-service="pubsub"][data-healthy="true"]', timeout=10_000)
    page.wait_for_selector('#services li[data-service="mlflow"][data-healthy="false"]')
    assert page.locator("#link-mlflow").get_attribute("href").startswith("http://127.0.0.1")
    assert page.locator("#link-endpoint").get_attribute("href").endswith("/docs")
    assert_clean(page)


def test_tables_fill_and_an_injected_anomaly_appears_within_seconds(page, console):
    pairs = publish_labelled_events(console["emulator"])
    injected = [(e, a) for e, a in pairs if a.get("anomaly") == "1" and e["event"] == "purchase"]
    assert injected, "this mix injects anomalies into about 30 % of purchases"
    event, attributes = injected[0]
    txn_user = event["user_id"]
    started = time.monotonic()
    page.wait_for_selector("#anomaly-table tbody tr", timeout=5_000)
    page.wait_for_function(
        "user => [...document.querySelectorAll('#anomaly-table tbody td')].some(td => td.textContent === user)",
        arg=txn_user,
        timeout=5_000,
    )
    assert time.monotonic() - started < 5
    page.wait_for_selector("#topics tbody tr >> text=hyp-pubsub-topic", timeout=5_000)
    page.wait_for_selector("#subscriptions tbody tr >> text=hyp_subscription_dataflow", timeout=5_000)

    publish_detection(console["emulator"], event, attributes)
    row = page.locator("#anomaly-table tbody tr", has_text="detected").first
    row.wait_for(timeout=5_000)
    assert attributes["anomaly_kind"] in row.inner_text()
    page.wait_for_function("() => document.querySelector('#kpis').textContent.includes('100.0 %')", timeout=5_000)

    page.fill("#anomaly-filter", attributes["anomaly_kind"])
    shown = page.locator("#anomaly-table tbody tr")
    assert shown.count() >= 1
    assert all(attributes["anomaly_kind"] in shown.nth(i).inner_text() for i in range(shown.count()))
    page.fill("#anomaly-filter", "")
    page.wait_for_timeout(1500)  # one or two more pushes so the time series has points to draw
    assert page.screenshot(full_page=True)  # the whole page renders
    assert_clean(page)


def test_sql_box_answers_and_names_bad_sql(page):
    page.wait_for_selector('#table-counts li[data-table="pubsub_direct"] >> text=5')
    page.fill("#sql", "SELECT count(*) AS n FROM pubsub_direct")
    page.click("#sql-form button")
    page.wait_for_selector("#sql-result tbody td >> text=5", timeout=30_000)
    page.fill("#sql", "DROP TABLE pubsub_direct")
    page.click("#sql-form button")
    page.wait_for_selector("#sql-error:not([hidden])", timeout=10_000)
    assert "only SELECT" in page.inner_text("#sql-error")


def test_a_stopped_service_shows_as_unhealthy(page, stand_in):
    proc, _ = stand_in
    page.wait_for_selector('#services li[data-service="endpoint"][data-healthy="true"]', timeout=10_000)
    stop_group(proc)
    page.wait_for_selector('#services li[data-service="endpoint"][data-healthy="false"]', timeout=10_000)
    assert "unhealthy" in page.locator('#diagram [data-node="endpoint"]').text_content()
    assert page.locator('#diagram [data-node="endpoint"]').get_attribute("class").endswith("unhealthy")
