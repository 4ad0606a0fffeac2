"""`hyp storage` throughput through google-cloud-storage: a 100 MiB object up and down (MB/s) and 1 KiB
objects one by one (objects/s). Starts `hyp storage` on a free port with a temporary data folder and
prints a markdown table. Not a test (pytest does not collect it): numbers depend on the box.

    .venv/bin/python benchmarks/storage_bench.py [--mib 100] [--runs 3] [--small 300]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from teardown import stop_on_signals

from services.testing.hyp import HypProcess
from services.testing.storage import storage_client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--small", type=int, default=300)
    args = parser.parse_args()
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up
    tmp = Path(tempfile.mkdtemp(prefix="storage-bench-"))
    server = HypProcess("storage", "--data-dir", str(tmp / "data"), log_path=tmp / "log").start(timeout=60)
    try:
        bucket = storage_client(server.url).create_bucket("bench")
        src, dst = tmp / "src.bin", tmp / "dst.bin"
        src.write_bytes(os.urandom(args.mib * 1024 * 1024))
        print("| measure | value |\n|---|---|")
        for run in range(1, args.runs + 1):
            t = time.perf_counter()
            bucket.blob("big").upload_from_filename(str(src))
            up = time.perf_counter() - t
            t = time.perf_counter()
            bucket.blob("big").download_to_filename(str(dst))
            down = time.perf_counter() - t
            mb = args.mib * 1.048576
            print(f"| {args.mib} MiB upload / download, run {run} | {mb / up:.0f} / {mb / down:.0f} MB/s |")
        assert dst.read_bytes() == src.read_bytes()
        payload = os.urandom(1024)
        t = time.perf_counter()
        for i in range(args.small):
            bucket.blob(f"small/{i}").upload_from_string(payload)
        print(f"| 1 KiB objects, upload one by one | {args.small / (time.perf_counter() - t):.0f} objects/s |")
        t = time.perf_counter()
        for i in range(args.small):
            bucket.blob(f"small/{i}").download_as_bytes()
        print(f"| 1 KiB objects, download one by one | {args.small / (time.perf_counter() - t):.0f} objects/s |")
        t = time.perf_counter()
        listed = sum(1 for _ in bucket.list_blobs(prefix="small/"))
        print(f"| list {listed} objects | {(time.perf_counter() - t) * 1000:.0f} ms |")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
