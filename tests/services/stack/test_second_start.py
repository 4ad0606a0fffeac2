"""A second `hyp up` after a long run is healthy as fast as the first, and loses or doubles no row.

Hours of running leave thousands of small commits in the warehouse (processor and detector rows in
cloud_run and cloud_run_anomaly). The test starts the processor's part of the stack (pubsub, mlflow, init,
endpoint, processor) on an empty home and measures it, stops it, fills the home's warehouse like that,
starts it again and asserts every service is healthy within the first start's time (or FLOOR_S, whichever
is larger: a start of a few seconds must not fail on scheduling noise), and that the rows per message id
are the same before and after. The stack's ports are moved by a free offset (`--port-offset`), so the test
runs beside a stack on the default ports.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.stack.up import port_in_use, select
from services.testing.hyp import run_hyp as hyp

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
SERVICES = "processor"  # and what it depends on: pubsub, mlflow, init, endpoint
COMMITS = 2500  # per table and source: 10,000 small files, as the processor and detector leave them
FLOOR_S = 60.0
PROCESSOR_SLACK_S = 5.0
START_TIMEOUT_S = 900.0  # only so a hung start ends the test; the assertion is the bound above


@pytest.fixture
def offset() -> int:
    """A port offset under which every port of the processor's part of the stack is free now."""
    ports = [port for s in select([SERVICES], []) for port in s.ports]
    for candidate in range(25000, 40000, 983):
        if not any(port_in_use(port + candidate) for port in ports):
            return candidate
    raise RuntimeError("no free port offset")


NOTE = re.compile(r"^\s+(\S+)\s+(?:healthy|done)\s+([\d.]+) s$", re.MULTILINE)  # hyp up's progress lines


def processor_start(stderr: str) -> float:
    """Seconds from the processor's start (when its last dependency is ready) to its health, from hyp up."""
    at = {name: float(t) for name, t in NOTE.findall(stderr)}
    return at["processor"] - max(at.get(dep, 0.0) for dep in ("pubsub", "endpoint"))


def up(home: Path, offset: int) -> tuple[float, float]:
    """`hyp up --detach` of the processor's part of the stack; seconds until every service is healthy, and
    the processor's own start."""
    t0 = time.monotonic()
    result = hyp(
        "up", "--detach", "--services", SERVICES, "--home", str(home), "--health-timeout", "600",
        "--port-offset", str(offset), timeout=START_TIMEOUT_S,
    )  # fmt: skip
    took = time.monotonic() - t0
    assert result.returncode == 0, result.stdout + result.stderr
    return took, processor_start(result.stderr)


def down(home: Path) -> None:
    stopped = hyp("down", "--home", str(home), timeout=120)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def fill(warehouse: Path, commits: int) -> None:
    """``commits`` appends per table and source, two messages each, like hours of the running stack."""
    from services.common.events import event_row, parse_event
    from services.warehouse.writer import append

    stamp = datetime.now(UTC).replace(tzinfo=None)
    for source in ("processor", "detector"):
        for c in range(commits):
            events, scores = [], []
            for r in range(2):
                mid = f"{source}-{c}-{r}"
                event = {
                    "event_datetime": stamp.strftime("%Y-%m-%d %H:%M:%S"),
                    "event": "purchase",
                    "user_id": f"u{c}",
                    "ecommerce": {
                        "purchase": {"transaction_id": f"t-{mid}", "value": 20.0 + r, "tax": 2.0, "shipping": 3.0}
                    },
                }
                row = event_row(parse_event(json.dumps(event).encode()))
                row.update(message_id=mid, publish_time=stamp, attributes="{}", source=source, ingested_at=stamp)
                events.append(row)
                keys = ("event_datetime", "transaction_id", "user_id", "tax", "shipping", "value")
                score = {k: row[k] for k in keys}
                score.update(anomaly=False, score=1.0, model_version="1", message_id=mid, attributes="{}")
                scores.append({**score, "source": source, "scored_at": stamp})
            append(warehouse, "cloud_run", events)
            append(warehouse, "cloud_run_anomaly", scores)


def rows_per_message(warehouse: Path) -> dict[tuple[str, str, str], int]:
    from services.warehouse.query import query

    out = {}
    for table in ("cloud_run", "cloud_run_anomaly"):
        got = query(warehouse, f"SELECT message_id, source, count(*) AS n FROM {table} GROUP BY ALL").to_pylist()
        out.update({(table, r["message_id"], r["source"]): r["n"] for r in got})
    return out


def test_second_start_on_a_full_warehouse_is_as_fast_as_the_first(offset, tmp_path):
    home = tmp_path / "hyp"
    warehouse = home / "warehouse"
    try:
        first, first_processor = up(home, offset)
    finally:
        down(home)
    print(f"first start (empty home, trains the first champion): {first:.1f} s, processor {first_processor:.1f} s")
    fill(warehouse, COMMITS)
    before = rows_per_message(warehouse)
    ours = [n for key, n in before.items() if key[1].startswith(("processor-", "detector-"))]  # init adds some
    assert len(ours) == 2 * 2 * 2 * COMMITS and set(ours) == {1}
    try:
        second, second_processor = up(home, offset)
    finally:
        down(home)
    print(
        f"second start ({len(before)} rows in {COMMITS * 4} files): {second:.1f} s, processor {second_processor:.1f} s"
    )
    assert second <= max(first, FLOOR_S), f"second start {second:.1f} s, first {first:.1f} s"
    # the processor's own start must not grow with the warehouse (a scan of every file: ~0.85 ms each)
    bound = max(2 * first_processor, first_processor + PROCESSOR_SLACK_S)
    assert second_processor <= bound, (
        f"processor start {second_processor:.1f} s on a full home, {first_processor:.1f} s empty"
    )
    assert rows_per_message(warehouse) == before  # no row lost or doubled by the processor or compaction
    log = hyp("logs", "processor", "--home", str(home), timeout=60)
    assert log.returncode == 0 and "hyp up: starting processor" in log.stdout
