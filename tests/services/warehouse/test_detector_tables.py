"""Each table holds what its GCP counterpart holds: the detector (Dataflow's place) writes ``dataflow`` and
``dataflow_anomaly``, never the Cloud Run processor's ``cloud_run``/``cloud_run_anomaly``; the stack's summary
counts each scored purchase once whichever of the two writers runs."""

from __future__ import annotations

import pytest

from services.detector import records, sinks
from services.stack import summary
from services.warehouse import append
from services.warehouse.query import files, query
from services.warehouse.tables import DETECTOR_TABLE, DETECTOR_VERDICTS, TABLES, VERDICT_TABLES
from tests.services.detector.helpers import batch, message, purchase_event, view_event

pytestmark = pytest.mark.local_only("the table layout of hyp-local's warehouse; dataflow_anomaly is a local name")


def _scored(first: int, *events, flags):
    parsed = records.parse_batch(batch(*(message(first + i, e, anomaly="0") for i, e in enumerate(events))))
    verdicts = tuple({"score": 0.5, "is_anomaly": f, "model_version": "7"} for f in flags)
    return parsed.replace(verdicts=verdicts, model_version="7")


def _count(warehouse, table: str) -> int:
    return query(warehouse, f"SELECT count(*) AS n FROM {table}").to_pylist()[0]["n"]


def test_the_verdict_tables_share_one_schema():
    assert VERDICT_TABLES == ("cloud_run_anomaly", DETECTOR_VERDICTS) and DETECTOR_VERDICTS == "dataflow_anomaly"
    assert TABLES["cloud_run_anomaly"].schema == TABLES[DETECTOR_VERDICTS].schema


def test_the_detector_writes_its_own_tables_only(tmp_path):
    one = _scored(0, purchase_event(0), view_event(1), flags=[True])
    two = _scored(10, purchase_event(10), purchase_event(11, value=9e6), flags=[False, True])
    sinks.write_warehouse_many(str(tmp_path), [one, two])  # the local read's commit: both batches, one file each
    sinks.write_warehouse(str(tmp_path), _scored(20, purchase_event(20), flags=[False]))  # a source that acks itself
    assert _count(tmp_path, DETECTOR_TABLE) == 5
    verdicts = query(tmp_path, f"SELECT message_id, anomaly, source FROM {DETECTOR_VERDICTS} ORDER BY 1").to_pylist()
    assert verdicts == [
        {"message_id": "m0", "anomaly": True, "source": "detector"},
        {"message_id": "m10", "anomaly": False, "source": "detector"},
        {"message_id": "m11", "anomaly": True, "source": "detector"},
        {"message_id": "m20", "anomaly": False, "source": "detector"},
    ]
    assert not files(tmp_path, "cloud_run") and not files(tmp_path, "cloud_run_anomaly")


def test_a_refused_row_is_dead_lettered_and_the_rest_lands_in_the_detector_tables(tmp_path):
    good = _scored(0, purchase_event(0), purchase_event(1), flags=[False, True])
    verdicts = list(good.verdicts)
    verdicts[1] = {**verdicts[1], "score": "not a number"}  # the warehouse refuses this verdict row
    written = sinks.write_warehouse(str(tmp_path), good.replace(verdicts=tuple(verdicts)))
    assert [r.message.message_id for r in written.rejected] == ["m1"]
    assert query(tmp_path, f"SELECT message_id FROM {DETECTOR_VERDICTS}").to_pylist() == [{"message_id": "m0"}]
    assert not files(tmp_path, "cloud_run_anomaly")


def test_the_summary_counts_each_scored_purchase_once_with_both_writers(tmp_path):
    b = _scored(0, purchase_event(0), purchase_event(1, value=9e6), purchase_event(2), flags=[False, True, False])
    sinks.write_warehouse(str(tmp_path), b)  # the detector: 3 scored, 1 flagged
    stats = summary.warehouse_stats(tmp_path)
    assert stats is not None and (stats.events, stats.scored, stats.flagged) == (3, 3, 1)
    processor = [r | {"source": "processor"} for r in records.anomaly_rows(b)[:2]]
    append(tmp_path, "cloud_run_anomaly", processor)  # the processor, behind: the fuller table counts
    stats = summary.warehouse_stats(tmp_path)
    assert stats is not None and (stats.scored, stats.flagged, stats.model_version) == (3, 1, "7")
