"""Screenshots of the console for docs/console.md, from a running stack (not a test).

    hyp up --detach --home /tmp/stack --port-offset 3701 --detector-workers 2
    python -m tests.services.console.shoot --url http://127.0.0.1:11701 --out docs/console.png

Drives the page as a presenter would: publishes an injected anomaly from a template, peeks a subscription,
opens a table, draws a histogram (log scale), reads the drift view, starts an orchestrator run (no
promotion) and a short scenario; then writes a
full-page screenshot in the dark theme. Debian's Chromium, never ``playwright install``.
"""

from __future__ import annotations

import argparse

from tests.services.console.conftest import CHROMIUM, CHROMIUM_ARGS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--theme", choices=("dark", "light"), default="dark")
    args = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1600, "height": 1200}, color_scheme=args.theme).new_page()
        page.goto(args.url)
        page.wait_for_selector("#publish-form .outcome[data-ok='true']", timeout=60_000)
        page.select_option("#publish-topic", "hyp-pubsub-topic")
        page.select_option("#publish-template", "purchase (value_spike)")
        page.click("#publish-form button[type=submit]")
        page.wait_for_selector("#publish-form .outcome[data-ok]", timeout=30_000)
        page.select_option("#peek-subscription", "hyp_subscription_detections")
        page.fill("#peek-max", "5")
        page.click("#peek-form button[type=submit]")
        page.wait_for_selector("#peek-form .outcome[data-ok]", timeout=30_000)
        page.click("#load-dead")
        page.wait_for_selector("#dead-letters .outcome[data-ok]", timeout=30_000)
        page.wait_for_selector('#table-list tr[data-table="ecommerce_sink.cloud_run"] button', timeout=60_000)
        page.click('#table-list tr[data-table="ecommerce_sink.cloud_run"] button')
        page.wait_for_selector("#tables .outcome[data-ok]", timeout=60_000)
        page.check("#hist-log")
        page.click("#histogram-form button[type=submit]")
        page.wait_for_selector("#histogram-form .outcome[data-ok]", timeout=60_000)
        page.click("#load-drift")
        page.wait_for_selector("#drift-outcome[data-ok]", timeout=60_000)
        page.uncheck("#run-promote")
        page.fill("#run-reason", "screenshot: evaluate only")
        page.click("#run-form button[type=submit]")
        page.wait_for_selector("#run-steps li", timeout=60_000)
        page.select_option("#scenario", "anomaly")
        page.select_option("#scenario-kind", "value_spike")
        page.fill("#scenario-duration", "60")
        page.click("#scenario-form button[type=submit]")
        page.wait_for_selector("#scenario-form .outcome[data-ok]", timeout=30_000)
        page.wait_for_timeout(8_000)  # a few pushes: rates, the scenario's progress, detections
        page.screenshot(path=args.out, full_page=True)
        page.click("#scenario-stop")
        page.wait_for_selector("#scenario-state >> text=stopped", timeout=30_000)
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
