"""`hyp up --port-offset N`: every port of a local stack moved by N, nothing else touched; compose unchanged."""

from __future__ import annotations

import re

from services.stack import definition as d

OFFSET = 20000
DEFAULT_PORTS = sorted({port for s in d.SERVICES for port in s.ports})
NAMED = re.compile(r"(?<![0-9])(" + "|".join(str(port) for port in DEFAULT_PORTS) + r")(?![0-9])")


def local(s: d.Service, offset: int, rate: str = "200") -> tuple[list[str], dict[str, str]]:
    values = {**d.TUNABLES, "HYP_LOADGEN_RATE": rate}
    return (
        d.command(s, "local", data="/h", tunables=values, port_offset=offset),
        d.environment(s, "local", data="/h", tunables=values, port_offset=offset),
    )


def test_every_port_of_every_service_moves_and_no_default_port_is_left():
    for s in d.SERVICES:
        args, env = local(s, OFFSET)
        text = " ".join([*args, *env.values()])
        assert not NAMED.search(text), f"{s.name}: a default port is left in {text}"
        for port in s.ports:
            assert str(port + OFFSET) in text or s.name == "loadgen", f"{s.name}: {port + OFFSET} missing"
    pubsub_args, pubsub_env = local(d.service("pubsub"), OFFSET)
    assert pubsub_args[pubsub_args.index("--port") + 1] == str(d.PUBSUB_PORT + OFFSET)
    assert pubsub_args[pubsub_args.index("--rest-port") + 1] == str(d.PUBSUB_REST_PORT + OFFSET)
    assert pubsub_env["PUBSUB_EMULATOR_HOST"] == f"127.0.0.1:{d.PUBSUB_PORT + OFFSET}"
    assert pubsub_env["BIGQUERY_EMULATOR_HOST"] == f"http://127.0.0.1:{d.BIGQUERY_PORT + OFFSET}"
    assert pubsub_env["HYP_PROCESSOR_PUSH_ENDPOINT"] == f"http://127.0.0.1:{d.PROCESSOR_PORT + OFFSET}/"
    detector_args, _ = local(d.service("detector"), OFFSET)
    assert detector_args[-1] == str(d.DETECTOR_METRICS_PORT + OFFSET)


def test_values_that_are_not_ports_stay_and_no_offset_changes_nothing():
    args, _ = local(d.service("loadgen"), OFFSET, rate="8000")  # a rate that looks like the console's port
    assert args[args.index("--rate") + 1] == "8000"
    for s in d.SERVICES:
        assert local(s, 0) == (
            d.command(s, "local", data="/h", tunables={**d.TUNABLES}),
            d.environment(s, "local", data="/h", tunables={**d.TUNABLES}),
        )


def test_health_checks_and_compose_follow():
    health = d.service("storage").health
    assert health is not None and health.url(port_offset=OFFSET) == f"http://127.0.0.1:{d.STORAGE_PORT + OFFSET}/health"
    for s in d.SERVICES:  # compose publishes the defaults whatever the offset (it is hyp up's only)
        assert d.command(s, "compose", data="/data", port_offset=OFFSET) == d.command(s, "compose", data="/data")


def test_the_read_api_port_is_passed_printed_beside_bigquerys_and_moves_with_the_offset():
    bigquery = d.service("bigquery")
    assert d.BIGQUERY_READ_PORT == d.BIGQUERY_PORT + 1 == 9051  # `hyp bigquery`'s own default, REST port + 1
    assert d.BIGQUERY_READ_PORT in bigquery.ports  # `hyp up` checks it free; compose publishes it
    for offset in (0, OFFSET):
        args, _ = local(bigquery, offset)
        assert args[args.index("--read-port") + 1] == str(d.BIGQUERY_READ_PORT + offset)  # served where printed
        lines = d.client_first([(label, url) for s in d.SERVICES for label, url in s.urls.items()])
        shown = [(label, d.resolve(url, "local", data="/h", port_offset=offset)) for label, url in lines]
        labels = [label for label, _ in shown]
        at = labels.index("BigQuery API")
        assert shown[at][1] == f"BIGQUERY_EMULATOR_HOST=http://127.0.0.1:{d.BIGQUERY_PORT + offset}"
        assert labels[at + 1] == "BigQuery Read API"  # the next line, among the variables a user exports
        assert shown[at + 1][1].startswith(f"127.0.0.1:{d.BIGQUERY_READ_PORT + offset} ")
        # the exported variables and the Read API first, together; then the others
        first_other = next(i for i, (_, url) in enumerate(shown) if "_EMULATOR_HOST=" not in url and i != at + 1)
        assert first_other > at + 1 and all("_EMULATOR_HOST=" not in url for _, url in shown[first_other:])
    compose_args = d.command(bigquery, "compose", data="/data", port_offset=OFFSET)
    assert compose_args[compose_args.index("--read-port") + 1] == str(d.BIGQUERY_READ_PORT)
