"""Python-heap snapshots of running stack processes, for finding what grows (issue 18's soak).

Not imported by anything: put this folder first on ``PYTHONPATH`` of the processes to trace, e.g.

    PYTHONPATH=benchmarks/heaptrace HEAPTRACE_DIR=/tmp/snaps HEAPTRACE_ONLY='(console|detector|processor) --' \\
        hyp up --detach --home /tmp/traced --port-offset 25000

and every Python process whose command line matches ``HEAPTRACE_ONLY`` (a regular expression; default: all)
starts ``tracemalloc`` (``HEAPTRACE_FRAMES`` frames, default 10) and writes a snapshot to ``HEAPTRACE_DIR``
every ``HEAPTRACE_EVERY_S`` seconds (default 300), named ``<pid>-<n>-<command>.snap``. Then
``python benchmarks/heap_growth.py /tmp/snaps`` says which lines' allocations grew. Tracing roughly doubles a
process's memory and slows it: it finds owners, it does not measure footprints (benchmarks/soak.py does).
"""

import os
import re
import sys

if os.environ.get("HEAPTRACE_DIR") and re.search(os.environ.get("HEAPTRACE_ONLY", "."), " ".join(sys.argv)):
    import threading
    import time
    import tracemalloc

    tracemalloc.start(int(os.environ.get("HEAPTRACE_FRAMES", "10")))

    def _snapshots() -> None:
        folder = os.environ["HEAPTRACE_DIR"]
        every = float(os.environ.get("HEAPTRACE_EVERY_S", "300"))
        name = re.sub(r"[^A-Za-z0-9_.]+", "_", " ".join(sys.argv[:4]))[-60:]
        n = 0
        while True:
            time.sleep(every)
            n += 1
            tracemalloc.take_snapshot().dump(os.path.join(folder, f"{os.getpid()}-{n:03d}-{name}.snap"))

    threading.Thread(target=_snapshots, daemon=True, name="heaptrace").start()
