"""`hyp up`'s live summary: metrics every refresh, the warehouse query at most every WAREHOUSE_EVERY_S."""

from __future__ import annotations

from services.stack.up import Sampler
from tests.services.stack.test_second_start import fill


def test_between_warehouse_reads_the_last_counts_are_shown_without_relisting_detections(tmp_path):
    fill(tmp_path, 2)
    sampler = Sampler(None, [], tmp_path, every_s=3600)
    first = sampler.take(None)
    assert first.warehouse is not None and first.warehouse.events == 8
    fill(tmp_path, 3)  # new rows: not read again before every_s
    again = sampler.take(None)
    assert again.warehouse is not None and again.warehouse.events == 8 and again.warehouse.latest == []
    assert Sampler(None, [], tmp_path, every_s=3600).take(None).warehouse.events == 20  # type: ignore[union-attr]
