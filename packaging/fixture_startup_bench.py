"""Start-up of pytest-hyp-local's Docker-free fixtures: seconds from spawning ``hyp <service>`` to its first
good answer (what a session-scoped fixture costs the first test that uses it), median of N runs.

Run it with a Python that has the plugin installed and a ``hyp`` installed apart, as a user has them:

    nice -n 19 ENV/bin/python packaging/fixture_startup_bench.py --hyp TOOL/bin/hyp --runs 5

(tests/packaging/test_user_project.py builds both environments; docs/benchmarks.md has a run's figures).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from hyp_local_pytest.emulators import HypLocal, find_hyp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hyp", default=None, help="the hyp command (default: $HYP_LOCAL_HYP, then PATH)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--services", default="pubsub,bigquery,storage")
    args = parser.parse_args(argv)
    print(f"{'fixture':<24}{'median s':>10}{'min s':>8}{'max s':>8}  runs")
    with tempfile.TemporaryDirectory(prefix="hyp-bench-") as tmp:
        hyp = HypLocal(find_hyp(args.hyp), Path(tmp))
        for service in args.services.split(","):
            times = []
            for _ in range(args.runs):
                start = time.perf_counter()
                emulator = getattr(hyp, f"start_{service}")()
                times.append(time.perf_counter() - start)
                emulator.stop()
            name = f"hyp_{service}_emulator"
            print(f"{name:<24}{statistics.median(times):>10.2f}{min(times):>8.2f}{max(times):>8.2f}  {args.runs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
