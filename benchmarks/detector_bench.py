"""Benchmark of `hyp detector`: sustained events/s with nothing lost, latency at a fixed rate, RSS,
and the same pipeline with Beam's stock ReadFromPubSub beside it.

Everything runs on this machine: a private `hyp pubsub` emulator, `hyp loadgen` publishing, the
detector (BundleBasedDirectRunner) scoring with Beam's online z-score (no MLflow needed) or, with
--scorer champion --tracking-uri URI, the registry's champion. Prints a markdown table and the
command that made it.

    .venv/bin/python benchmarks/detector_bench.py [--events 100000] [--rate 1000] [--seconds 60]
        [--anomaly-rate value_spike=0.2] [--cpu-seconds 30]

With --vertex it compares instead the two ways of scoring with the registry's champion, side by side in one
run: in process (--scorer champion) and through a `hyp endpoint` with Beam's VertexAIModelHandlerJSON
(--scorer vertex): sustained events/s and publish -> warehouse latency at a fixed rate, each after a warm-up
of 200 events (the scorer loads on its first batch: MLflow's model, or the Vertex SDK's import and the
endpoint's liveness check). It starts its own
MLflow server and trains a champion unless --tracking-uri names one.

    .venv/bin/python benchmarks/detector_bench.py --vertex [--events 20000] [--rate 500] [--seconds 30]

With --rss-tree (repeat it) it runs one detector per checkout side by side on one topic at 200 events/s and
prints their RSS idle after start and every minute, the peak, and when the peak rose:

    .venv/bin/python benchmarks/detector_bench.py --rss-tree /tmp/before --rss-tree . [--rss-minutes 5]
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from teardown import die_with_parent, stop_on_signals  # noqa: E402  (beside this script)

from services.common.processes import cpu_seconds  # noqa: E402
from services.testing.pubsub import start_emulator  # noqa: E402
from tests.services.detector.harness import Resources, publish_events, pull_all, start_detector  # noqa: E402


def warehouse_stats(warehouse: Path, since_ms: int = 0) -> dict[str, float]:
    """Rows, distinct message ids and publish -> warehouse latency of the events sent at or after ``since_ms``
    (a warm-up's events before it left out)."""
    from services.warehouse.query import query

    sql = f"""
        SELECT count(*) AS rows, count(DISTINCT message_id) AS distinct_ids,
               quantile_cont(epoch_ms(ingested_at) - sent, 0.5) AS p50,
               quantile_cont(epoch_ms(ingested_at) - sent, 0.99) AS p99
        FROM (SELECT message_id, ingested_at,
                     CAST(json_extract_string(attributes, '$.sent_at') AS BIGINT) AS sent
              FROM dataflow WHERE source = 'detector')
        WHERE {int(since_ms)} = 0 OR sent >= {int(since_ms)}
    """
    row = query(warehouse, sql).to_pylist()[0]
    return {k: (v if v is not None else float("nan")) for k, v in row.items()}


def detection_latency(messages: list, since_ms: int = 0) -> tuple[float, float, int]:
    lat = sorted(
        m.publish_time.timestamp() * 1000 - int(m.attributes["sent_at"])
        for m in messages
        if "sent_at" in m.attributes and int(m.attributes["sent_at"]) >= since_ms
    )
    if not lat:
        return float("nan"), float("nan"), 0
    return lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))], len(lat)


def warm_up(det, res: Resources, events: int) -> int:
    """Publish ``events`` and wait until they are handled (the scorer loaded: the champion, or the Vertex SDK and
    endpoint); the time after which measured events are sent, in ms."""
    if events:
        publish_events(res, events, seed=99)
        det.wait_events(events, 900)
    return int(time.time() * 1000)


