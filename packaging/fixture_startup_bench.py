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
    nice -n 19 ENV/bin/python packaging/fixture_startup_bench.py --hyp TOOL/bin/hyp --runs 5 --fixture-side

``--fixture-side`` splits the Docker-free Pub/Sub fixture's time: what the fixture itself spends (starting the
process, then noticing readiness: from the emulator's "serving" log line to the fixture returning) against
the emulator process's own start (interpreter, imports, binding its ports).

docs/benchmarks.md has a run's figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from hyp_local_pytest.emulators import HypLocal, find_hyp, wait_for

SERVING = "pubsub emulator serving"  # the emulator's log line once both ports are bound (services/pubsub/server.py)


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


def serving_at(log: str) -> float:
    """Wall-clock time of the emulator's "serving" line (its JSON log's ``ts``, millisecond resolution)."""
    from datetime import datetime

    for line in log.splitlines():
        if SERVING in line:
            return datetime.fromisoformat(json.loads(line)["ts"].replace("Z", "+00:00")).timestamp()
    raise RuntimeError(f"no {SERVING!r} line in the emulator's log:\n{log[-2000:]}")


def _logged(proc: Any) -> str | None:
    log: str = proc.log()
    return log if SERVING in log else None


def fixture_side(hyp: HypLocal, runs: int) -> None:
    """The Docker-free Pub/Sub fixture: its own part (process start, readiness noticed) and the emulator's."""
    spawn, spent = hyp._spawn, []

    def timed_spawn(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        proc = spawn(*args, **kwargs)
        spent.append(time.perf_counter() - t)
        return proc

    hyp._spawn = timed_spawn  # type: ignore[method-assign]
    rows = []
    for _ in range(runs):
        t0 = time.time()
        emulator = hyp.start_pubsub()
        ready = time.time()
        # the line is written just after the ports answer (and a SIGTERM before it would kill the process
        # before it is written): wait for it, then stop
        log = wait_for(partial(_logged, emulator.proc), 30, SERVING)
        emulator.stop()
        serving = serving_at(log)
        rows.append((ready - t0, spent[-1], serving - t0, ready - serving))
    print(f"{'pubsub, split':<24}{'total s':>10}{'spawn ms':>10}{'emulator s':>12}{'noticed ms':>12}")
    for total, popen, emulator_s, noticed in rows:
        print(f"{'':<24}{total:>10.2f}{popen * 1000:>10.1f}{emulator_s:>12.2f}{noticed * 1000:>12.0f}")
    columns = list(zip(*rows, strict=True))
    medians = [statistics.median(c) for c in columns]
    print(f"{'median':<24}{medians[0]:>10.2f}{medians[1] * 1000:>10.1f}{medians[2]:>12.2f}{medians[3] * 1000:>12.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hyp", default=None, help="the hyp command (default: $HYP_LOCAL_HYP, then PATH)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--services", default="pubsub,bigquery,storage", help="also: pubsub_container, stack")
    parser.add_argument("--image", default="hyp-local/pubsub:0.1.0", help="the Pub/Sub image (pubsub_container)")
    parser.add_argument("--fixture-side", action="store_true", help="only: the Pub/Sub fixture's own part")
    parser.add_argument("--stack-timeout", type=float, default=900.0, help="seconds the stack may take")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hyp-bench-") as tmp:
        hyp = HypLocal(find_hyp(args.hyp), Path(tmp))
        if args.fixture_side:
            fixture_side(hyp, args.runs)
            return 0
        print(f"{'fixture':<24}{'median s':>10}{'min s':>8}{'max s':>8}  runs")
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
