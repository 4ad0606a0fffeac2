"""Emulator CPU per message in-process, with --data-dir: publish into a Broker with a Store, then lease
everything (``take``, what Pull and StreamingPull call), no gRPC. Run it under each tree's PYTHONPATH,
alternating, to compare the topic log's cost (docs/reliability.md, "Backlog on disk"). Not a test.

    for i in 1 2 3 4 5; do for t in /tmp/pubsub-before /work/main; do
      PYTHONPATH=$t nice -n 19 .venv/bin/python benchmarks/pubsub_store_bench.py; done; done
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from services.pubsub.broker import Broker
from services.pubsub.storage import Store

try:
    from services.pubsub.pb import types
except ImportError:  # a tree from before services/pubsub/pb.py
    from google.pubsub_v1 import types

TOPIC = "projects/bench-test/topics/topic-a"
SUB = "projects/bench-test/subscriptions/sub-a"


def main(messages: int = 200_000, batch: int = 1000, size: int = 200) -> None:
    folder = Path(tempfile.mkdtemp(prefix="pubsub-store-bench-"))
    try:
        b = Broker(Store(folder))
        b.create_topic(types.Topic.pb()(name=TOPIC))
        b.create_subscription(types.Subscription.pb()(name=SUB, topic=TOPIC))
        make = types.PublishRequest.pb()
        requests = [make(messages=[{"data": b"x" * size}] * batch).messages for _ in range(messages // batch)]
        c0 = time.process_time()
        for request in requests:
            b.publish(TOPIC, request)
        c1 = time.process_time()
        sub, taken = b.subs[SUB], 0
        while True:
            with b.lock:
                out = b.take(sub, batch, 60)
            if not out:
                break
            taken += len(out)
        c2 = time.process_time()
        tree = os.environ.get("PYTHONPATH", "?")
        print(f"{tree}: publish {(c1 - c0) / messages * 1e6:.2f} us/msg, take {(c2 - c1) / taken * 1e6:.2f} us/msg")
    finally:
        shutil.rmtree(folder)


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