def throughput(
    emulator, work: Path, source: str, events: int, scorer_args: list[str], timeout: float, warmup: int = 0
) -> dict:
    """Publish ``events`` as fast as loadgen can while the detector runs; time until all are handled."""
    res = Resources(emulator.host, emulator.project).create()
    warehouse = work / f"wh-{source}-{res.suffix}"
    det = start_detector(res, warehouse, work, "--source", source, *scorer_args)
    try:
        det.wait_up()
        since = warm_up(det, res, warmup) if warmup else 0
        t0 = time.monotonic()
        publish_events(res, events, timeout=timeout)
        published_s = time.monotonic() - t0
        handled = det.wait_events(warmup + events, timeout) - warmup
        elapsed = time.monotonic() - t0
        rss = det.rss_peak_mb()
    finally:
        code = det.stop()
    stats = warehouse_stats(warehouse, since)
    return {
        "source": source,
        "events": events,
        "handled": handled,
        "elapsed_s": elapsed,
        "published_s": published_s,
        "rate": handled / elapsed,
        "distinct": stats["distinct_ids"],
        "rows": stats["rows"],
        "rss_mb": rss,
        "exit": code,
    }


def latency(
    emulator,
    work: Path,
    source: str,
    rate: float,
    seconds: float,
    scorer_args: list[str],
    anomaly_rate: str,
    warmup: int = 0,
) -> dict:
    res = Resources(emulator.host, emulator.project).create()
    warehouse = work / f"wh-lat-{source}-{res.suffix}"
    det = start_detector(res, warehouse, work, "--source", source, *scorer_args)
    n = int(rate * seconds)
    try:
        det.wait_up()
        since = warm_up(det, res, warmup) if warmup else 0
        extra = ("--anomaly-rate", anomaly_rate) if anomaly_rate else ()
        publish_events(res, n, rate=rate, timeout=seconds * 4 + 60, extra=extra)
        handled = det.wait_events(warmup + n, 120) - warmup
        rss = det.rss_peak_mb()
    finally:
        det.stop()
    stats = warehouse_stats(warehouse, since)
    d50, d99, dn = detection_latency(pull_all(emulator.host, res.detections_subscription), since)
    return {
        "n": n,
        "handled": handled,
        "p50": stats["p50"],
        "p99": stats["p99"],
        "d50": d50,
        "d99": d99,
        "dn": dn,
        "rss_mb": rss,
    }


def cpu_percent(pids: dict[str, int], seconds: float) -> dict[str, float]:
    """% of one core each process used over ``seconds`` (a blocking wait: this is the measurement window)."""
    before, t0 = {k: cpu_seconds(p) for k, p in pids.items()}, time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - t0
    return {k: 100 * (cpu_seconds(p) - before[k]) / elapsed for k, p in pids.items()}


def cpu_use(emulator, work: Path, scorer_args: list[str], seconds: float, rates: list[float]) -> dict:
    """The detector's CPU with no input and with `hyp loadgen` at each rate (loadgen's own CPU beside it)."""
    import subprocess

    res = Resources(emulator.host, emulator.project).create()
    det = start_detector(res, work / f"wh-cpu-{res.suffix}", work, *scorer_args)
    out: dict = {}
    try:
        det.wait_up()
        time.sleep(10)  # warm-up: the scorer loaded, the first pulls answered
        out["idle"] = cpu_percent({"detector": det.process.pid}, seconds)
        for rate in rates:
            args = [sys.executable, "-m", "services.cli", "loadgen", "--topic", res.events_topic]
            args += ["--emulator-host", res.host, "--rate", str(rate), "--no-progress"]
            gen = subprocess.Popen(
                args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=die_with_parent
            )
            try:
                time.sleep(8)  # loadgen started and the detector at its pace
                out[rate] = cpu_percent({"detector": det.process.pid, "loadgen": gen.pid}, seconds)
            finally:
                gen.terminate()
                report, _ = gen.communicate(timeout=60)
            lines = report.strip().splitlines()
            out[rate]["achieved"] = json.loads(lines[-1])["achieved_rate"] if lines else float("nan")
    finally:
        det.stop()
    return out


def load_average() -> str:
    try:
        return " / ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def champion_server(work: Path) -> tuple[str, list]:
    """A private MLflow server with a trained k-means champion: (tracking URI, processes to stop)."""
    from services.testing.hyp import HypProcess, run_hyp

    data = work / "mlflow"
    mlflow = HypProcess("mlflow", "--host", "127.0.0.1", "--data-dir", str(data), log_path=work / "mlflow.log")
    mlflow.start(300)
    trained = run_hyp(
        *("train", "--model", "kmeans", "--generate", "3000", "--eval-rows", "3000", "--promote"),
        *("--tracking-uri", mlflow.url, "--warehouse-dir", str(work / "train-warehouse")),
        timeout=600,
    )
    if trained.returncode != 0:
        mlflow.stop()
        raise RuntimeError(f"hyp train failed: {trained.stderr[-2000:]}")
    return mlflow.url, [mlflow]


