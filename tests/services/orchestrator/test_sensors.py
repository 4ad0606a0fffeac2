from __future__ import annotations

from datetime import datetime, timedelta

from services.orchestrator.runner import Orchestrator
from services.orchestrator.sensors import Sensors
from tests.services.orchestrator.helpers import StubOps, synthetic_purchases


def test_the_drift_sensor_fires_on_a_price_shift_and_not_before(settings_for, warehouse_with_purchases):
    ops = StubOps(champion="1", champion_f1=0.1)
    orch = Orchestrator(settings_for(drift_recent_rows=300, drift_reference_rows=600), ops)
    sensors = Sensors(orch)
    assert sensors.check_drift() is None  # same distribution: oldest 600 vs newest 300
    calm = sensors.last["drift"]["features"]["value"]["psi"]
    synthetic_purchases(
        warehouse_with_purchases, 300, start=datetime(2026, 11, 22, 8, 5), seconds_apart=0.12, price_factor=1.8, seed=3
    )
    fired = sensors.check_drift()
    assert fired and fired["kind"] == "drift" and "value" in fired["reason"]
    assert fired["features"]["value"]["psi"] > 10 * calm
    assert sensors.tick() is not None  # a tick starts the run
    assert orch.wait(120)
    assert orch.history.list()[0]["trigger"]["kind"] == "drift"
    assert sensors.tick() is None  # cooling down after a run


def test_the_new_data_sensor_counts_purchases_after_the_champion_window(settings_for, warehouse_with_purchases):
    ops = StubOps()
    end = datetime(2026, 11, 22, 8, 1, 0)
    ops.tags = {"hyp.window_start": str(end - timedelta(minutes=1)), "hyp.window_end": str(end)}
    sensors = Sensors(Orchestrator(settings_for(new_data_rows=400), ops))
    fired = sensors.check_new_data()
    assert fired and fired["new_rows"] == sensors.last["new_data"]["new_purchases"]
    assert 400 <= fired["new_rows"] < 1000
    sensors.settings = sensors.settings.model_copy(update={"new_data_rows": 1000})
    assert sensors.check_new_data() is None
