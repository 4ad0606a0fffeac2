"""`hyp detector` as a real process: real emulator, real MLflow server with a trained champion, real runner."""

from __future__ import annotations

import json
import signal
import time

import pytest

from services.common.processes import wait_for
from services.warehouse.query import query
from tests.services.detector.harness import Resources, publish_events, pull_all, start_detector
from tests.services.detector.helpers import verdict_table
from tests.services.detector.test_records import HOSTILE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]


def _versions(warehouse) -> dict[str, int]:
    rows = query(warehouse, f"SELECT model_version, count(*) AS n FROM {verdict_table()} GROUP BY 1").to_pylist()
    return {r["model_version"]: r["n"] for r in rows}


def test_scores_with_the_champion_and_hot_reloads_when_the_alias_moves(pubsub_emulator, champion, tmp_path):
    from models.registry import client, set_champion

    res = Resources(pubsub_emulator.host, pubsub_emulator.project).create()
    warehouse = tmp_path / "warehouse"
    c = client(champion.tracking_uri)
    det = start_detector(
        res,
        warehouse,
        tmp_path,
        "--scorer",
        "champion",
        "--tracking-uri",
        champion.tracking_uri,
        "--reload-interval",
        "1",
    )
    try:
        det.wait_up()
        publish_events(res, 3000)
        assert det.wait_events(3000, 120) >= 3000, det.log()[-3000:]
        before = _versions(warehouse)
        assert set(before) == {champion.version}, before

        # a new version (same artifacts) becomes champion: the running detector must switch to it
        old = c.get_model_version(champion.model_name, champion.version)
        model_id = getattr(old, "model_id", None) or old.source.rsplit("/", 1)[-1]  # MLflow 3 logged-model id
        new = c.create_model_version(champion.model_name, old.source, run_id=old.run_id, model_id=model_id)
        wait_for(lambda: c.get_model_version(champion.model_name, new.version).status == "READY", 60, "new version")
        set_champion(c, new.version, action="manual", reason="hot reload test")
        wait_for(lambda: _publish_and_check(res, warehouse, new.version), 90, "the detector to use the new version")
        assert det.metrics().get(f'hyp_detector_model_version{{model_version="{new.version}"}}') == 1
        assert det.process.poll() is None, "the detector restarted instead of hot-reloading"
    finally:
        # the champion fixture is shared by the session: give the alias back to the version it promised
        set_champion(c, champion.version, action="manual", reason="hot reload test done")
        assert det.stop() == 0, det.log()[-3000:]
    after = _versions(warehouse)
    assert str(new.version) in after and champion.version in after
    detections = pull_all(res.host, res.detections_subscription)
    for message in detections:
        body = json.loads(message.data)
        assert body["model_version"] == message.attributes["model_version"] in after
        assert set(body) >= {"transaction_id", "user_id", "event_datetime", "features", "score", "sent_at"}
        assert message.attributes.get("anomaly") in {"0", "1"}  # the event's attributes travel along


def _publish_and_check(res: Resources, warehouse, version: str) -> bool:
    publish_events(res, 200, seed=int(time.time()))
    time.sleep(1.0)
    return str(version) in _versions(warehouse)


def test_poison_messages_all_reach_the_dead_letter_topic_with_reasons(pubsub_emulator, tmp_path):
    from services.common.pubsub_clients import publisher

    res = Resources(pubsub_emulator.host, pubsub_emulator.project).create()
    warehouse = tmp_path / "warehouse"
    det = start_detector(res, warehouse, tmp_path, "--scorer", "zscore")
    pub = publisher(res.host)
    # every kind of hostile input, cycled; the oversize one (1 MB) only once, to keep the run short
    poison = [HOSTILE[i % (len(HOSTILE) - 1)] for i in range(999)] + [HOSTILE[-1]]
    try:
        det.wait_up()
        publish_events(res, 2500, seed=1)
        futures = [pub.publish(res.events_topic, p, poison_id=str(i)) for i, p in enumerate(poison)]
        publish_events(res, 2500, seed=2)
        for f in futures:
            f.result(timeout=30)
        assert det.wait_events(6000, 180) >= 6000, det.log()[-3000:]
        assert det.process.poll() is None
    finally:
        assert det.stop(signal.SIGINT) == 0, det.log()[-3000:]  # Ctrl-C drains and exits 0 too
    letters = pull_all(res.host, res.deadletter_subscription, idle_s=2.0)
    ids = sorted(int(m.attributes["poison_id"]) for m in letters)
    assert ids == list(range(1000))
    assert all(m.attributes.get("deadletter_reason") for m in letters)
    by_id = {m.attributes["poison_id"]: m for m in letters}
    assert by_id["1"].data == HOSTILE[1] and "not JSON" in by_id["1"].attributes["deadletter_reason"]
    assert "over the 1000000-byte limit" in by_id["999"].attributes["deadletter_reason"]
    good = query(warehouse, "SELECT count(DISTINCT message_id) AS n FROM dataflow").to_pylist()[0]["n"]
    assert good == 5000
