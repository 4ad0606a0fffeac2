"""Soak: the whole stack at its default rate for N minutes, RSS per service and backlog per subscription
sampled every few seconds, a table and a PNG plot of RSS over time.

    .venv/bin/python benchmarks/soak.py [--minutes 60] [--rate 200] [--interval 5] [--png docs/soak.png]

Targets (issue 18): no service grows more than 10% after its first 5 minutes; the stack's total RSS stays
under 1.5 GiB; backlogs stay flat. PSS is sampled beside RSS: the sum of RSS counts a library page shared by
ten processes ten times, the sum of PSS once. The stack is `hyp up --detach` from an empty home
(benchmarks/footprint_bench.py's Stack), on the default ports unless --port-offset moves them.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from footprint_bench import ROOT, Stack, pss_mib, rss_mib, subscriptions, tree
from teardown import stop_on_signals

SETTLE_MIN = 5.0  # growth is measured from the first sample after this many minutes
GROWTH_LIMIT = 0.10
TOTAL_LIMIT_MIB = 1.5 * 1024


def sample(stack: Stack, t0: float) -> dict:
    pids = stack.pids()
    return {
        "t_min": (time.monotonic() - t0) / 60,
        "rss": {n: rss_mib(tree(p)) for n, p in pids.items()},
        # shared pages (Python, numpy, pyarrow's libraries) split between the processes that map them: what the
        # stack costs the machine, where the sum of RSS counts each shared page once per process
        "pss": {n: pss_mib(tree(p)) for n, p in pids.items()},
        "backlog": {s["name"].rsplit("/", 1)[-1]: s["backlog"] for s in subscriptions(stack.port_offset)},
    }


def summarise(samples: list[dict]) -> tuple[list[dict], dict]:
    settled = [s for s in samples if s["t_min"] >= SETTLE_MIN] or samples
    services = sorted({n for s in samples for n in s["rss"]})
    rows = []
    for name in services:
        start = next((s["rss"][name] for s in settled if name in s["rss"]), float("nan"))
        end = next((s["rss"][name] for s in reversed(samples) if name in s["rss"]), float("nan"))
        peak = max(s["rss"].get(name, 0.0) for s in samples)
        growth = (end - start) / start if start else float("nan")
        pss = next((s["pss"][name] for s in reversed(samples) if name in s.get("pss", {})), float("nan"))
        rows.append({"service": name, "at_5_min": start, "end": end, "peak": peak, "growth": growth, "pss": pss})
    totals = [sum(s["rss"].values()) for s in samples]
    pss_totals = [sum(s.get("pss", {}).values()) for s in samples]
    subs = sorted({n for s in samples for n in s["backlog"]})
    backlog = {
        n: (
            settled[0]["backlog"].get(n, 0),
            samples[-1]["backlog"].get(n, 0),
            max(s["backlog"].get(n, 0) for s in samples),
        )
        for n in subs
    }
    extra = {"total_peak": max(totals, default=0.0), "pss_peak": max(pss_totals, default=0.0), "backlog": backlog}
    return rows, extra


def plot(samples: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    for name in sorted({n for s in samples for n in s["rss"]}):
        points = [(s["t_min"], s["rss"][name]) for s in samples if name in s["rss"]]
        ax.plot([p[0] for p in points], [p[1] for p in points], label=name, linewidth=1.2)
    ax.axvline(SETTLE_MIN, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("minutes since hyp up")
    ax.set_ylabel("RSS (MiB, process tree)")
    ax.set_title("hyp up at the default rate: RSS per service")
    ax.legend(fontsize=7, ncol=3, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def render(rows: list[dict], extra: dict, minutes: float, rate: float) -> str:
    lines = [
        f"Soak: {minutes:g} min at {rate:g} events/s; growth from the first sample after {SETTLE_MIN:g} min.",
        "",
        "| service | RSS at 5 min (MiB) | RSS at end | peak | growth | <= 10% | PSS at end |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for r in rows:
        ok = "yes" if r["growth"] <= GROWTH_LIMIT else "**no**"
        mib = f"{r['at_5_min']:.0f} | {r['end']:.0f} | {r['peak']:.0f}"
        lines.append(f"| {r['service']} | {mib} | {100 * r['growth']:+.1f}% | {ok} | {r['pss']:.0f} |")
    total_ok = "yes" if extra["total_peak"] <= TOTAL_LIMIT_MIB else "**no**"
    lines += [
        "",
        f"Stack total RSS, peak: {extra['total_peak']:.0f} MiB (target < {TOTAL_LIMIT_MIB:.0f}: {total_ok})",
        f"Stack total PSS, peak: {extra['pss_peak']:.0f} MiB (shared library pages counted once)",
        "",
    ]
    lines += ["| subscription | backlog at 5 min | at end | peak |", "|---|---:|---:|---:|"]
    for name, (start, end, peak) in extra["backlog"].items():
        lines.append(f"| {name} | {start} | {end} | {peak} |")
    return "\n".join(lines)


COUNTED = ("cloud_run", "dataflow", "pubsub_direct")


def restarted(stack: Stack, first_up_s: float) -> dict[str, float]:
    """`hyp down`, `hyp up` again (timed), then each table's count(*) through the BigQuery API (first answer, timed)."""
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    t0 = time.monotonic()
    stack.down()
    out = {"first_up_s": first_up_s, "down_s": time.monotonic() - t0}
    out["second_up_s"] = stack.up()
    client = bigquery.Client(
        project="hyp-local",
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=f"http://127.0.0.1:{9050 + stack.port_offset}"),
    )
    for table in COUNTED:
        t0 = time.monotonic()
        rows = list(client.query(f"SELECT count(*) AS n FROM `hyp-local.ecommerce_sink.{table}`").result())
        out[table + "_s"], out[table] = time.monotonic() - t0, float(rows[0]["n"])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout to run (default: this one)")
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--png", type=Path, default=None, help="write the RSS plot here")
    ap.add_argument("--json", type=Path, default=None, help="write every sample here")
    ap.add_argument("--port-offset", type=int, default=0, help="hyp up --port-offset (default: the default ports)")
    ap.add_argument(
        "--restart",
        action="store_true",
        help="then hyp down, hyp up again: time to healthy and SELECT count(*) over everything written (issue 15)",
    )
    args = ap.parse_args(argv)
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up

    tmp = Path(tempfile.mkdtemp(prefix="hyp-soak-"))
    stack = Stack(args.root.resolve(), tmp / "home", args.rate, port_offset=args.port_offset)
    samples: list[dict] = []
    restart: dict[str, float] = {}
    try:
        t0 = time.monotonic()
        up_s = stack.up()
        print(f"hyp up healthy in {up_s:.1f} s", file=sys.stderr)
        while time.monotonic() - t0 < args.minutes * 60:
            samples.append(sample(stack, t0))
            if len(samples) % 12 == 0:
                last = samples[-1]
                print(
                    f"t={last['t_min']:.1f} min total={sum(last['rss'].values()):.0f} MiB backlog={last['backlog']}",
                    file=sys.stderr,
                )
            time.sleep(args.interval)
        if args.restart:
            restart = restarted(stack, up_s)
    finally:
        stack.down()
        shutil.rmtree(tmp, ignore_errors=True)
    rows, extra = summarise(samples)
    if args.json:
        args.json.write_text(json.dumps(samples))
    if args.png:
        plot(samples, args.png)
    print(render(rows, extra, args.minutes, args.rate))
    if restart:
        print("\n| after the run | seconds |\n|---|---:|")
        print(f"| first `hyp up` healthy | {restart['first_up_s']:.1f} |")
        print(f"| `hyp down` | {restart['down_s']:.1f} |")
        print(f"| second `hyp up` healthy | {restart['second_up_s']:.1f} |")
        for table in COUNTED:
            print(f"| `SELECT count(*) FROM {table}` ({restart[table]:,.0f} rows) | {restart[table + '_s']:.3f} |")
    print(f"\n`{' '.join(['python', 'benchmarks/soak.py', *(argv if argv is not None else sys.argv[1:])])}`")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
