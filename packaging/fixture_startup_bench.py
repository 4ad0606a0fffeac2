"""Start-up of pytest-hyp-local's fixtures: seconds from starting one to its first good answer (what a
session-scoped fixture costs the first test that uses it), median of N runs.

- ``pubsub``, ``bigquery``, ``storage``: the Docker-free emulators (``hyp <service>`` as a subprocess, ready
  when it answers its health check);
- ``pubsub_container``: ``HypPubSubContainer`` (``docker run`` of the Pub/Sub image to the emulator's ``Ok.``);
- ``stack``: ``hyp_stack``, the whole stack through Docker Compose (``up --wait``: every service healthy,
  the model trained and registered).

Run it with a Python that has the plugin installed (``[containers]`` for the container) and a ``hyp``
installed apart, as a user has them (tests/packaging builds both environments):

    nice -n 19 ENV/bin/python packaging/fixture_startup_bench.py --hyp TOOL/bin/hyp --runs 5
    nice -n 19 ENV/bin/python packaging/fixture_startup_bench.py --hyp TOOL/bin/hyp --runs 1 --services stack

docs/benchmarks.md has a run's figures.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hyp_local_pytest.emulators import HypLocal, find_hyp


def starters(hyp: HypLocal, image: str, stack_timeout: float) -> dict[str, Callable[[], Callable[[], Any]]]:
    """Each fixture kind: a function that starts it (returning once it is ready) and returns its stop."""

    def emulator(service: str) -> Callable[[], Callable[[], Any]]:
        return lambda: getattr(hyp, f"start_{service}")().stop

    def pubsub_container() -> Callable[[], Any]:
        from hyp_local_pytest.containers import HypPubSubContainer

        return HypPubSubContainer(image).start().stop

    def stack() -> Callable[[], Any]:
        from hyp_local_pytest.stack import HypStack

        return HypStack(hyp.command, hyp.workdir / "stack", timeout=stack_timeout).start().stop

    return {
        **{s: emulator(s) for s in ("pubsub", "bigquery", "storage")},
        "pubsub_container": pubsub_container,
        "stack": stack,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hyp", default=None, help="the hyp command (default: $HYP_LOCAL_HYP, then PATH)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--services", default="pubsub,bigquery,storage", help="also: pubsub_container, stack")
    parser.add_argument("--image", default="hyp-local/pubsub:0.1.0", help="the Pub/Sub image (pubsub_container)")
    parser.add_argument("--stack-timeout", type=float, default=900.0, help="seconds the stack may take")
    args = parser.parse_args(argv)
    print(f"{'fixture':<24}{'median s':>10}{'min s':>8}{'max s':>8}  runs")
    with tempfile.TemporaryDirectory(prefix="hyp-bench-") as tmp:
        hyp = HypLocal(find_hyp(args.hyp), Path(tmp))
        kinds = starters(hyp, args.image, args.stack_timeout)
        for service in args.services.split(","):
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                stop = kinds[service]()
                times.append(time.perf_counter() - start)
                stop()
            print(f"{service:<24}{statistics.median(times):>10.2f}{min(times):>8.2f}{max(times):>8.2f}  {args.runs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
