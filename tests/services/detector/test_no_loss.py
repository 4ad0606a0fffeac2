"""No loss: SIGKILL the detector in the middle of a 100,000-event run, restart it, find every event."""

from __future__ import annotations

import signal

import pytest

from services.common.processes import wait_for
from services.warehouse.query import query
from tests.services.detector.harness import Resources, publish_events, start_detector

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]

EVENTS = 100_000


def test_sigkill_mid_run_then_restart_loses_nothing(pubsub_emulator, tmp_path, record_property):
    res = Resources(pubsub_emulator.host, pubsub_emulator.project).create(ack_deadline=10)
    warehouse = tmp_path / "warehouse"
    flags = ("--scorer", "zscore", "--ack-deadline", "10")
    first = start_detector(res, warehouse, tmp_path, *flags)
    first.wait_up()
    publish_events(res, EVENTS, timeout=300)
    handled = first.wait_events(EVENTS // 3, 300)
    assert EVENTS // 3 <= handled < EVENTS, f"kill point missed: {handled} handled"
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL

    second = start_detector(res, warehouse, tmp_path, *flags)
    try:
        second.wait_up()

        def distinct() -> int:
            return query(warehouse, "SELECT count(DISTINCT message_id) AS n FROM dataflow").to_pylist()[0]["n"]

        second.wait_events(EVENTS - int(handled), 300)  # at least what the first one did not finish
        # leases of the killed process expire (10 s), then those replay
        wait_for(lambda: distinct() >= EVENTS, 120, f"{EVENTS} distinct events in the warehouse", interval=1.0)
    finally:
        assert second.stop() == 0, second.log()[-3000:]
    row = query(
        warehouse, "SELECT count(*) AS rows, count(DISTINCT message_id) AS distinct_ids FROM dataflow"
    ).to_pylist()[0]
    duplicates = row["rows"] - row["distinct_ids"]
    record_property("duplicates", duplicates)
    print(
        f"\nno-loss run: {EVENTS} events, {row['distinct_ids']} distinct in the warehouse, {duplicates} duplicates "
        f"(replayed after SIGKILL at {handled:.0f} handled)"
    )
    assert row["distinct_ids"] == EVENTS
