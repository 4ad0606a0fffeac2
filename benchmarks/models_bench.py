"""Models benchmark: k-means training on 1M rows, batch scoring throughput (k-means, IForest, envelope).

Prints a markdown table and the command that made it. Rows: 100,000 labelled purchases from the
load generator, resampled with replacement to the sizes asked (rendering 1M item lists would
time the generator, not the models). "model only" times the detector on a ready feature matrix;
"end to end" is AnomalyModel.score_rows on the rows (features included, no MLflow schema step).
Usage: .venv/bin/python benchmarks/models_bench.py [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def best_of(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    import numpy as np

    from loadgen.dataset import labelled_purchases
    from models import training

    base = labelled_purchases(100_000, args.seed)
    rng = np.random.default_rng(args.seed)
    big = base.iloc[rng.integers(0, len(base), args.rows)].reset_index(drop=True)
    slim = big[["tax", "shipping", "value"]]
    rows = []

    started = time.perf_counter()
    km = training.fit("kmeans", slim, {"num_clusters": 2}, unsupervised=True)
    rows.append(
        ("k-means fit (BQML parity, NUM_CLUSTERS=2, standardised)", args.rows, time.perf_counter() - started, "< 30 s")
    )

    X_km = km.model.matrix(slim)
    t = best_of(args.repeat, lambda: km.model.score_matrix(X_km))
    rows.append(("k-means scoring, model only", args.rows, t, ">= 1,000,000 rows/s"))
    t = best_of(args.repeat, lambda: km.model.score_rows(slim))
    rows.append(("k-means scoring, end to end (tax, shipping, value)", args.rows, t, ">= 1,000,000 rows/s"))

    fit_rows = base.iloc[:20_000]
    for kind in ("iforest", "envelope"):
        trained = training.fit(kind, fit_rows)
        X = trained.model.matrix(big.iloc[: min(args.rows, 200_000)])
        X = X[rng.integers(0, len(X), args.rows)]
        target = ">= 100,000 rows/s" if kind == "iforest" else "-"
        t = best_of(args.repeat, lambda m=trained.model, X=X: m.score_matrix(X))
        rows.append((f"{kind} scoring, model only", args.rows, t, target))
        sample = big.iloc[:200_000]
        t = best_of(args.repeat, lambda m=trained.model, s=sample: m.score_rows(s))
        rows.append((f"{kind} scoring, end to end incl. items JSON features", len(sample), t, target))

    cpu = f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}"
    print(f"command: .venv/bin/python benchmarks/models_bench.py --rows {args.rows} --repeat {args.repeat}  ({cpu})\n")
    print("| what | rows | seconds | rows/s | target |")
    print("|---|---:|---:|---:|---|")
    for what, n, seconds, target in rows:
        print(f"| {what} | {n:,} | {seconds:.2f} | {n / seconds:,.0f} | {target} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
