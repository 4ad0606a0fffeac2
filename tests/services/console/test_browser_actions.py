"""The console's actions in headless Chromium (Debian's package, driven by Playwright) against a real
emulator: publish from a template and the message reaches a subscription, a peek shows it without acking
(the backlog stays), and a page from another origin cannot make the browser act on the console.

Needs /usr/bin/chromium (never ``playwright install``); skips with that reason without it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.common.processes import free_port, stop_group, wait_healthy
from services.testing.pubsub import pull, topic_and_subscription
from tests.services.console.conftest import CHROMIUM, console_process
from tests.services.console.test_browser import assert_clean
from tests.services.console.test_warehouse_actions import VALUES, bigquery  # noqa: F401  (a fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.local_only("the console's page"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is absent: apt-get install -y chromium"),
]


@pytest.fixture(scope="module")
def console(pubsub_emulator, bigquery) -> Iterator[str]:  # noqa: F811
    bigquery_url, warehouse = bigquery
    with console_process(
        PUBSUB_EMULATOR_HOST=pubsub_emulator.host,
        HYP_PROJECT=pubsub_emulator.project,
        HYP_CONSOLE_PUBSUB_URL=pubsub_emulator.rest_url,
        HYP_CONSOLE_BIGQUERY_URL=bigquery_url,
        HYP_WAREHOUSE_DIR=str(warehouse),
    ) as url:
        yield url


@pytest.fixture
def page(tab, console):
    return tab


def backlog(emulator, subscription: str) -> int:
    state = httpx.get(emulator.rest_url + "/admin/state", trust_env=False).json()
    return next(s["backlog"] for s in state["subscriptions"] if s["name"] == subscription)


def open_console(page, url: str) -> None:
    page.goto(url)
    page.wait_for_selector("#publish-form .outcome[data-ok='true']", timeout=15_000)  # topics and templates loaded


def test_publish_from_a_template_reaches_a_subscription_and_peek_leaves_the_backlog(page, console, pubsub_emulator):
    topic, sub = topic_and_subscription(pubsub_emulator)
    short_topic, short_sub = topic.rsplit("/", 1)[-1], sub.rsplit("/", 1)[-1]
    open_console(page, console)
    page.select_option("#publish-topic", short_topic)
    page.select_option("#publish-template", "purchase (value_spike)")
    assert '"purchase"' in page.input_value("#publish-data")
    page.click("#publish-form button[type=submit]")
    page.wait_for_selector("#publish-form .outcome[data-ok='true'] >> text=published", timeout=10_000)
    assert backlog(pubsub_emulator, sub) == 1

    page.select_option("#peek-subscription", short_sub)
    page.click("#peek-form button[type=submit]")
    page.wait_for_selector("#peek-table tbody tr >> text=anomaly_kind=value_spike", timeout=10_000)
    assert "1 message(s), none acknowledged" in page.inner_text("#peek-form .outcome")
    assert backlog(pubsub_emulator, sub) == 1  # peeked, not acknowledged

    (message,) = pull(pubsub_emulator.subscriber(), sub, 1)
    assert message.message.attributes["anomaly_kind"] == "value_spike"
    assert json.loads(message.message.data)["event"] == "purchase"
    assert_clean(page)


def test_bad_input_is_refused_with_the_reason_in_the_page(page, console, pubsub_emulator):
    topic, _ = topic_and_subscription(pubsub_emulator)
    open_console(page, console)
    page.select_option("#publish-topic", topic.rsplit("/", 1)[-1])
    page.fill("#publish-data", "{not json")
    page.click("#publish-form button[type=submit]")
    page.wait_for_selector("#publish-form .outcome[data-ok='false']", timeout=10_000)
    assert "not JSON" in page.inner_text("#publish-form .outcome")
    page.fill("#new-topic", "x")  # too short for a topic ID
    page.click("#create-topic")
    page.wait_for_selector("#resource-form .outcome[data-ok='false']", timeout=10_000)
    assert "body.name" in page.inner_text("#resource-form .outcome")


def test_a_form_on_another_origin_cannot_publish(page, console, pubsub_emulator):
    """A page served from another origin posts a form (text/plain, the classic JSON-smuggling form) to the
    console: refused, and nothing is published."""
    topic, sub = topic_and_subscription(pubsub_emulator)
    name = json.dumps({"topic": topic.rsplit("/", 1)[-1], "data": "{}", "pad": ""})[:-2]  # ..."pad": "
    folder = Path(tempfile.mkdtemp(prefix="console-attacker-"))
    (folder / "attack.html").write_text(
        f"""<!doctype html><form id=f method=POST action="{console}/api/pubsub/publish" enctype="text/plain">
        <input name='{name}' value='"}}'></form><script>document.getElementById('f').submit()</script>"""
    )
    port = free_port()
    other = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(folder)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/attack.html", 20, process=other, what="the other origin's page")
        with page.expect_response(lambda r: r.url.endswith("/api/pubsub/publish")) as answer:
            page.goto(f"http://127.0.0.1:{port}/attack.html")
        assert answer.value.status == 403
        assert "cross-site request refused" in answer.value.json()["error"]
    finally:
        stop_group(other)
        shutil.rmtree(folder, ignore_errors=True)
    assert backlog(pubsub_emulator, sub) == 0


def test_table_browser_preview_and_histogram(page, console):
    open_console(page, console)
    page.wait_for_selector('#table-list tr[data-table="ecommerce_sink.cloud_run"]', timeout=15_000)
    row = page.locator('#table-list tr[data-table="shop.orders"]')
    assert row.locator("td.num").inner_text() == str(len(VALUES) + 1)
    row.locator("button").click()
    page.wait_for_selector("#schema >> text=purchase  RECORD", timeout=10_000)
    page.wait_for_selector(f"#preview-title >> text=of {len(VALUES) + 1} rows", timeout=10_000)
    assert page.locator("#preview-table tbody tr").count() == len(VALUES) + 1

    page.select_option("#hist-table", "shop.orders")
    page.fill("#hist-column", "purchase.value")
    page.fill("#hist-bins", "4")
    page.check("#hist-log")
    page.click("#histogram-form button[type=submit]")
    page.wait_for_selector("#histogram-form .outcome[data-ok='true']", timeout=15_000)
    assert page.locator("#histogram rect.bar").count() == 4
    assert "1 not positive (left out)" in page.locator("#histogram").text_content()
    assert_clean(page)
    page.fill("#hist-column", "tags")  # refused: the browser logs the 400 as an error, so checked before
    page.click("#histogram-form button[type=submit]")
    page.wait_for_selector("#histogram-form .outcome[data-ok='false']", timeout=15_000)
    assert "BigQuery jobs.query" in page.inner_text("#histogram-form .outcome")
    # the histogram's queries are jobs: listed (jobs.list, newest first) once it has run
    page.wait_for_selector("#jobs-table tbody tr", timeout=10_000)
    assert "recent job(s)" in page.inner_text("#jobs-state")
    assert "SELECT" in page.inner_text("#jobs-table")


def test_a_scenario_is_started_and_followed_to_its_end(page, console, pubsub_emulator):
    sub = pubsub_emulator.subscription_path(f"console-scenario-{free_port()}")
    pubsub_emulator.subscriber().create_subscription(
        request={
            "name": sub,
            "topic": pubsub_emulator.topic_path("hyp-pubsub-topic"),
            "filter": 'attributes.anomaly = "1"',
        }
    )
    open_console(page, console)
    page.wait_for_selector("#scenario-kind option", state="attached", timeout=10_000)
    page.select_option("#scenario", "anomaly")
    page.select_option("#scenario-kind", "shipping_outlier")
    page.fill("#scenario-rate", "100")
    page.fill("#scenario-duration", "3")
    page.click("#scenario-form button[type=submit]")
    page.wait_for_selector("#scenario-form .outcome[data-ok='true'] >> text=started", timeout=15_000)
    page.wait_for_selector("#scenario-state >> text=✓ finished", timeout=60_000)
    assert "sent" in page.inner_text("#scenario-state")
    assert page.eval_on_selector("#scenario-progress", "p => p.value") == 1
    received = pull(pubsub_emulator.subscriber(), sub, 3)
    assert {m.message.attributes["anomaly_kind"] for m in received} == {"shipping_outlier"}
    assert_clean(page)


def test_a_snapshot_is_taken_and_sought_from_the_page(page, console, pubsub_emulator):
    topic, sub = topic_and_subscription(pubsub_emulator)
    pubsub_emulator.publisher().publish(topic, b'{"n": 1}').result(timeout=10)
    short_sub, snap = sub.rsplit("/", 1)[-1], f"console-snap-{free_port()}"
    open_console(page, console)
    page.select_option("#seek-subscription", short_sub)
    page.fill("#new-snapshot", snap)
    page.click("#take-snapshot")
    page.wait_for_selector("#seek-form .outcome[data-ok='true'] >> text=taken", timeout=10_000)
    pull(pubsub_emulator.subscriber(), sub, 1, ack=True)
    assert backlog(pubsub_emulator, sub) == 0
    page.select_option("#seek-snapshot", snap)
    page.click("#seek-form button[type=submit]")
    page.wait_for_selector(f"#seek-form .outcome[data-ok='true'] >> text=snapshot {snap}", timeout=10_000)
    assert backlog(pubsub_emulator, sub) == 1
    assert_clean(page)
