"""Several detector workers on one subscription, as Dataflow's workers share one.

Each worker is a whole `hyp detector` process on the same subscription: Pub/Sub hands each message to
one of the pullers (at least once: an expired lease can hand it to another), each worker acknowledges
what it committed, and each serves its own ``/metrics`` with the label ``worker_id`` on every sample.
Nothing is shared between workers but the subscription, the topics and the warehouse folder (file
names are unique; the compactor keeps one owner by a file lock), and each polls the model alias itself,
so a new ``@champion`` reaches every worker within ``--reload-interval``.

:func:`worker_specs` is what a launcher (``hyp up --detector-workers N``, a compose file) starts: one
command line and one metrics port per worker.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_WORKERS = 64


@dataclass(frozen=True)
class WorkerSpec:
    """One worker: its id (the ``worker_id`` label), its metrics port and its `hyp` arguments."""

    worker_id: str
    metrics_port: int
    args: tuple[str, ...]  # after `hyp`: ("detector", "--worker-id", ..., "--metrics-port", ...)

    def metrics_url(self, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.metrics_port}/metrics"


def worker_specs(count: int, metrics_port: int = 9464, extra: tuple[str, ...] = ()) -> list[WorkerSpec]:
    """``count`` workers on consecutive metrics ports from ``metrics_port``; ``extra`` goes to each.

    One worker keeps the single detector's command (no ``--worker-id``: its samples carry no label);
    from two on, worker ``i`` is ``--worker-id i`` on port ``metrics_port + i``.
    """
    if not 1 <= count <= MAX_WORKERS:
        raise ValueError(f"detector workers must be 1..{MAX_WORKERS}, got {count}")
    if count == 1:
        return [WorkerSpec("", metrics_port, ("detector", "--metrics-port", str(metrics_port), *extra))]
    if metrics_port + count - 1 > 65535:
        raise ValueError(f"metrics ports {metrics_port}..{metrics_port + count - 1} run past 65535")
    specs = []
    for i in range(count):
        port = metrics_port + i
        args = ("detector", "--worker-id", str(i), "--metrics-port", str(port), *extra)
        specs.append(WorkerSpec(str(i), port, args))
    return specs