WARMUP = 200  # events handled before measuring: each scorer loads on its first batch, not part of the comparison


def compare_vertex(args: argparse.Namespace, argv: list[str] | None) -> int:
    """In-process champion scoring against Beam's VertexAIModelHandlerJSON through `hyp endpoint`, one run."""
    import os

    from services.testing.hyp import HypProcess

    load_before = load_average()
    work = Path(tempfile.mkdtemp(prefix="hyp-detector-vertex-bench-"))
    stops: list = []
    emulator = start_emulator(work / "pubsub", topology="none")
    try:
        uri, stops = (args.tracking_uri, []) if args.tracking_uri else champion_server(work)
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "HYP_PROJECT": emulator.project}
        endpoint = HypProcess("endpoint", "--host", "127.0.0.1", log_path=work / "endpoint.log", env=env).start(300)
        stops.append(endpoint)
        base = ["--detector-batch-size", str(args.batch_size), "--tracking-uri", uri]
        modes = {
            "in process (--scorer champion)": ["--scorer", "champion", *base],
            "Vertex endpoint (--scorer vertex)": ["--scorer", "vertex", "--vertex-api-endpoint", endpoint.url, *base],
        }
        results = {}
        for name, scorer_args in modes.items():
            results[name] = (
                throughput(emulator, work, "local", args.events, scorer_args, timeout=900, warmup=WARMUP),
                latency(emulator, work, "local", args.rate, args.seconds, scorer_args, args.anomaly_rate, WARMUP),
            )
    finally:
        for process in reversed(stops):
            process.stop()
        emulator.stop()
    print("| scoring | sustained events/s (publish -> warehouse + ack) | lost / duplicated "
          f"| latency at {args.rate:,.0f} events/s, p50 / p99 | detections p50 / p99 | peak RSS |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    lost = 0.0
    for name, (thr, lat) in results.items():
        lost += thr["events"] - thr["distinct"]
        print(
            f"| {name} | {thr['rate']:,.0f} ({thr['events']:,} events in {thr['elapsed_s']:.1f} s) "
            f"| {thr['events'] - thr['distinct']:.0f} / {thr['rows'] - thr['distinct']:.0f} "
            f"| {lat['p50']:.0f} ms / {lat['p99']:.0f} ms | {lat['d50']:.0f} ms / {lat['d99']:.0f} ms "
            f"| {max(thr['rss_mb'] or 0, lat['rss_mb'] or 0):.0f} MiB |"
        )
    print()
    print(f"load average (1/5/15 min): {load_before} before, {load_average()} after")
    print(f"command: .venv/bin/python benchmarks/detector_bench.py {shlex.join(argv or sys.argv[1:])}".rstrip())
    print(f"details: {json.dumps(results, default=str)}")
    return 0 if lost == 0 else 1


def _status_mib(pid: int, key: str) -> float:
    """VmRSS or VmHWM of a process, MiB (nan once it is gone)."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return float("nan")
    return next((int(line.split()[1]) / 1024 for line in lines if line.startswith(key + ":")), float("nan"))


def rss_trees(trees: list[Path], minutes: float, rate: float, scorer_args: list[str]) -> int:
    """RSS of one detector per tree (its own subscription of one topic, compaction on, as in the stack) idle after
    start and every minute at ``rate`` events/s; every rise of the peak (VmHWM) by over 8 MiB is printed with when."""
    import os
    import subprocess

    import httpx

    from services.common import names
    from services.common.processes import free_port, stop_group, wait_for
    from services.common.pubsub_clients import subscriber

    work = Path(tempfile.mkdtemp(prefix="hyp-detector-rss-"))
    emulator = start_emulator(work / "pubsub", topology="none")
    procs: list[subprocess.Popen] = []
    try:
        res = Resources(emulator.host, emulator.project).create()
        dets: dict[str, tuple[subprocess.Popen, int]] = {}
        for i, tree in enumerate(trees):
            label = f"{i}:{tree.name}"
            sub = names.subscription(res.project, res.name(f"dataflow-{i}"))
            subscriber(res.host).create_subscription(
                request={"name": sub, "topic": res.events_topic, "ack_deadline_seconds": 60}
            )
            port = free_port()
            cmd = [sys.executable, "-m", "services.cli", "detector", "--project", res.project, "--subscription", sub]
            cmd += ["--detections-topic", res.detections_topic, "--deadletter-topic", res.deadletter_topic]
            cmd += ["--emulator-host", res.host, "--warehouse-dir", str(work / f"warehouse-{i}")]
            cmd += ["--metrics-port", str(port), *scorer_args]
            env = {**os.environ, "PYTHONPATH": str(tree), "PUBSUB_EMULATOR_HOST": res.host}
            with open(work / f"detector-{i}.log", "wb") as log:
                proc = subprocess.Popen(
                    cmd, cwd=tree, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            procs.append(proc)
            dets[label] = (proc, port)
        for label, (proc, port) in dets.items():

            def serving(proc: subprocess.Popen = proc, port: int = port) -> bool:
                if proc.poll() is not None:
                    raise SystemExit(f"a detector exited with {proc.returncode} (logs in {work})")
                try:
                    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(serving, 180, f"detector {label}")
        time.sleep(5)
        rows = [("idle, 5 s after /metrics answers", {k: _status_mib(p.pid, "VmRSS") for k, (p, _) in dets.items()})]
        loads = [load_average()]
        count = int(rate * 60 * minutes) + 2000
        gen_cmd = [sys.executable, "-m", "services.cli", "loadgen", "--topic", res.events_topic]
        gen_cmd += ["--emulator-host", res.host, "--count", str(count), "--rate", f"{rate:g}", "--no-progress"]
        gen = subprocess.Popen(
            gen_cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        procs.append(gen)
        t0 = time.monotonic()
        hwm = {k: _status_mib(p.pid, "VmHWM") for k, (p, _) in dets.items()}
        minute = 1
        while time.monotonic() - t0 < 60 * minutes:
            time.sleep(0.5)
            for k, (p, _) in dets.items():
                peak = _status_mib(p.pid, "VmHWM")
                if peak > hwm[k] + 8:
                    print(f"{time.monotonic() - t0:6.1f} s {k}: peak {hwm[k]:.0f} -> {peak:.0f} MiB", flush=True)
                hwm[k] = max(hwm[k], peak)
            if time.monotonic() - t0 >= 60 * minute:
                loads.append(load_average())
                rows.append(
                    (
                        f"{minute} min at {rate:g} events/s",
                        {k: _status_mib(p.pid, "VmRSS") for k, (p, _) in dets.items()},
                    )
                )
                minute += 1
        rows.append(("peak (VmHWM)", {k: _status_mib(p.pid, "VmHWM") for k, (p, _) in dets.items()}))
        print("| RSS (MiB) | " + " | ".join(dets) + " |\n|---|" + "---:|" * len(dets))
        for what, values in rows:
            print(f"| {what} | " + " | ".join(f"{values[k]:.0f}" for k in dets) + " |")
        print(f"load average (1/5/15 min) per minute: {'; '.join(str(x) for x in loads)}")
        print(f"command: .venv/bin/python benchmarks/detector_bench.py {shlex.join(sys.argv[1:])}")
    finally:
        for proc in reversed(procs):
            stop_group(proc, timeout=20)
        emulator.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events for the throughput run (local read)")
    parser.add_argument("--stock-events", type=int, default=5_000, help="events for the stock ReadFromPubSub run")
    parser.add_argument("--rate", type=float, default=1000.0, help="events/s of the latency run")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the latency run")
    parser.add_argument(
        "--anomaly-rate",
        default="value_spike=0.2",
        help="loadgen --anomaly-rate for the latency run: more anomalies, more detection latency samples ('' = off)",
    )
    parser.add_argument("--scorer", default="zscore", help="zscore (no MLflow) or champion")
    parser.add_argument("--tracking-uri", help="MLflow tracking URI for --scorer champion")
    parser.add_argument("--batch-size", type=int, default=5000, help="detector batch size")
    parser.add_argument(
        "--cpu-seconds", type=float, default=0.0, help="also measure CPU (idle, 200 and 2,000 events/s) this long"
    )
    parser.add_argument(
        "--vertex",
        action="store_true",
        help="compare in-process champion scoring with --scorer vertex (Beam's VertexAIModelHandlerJSON through "
        "hyp endpoint) instead",
    )
    parser.add_argument(
        "--rss-tree",
        action="append",
        type=Path,
        help="instead: RSS of a detector started from this checkout (repeat: side by side) at 200 events/s",
    )
    parser.add_argument("--rss-minutes", type=float, default=5.0, help="length of the --rss-tree run")
    args = parser.parse_args(argv)
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up
    if args.vertex:
        return compare_vertex(args, argv)
    scorer_args = ["--scorer", args.scorer, "--detector-batch-size", str(args.batch_size)]
    if args.tracking_uri:
        scorer_args += ["--tracking-uri", args.tracking_uri]
    if args.rss_tree:
        return rss_trees([t.resolve() for t in args.rss_tree], args.rss_minutes, 200.0, scorer_args)

    load_before = load_average()
    work = Path(tempfile.mkdtemp(prefix="hyp-detector-bench-"))
    emulator = start_emulator(work / "pubsub", topology="none")
    try:
        local = throughput(emulator, work, "local", args.events, scorer_args, timeout=600)
        lat = latency(emulator, work, "local", args.rate, args.seconds, scorer_args, args.anomaly_rate)
        stock = throughput(emulator, work, "pubsub", args.stock_events, scorer_args, timeout=300)
        cpu = cpu_use(emulator, work, scorer_args, args.cpu_seconds, [200.0, 2000.0]) if args.cpu_seconds else {}
    finally:
        emulator.stop()

    lost = local["events"] - local["distinct"]
    stock_lost = stock["events"] - stock["distinct"]
    ratio = local["rate"] / stock["rate"] if stock["rate"] else float("inf")
    print("| measure | local batched read | stock ReadFromPubSub | ratio |")
    print("|---|---|---|---|")
    print(
        f"| sustained events/s, end to end (publish -> warehouse + ack) | {local['rate']:,.0f} "
        f"({local['events']:,} events in {local['elapsed_s']:.1f} s) | {stock['rate']:,.0f} "
        f"({stock['events']:,} events in {stock['elapsed_s']:.1f} s) | {ratio:.1f}x |"
    )
    print(
        f"| events lost / duplicated in the warehouse | {lost:.0f} / {local['rows'] - local['distinct']:.0f} "
        f"| {stock_lost:.0f} / {stock['rows'] - stock['distinct']:.0f} | |"
    )
    print(
        f"| publish -> warehouse latency at {args.rate:,.0f} events/s, p50 / p99 (all {lat['n']:,} events) "
        f"| {lat['p50']:.0f} ms / {lat['p99']:.0f} ms | | |"
    )
    print(
        f"| publish -> hyp-detections latency at {args.rate:,.0f} events/s, p50 / p99 ({lat['dn']:,} anomalies; "
        f"loadgen --anomaly-rate {args.anomaly_rate or 'default'}) "
        f"| {lat['d50']:.0f} ms / {lat['d99']:.0f} ms | | |"
    )
    print(
        f"| detector peak RSS | {local['rss_mb']:.0f} MiB (throughput run), {lat['rss_mb']:.0f} MiB (latency run) "
        f"| {stock['rss_mb']:.0f} MiB | |"
    )
    for key, use in cpu.items():
        what = "no input" if key == "idle" else f"loadgen at {key:,.0f} events/s (achieved {use['achieved']:,.0f})"
        gen = f"{use['loadgen']:.1f}%" if "loadgen" in use else ""
        print(f"| CPU, % of one core, {what}: detector / loadgen | {use['detector']:.2f}% / {gen or '-'} | | |")
    print()
    print(f"load average (1/5/15 min): {load_before} before, {load_average()} after")
    print(f"command: .venv/bin/python benchmarks/detector_bench.py {shlex.join(argv or sys.argv[1:])}".rstrip())
    print(f"details: {json.dumps({'local': local, 'latency': lat, 'stock': stock, 'cpu': cpu}, default=str)}")
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
