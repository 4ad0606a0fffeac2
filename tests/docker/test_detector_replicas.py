"""Compose replicas of the detector (issue 20), the way docs/detector.md tells users to run them:
`HYP_DETECTOR_WORKERS=2 docker compose up --wait`. Both replicas pull the stack's one subscription; every
published event lands in the warehouse (duplicates counted by message id and reported: Pub/Sub delivers at least
once), and each replica scored a share (its own /metrics page, labelled with its container's host name)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import pytest

from services.common import metric_names
from services.common.processes import wait_for
from services.detector.metrics import WORKER_ID
from services.stack import definition as d
from services.stack.summary import scrape
from services.testing.hyp import run_hyp
from services.testing.stack import HypStack
from services.warehouse.tables import DETECTOR_TABLE

pytestmark = [
    pytest.mark.docker,
    pytest.mark.slow,
    pytest.mark.local_only("compose's deploy.replicas of the detector on the stack's one subscription"),
]

REPLICAS = 2
EVENTS = 3000
# Beam's online z-score (no registry, so no MLflow and no training job), and small batches with a small
# outstanding window so that one replica cannot lease the whole backlog ahead of the other
DETECTOR_ENV = {
    "HYP_DETECTOR_SCORER": "zscore",
    "HYP_DETECTOR_BATCH_SIZE": "250",
    "HYP_DETECTOR_MAX_OUTSTANDING": "1000",
    "HYP_DETECTOR_COMMIT_MAX_ROWS": "500",
    "HYP_DETECTOR_COMPACT_INTERVAL_S": "0",
}

# what runs in a replica's container: the warehouse's own query function over the shared volume
_SQL = """
import json, os, sys
from services.warehouse.query import query
for row in query(os.environ["HYP_WAREHOUSE_DIR"], sys.argv[1], read_only=True).to_pylist():
    print(json.dumps(row, default=str))
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HypStack]:
    override = tmp_path_factory.mktemp("replicas") / "detector-env.yml"
    lines = ["services:", "  detector:", "    environment:", *(f'      {k}: "{v}"' for k, v in DETECTOR_ENV.items())]
    override.write_text("\n".join(lines) + "\n")
    env = {"HYP_DETECTOR_WORKERS": str(REPLICAS)}  # what the user sets (.env or the shell)
    # every service named: HypStack's teardown (`down --volumes SERVICES`) removes only the ones it names
    with HypStack(["pubsub", "detector"], compose_files=("docker-compose.yml", str(override)), env=env) as running:
        yield running


def compose(stack: HypStack, *args: str) -> str:
    done = subprocess.run([*stack.compose.compose_command_property, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def metrics_urls(stack: HypStack) -> list[str]:
    """Each replica's /metrics on the host port compose published it on (`docker compose port --index i`)."""
    urls = []
    for i in range(1, REPLICAS + 1):
        published = compose(stack, "port", "--index", str(i), "detector", str(d.DETECTOR_METRICS_PORT)).strip()
        urls.append(f"http://127.0.0.1:{published.rsplit(':', 1)[1]}/metrics")
    return urls


def scored(urls: list[str]) -> dict[str, float]:
    """Purchases each replica scored, by the worker label on its own page (its container's host name)."""
    out: dict[str, float] = {}
    for url in urls:
        for sample in scrape(url).matching(metric_names.DETECTOR_PURCHASES_SCORED):
            worker = sample.labels.get(WORKER_ID, "?")
            out[worker] = out.get(worker, 0.0) + sample.value
    return out


def warehouse_counts(stack: HypStack) -> dict[str, int]:
    sql = f"SELECT count(*) AS rows, count(DISTINCT message_id) AS ids FROM {DETECTOR_TABLE} WHERE source='detector'"
    out = compose(stack, "exec", "-T", "--index", "1", "detector", "python", "-c", _SQL, sql)
    row: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return row


def test_two_compose_replicas_share_the_subscription_and_every_event_lands_once(stack, record_property):
    containers = compose(stack, "ps", "-q", "detector").split()
    assert len(containers) == REPLICAS, containers  # `up --wait` returned: both are running and healthy
    urls = metrics_urls(stack)

    sent = run_hyp(
        *("loadgen", "--emulator-host", stack.pubsub_host, "--count", str(EVENTS), "--seed", "3"),
        *("--rate", "1000", "--no-progress", "--anomaly-rate", "value_spike=0.05"),
        timeout=180,
    )
    assert sent.returncode == 0, sent.stderr[-2000:]

    def landed() -> dict[str, int] | None:
        counts = warehouse_counts(stack)
        return counts if counts["ids"] >= EVENTS else None

    counts = wait_for(landed, 300, f"{EVENTS} distinct events in {DETECTOR_TABLE}", interval=1.0)
    duplicates = counts["rows"] - counts["ids"]
    per_replica = scored(urls)
    record_property("duplicates", duplicates)
    record_property("per_replica_scored", per_replica)
    print(
        f"\n{REPLICAS} replicas: {EVENTS} events, {counts['ids']} distinct, {duplicates} duplicate rows; {per_replica}"
    )
    assert counts["ids"] == EVENTS  # every event once, from one replica or the other
    assert len(per_replica) == REPLICAS and all(n > 0 for n in per_replica.values()), per_replica
    # no replica was killed, so any duplicate is a redelivery of a lease that expired while it was held
    assert duplicates <= int(DETECTOR_ENV["HYP_DETECTOR_MAX_OUTSTANDING"]), f"{duplicates} duplicate rows"
