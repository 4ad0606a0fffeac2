"""Pub/Sub emulator benchmark: publish throughput, streaming-pull drain, publish latency, backlog RSS.

Starts `hyp pubsub` (memory only, empty topology) on free ports, drives it from this one process
and prints a markdown table plus the command that made it. Not a test: numbers depend on the box.

    .venv/bin/python benchmarks/pubsub_bench.py [--messages 200000] [--backlog 1000000]

``--cpu`` instead measures the emulator's CPU (% of one core, from /proc/PID/stat) idle and at
``--rate`` msg/s with one google-cloud-pubsub StreamingPull subscriber and one push subscription to
a fast receiver; ``--push-sweep`` finds the largest publish rate a push subscription sustains with a
flat backlog against a receiver that takes ``--push-delay`` s per request. ``--repo DIR`` runs the
emulator from another checkout (a git worktree of an older commit) for before/after tables.

    .venv/bin/python benchmarks/pubsub_bench.py --cpu --seconds 60 [--repo /work/before]
    .venv/bin/python benchmarks/pubsub_bench.py --push-sweep 20,100,500,1000,2000,3000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
from google.pubsub_v1 import types
from teardown import die_with_parent, stop_on_signals

from services.common.processes import cpu_seconds, stop_group, wait_for

REPO = Path(__file__).resolve().parents[1]
PROJECT = "bench"
PAYLOAD = b"x" * 200


def start(
    workdir: Path, repo: Path = REPO, data_dir: bool = False, timeout_s: float = 30
) -> tuple[subprocess.Popen, str, str]:
    """`hyp pubsub` from ``repo`` (cwd and PYTHONPATH), empty topology. Not the kit's start_emulator, which runs
    this checkout's code only: ``--repo`` compares another one."""
    log = workdir / "pubsub.log"
    cmd = [sys.executable, "-m", "services.cli", "pubsub", "--port", "0", "--rest-port", "0", "--topology", "none"]
    if data_dir:
        cmd += ["--data-dir", str(workdir / "data")]
    env = {**os.environ, "PYTHONPATH": str(repo), "HYP_LOG_LEVEL": "INFO"}
    env.pop("PUBSUB_EMULATOR_HOST", None)
    with open(log, "wb") as fh:
        proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=fh, stderr=subprocess.STDOUT, preexec_fn=die_with_parent)

    def serving() -> tuple[str, str] | None:
        if proc.poll() is not None:
            raise RuntimeError(f"hyp pubsub exited with {proc.returncode}")
        for line in log.read_text().splitlines():
            if '"pubsub emulator serving"' in line:
                entry = json.loads(line)
                if httpx.get(f"http://{entry['rest']}/", timeout=2).text == "Ok.":
                    return entry["grpc"], f"http://{entry['rest']}"
        return None

    try:
        host, rest = wait_for(serving, timeout_s, "hyp pubsub to answer GET /", interval=0.05)
    except (RuntimeError, TimeoutError) as exc:
        stop_group(proc, timeout=10)
        raise SystemExit(f"emulator did not start ({exc}):\n{log.read_text()[-2000:]}") from None
    return proc, host, rest


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Raw:
    """Raw gRPC stubs (what the Google client sends, without its batching machinery)."""

    def __init__(self, host: str) -> None:
        opts = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
        self.channel = grpc.insecure_channel(host, options=opts)
        c = self.channel

        def stub(service: str, method: str, req: Any, resp: Any) -> Any:  # proto-plus message classes
            return c.unary_unary(f"/google.pubsub.v1.{service}/{method}", req.serialize, resp.deserialize)

        self.create_topic = stub("Publisher", "CreateTopic", types.Topic, types.Topic)
        self.create_sub = stub("Subscriber", "CreateSubscription", types.Subscription, types.Subscription)
        self.publish_pb = c.unary_unary(
            "/google.pubsub.v1.Publisher/Publish",
            types.PublishRequest.pb().SerializeToString,
            types.PublishResponse.pb().FromString,
        )
        self.streaming_pull = c.stream_stream(
            "/google.pubsub.v1.Subscriber/StreamingPull",
            types.StreamingPullRequest.pb().SerializeToString,
            types.StreamingPullResponse.pb().FromString,
        )

    def batch(self, topic: str, n: int) -> bytes:
        req = types.PublishRequest.pb()(topic=topic)
        for _ in range(n):
            req.messages.add(data=PAYLOAD)
        return req


def bench_raw_publish(raw: Raw, topic: str, total: int, batch: int = 1000, inflight: int = 4) -> float:
    req = raw.batch(topic, batch)
    start = time.perf_counter()
    pending: list = []
    sent = 0
    while sent < total:
        pending.append(raw.publish_pb.future(req, timeout=60))
        sent += batch
        if len(pending) >= inflight:
            pending.pop(0).result()
    for f in pending:
        f.result()
    return total / (time.perf_counter() - start)


def bench_client_publish(host: str, topic: str, total: int) -> float:
    from google.cloud import pubsub_v1

    from services.common.pubsub_clients import publisher

    client = publisher(
        host,
        batch_settings=pubsub_v1.types.BatchSettings(max_messages=1000, max_bytes=5_000_000, max_latency=0.05),
    )
    start = time.perf_counter()
    futures = [client.publish(topic, PAYLOAD) for _ in range(total)]
    for f in futures:
        f.result(timeout=120)
    return total / (time.perf_counter() - start)


def bench_latency(raw: Raw, topic: str, n: int, batch: int) -> tuple[float, float]:
    req = raw.batch(topic, batch)
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        raw.publish_pb(req, timeout=30)
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def bench_raw_drain(raw: Raw, sub: str, total: int) -> float:
    """One StreamingPull stream, acks sent on the same stream."""
    req_cls = types.StreamingPullRequest.pb()
    acks: list[list[str]] = []
    cond = threading.Condition()
    done = threading.Event()

    def requests():
        yield req_cls(subscription=sub, stream_ack_deadline_seconds=60, max_outstanding_messages=0)
        while not done.is_set():
            with cond:
                cond.wait_for(lambda: acks or done.is_set(), timeout=0.5)
                batch, acks[:] = [a for chunk in acks for a in chunk], []
            if batch:
                yield req_cls(ack_ids=batch)

    received = 0
    start = time.perf_counter()
    stream = raw.streaming_pull(requests(), timeout=300)
    for resp in stream:
        ids = [m.ack_id for m in resp.received_messages]
        received += len(ids)
        with cond:
            acks.append(ids)
            cond.notify()
        if received >= total:
            break
    elapsed = time.perf_counter() - start
    done.set()
    with cond:
        cond.notify()
    stream.cancel()
    return received / elapsed


def bench_client_drain(host: str, sub: str, total: int) -> float:
    from google.cloud import pubsub_v1

    from services.common.pubsub_clients import subscriber

    client = subscriber(host)
    count = 0
    lock = threading.Lock()
    done = threading.Event()

    def callback(message) -> None:
        nonlocal count
        message.ack()
        with lock:
            count += 1
            if count >= total:
                done.set()

    start = time.perf_counter()
    future = client.subscribe(sub, callback, flow_control=pubsub_v1.types.FlowControl(max_messages=5000))
    done.wait(300)
    elapsed = time.perf_counter() - start
    future.cancel()
    return count / elapsed


def cpu_percent(pid: int, seconds: float) -> float:
    """% of one core the process used over the next `seconds`."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    return 100 * (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def _receiver_main(delay: float, port: Any, count: Any, max_inflight: Any) -> None:
    """The receiver process: aiohttp, 204 after `delay` seconds; shares its port and counters."""
    import asyncio

    from aiohttp import web

    inflight = 0

    async def handle(request: web.Request) -> web.Response:
        nonlocal inflight
        await request.read()
        inflight += 1
        max_inflight.value = max(max_inflight.value, inflight)
        try:
            if delay:
                await asyncio.sleep(delay)
        finally:
            inflight -= 1
        count.value += 1
        return web.Response(status=204)

    async def serve() -> None:
        app = web.Application()
        app.router.add_post("/push", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port.value = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        await asyncio.Event().wait()

    asyncio.run(serve())


class Receiver:
    """A push endpoint in its own process (so it does not share this one's GIL with the publisher)."""

    def __init__(self, delay: float = 0.0) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self._port, self._count, self._max = ctx.Value("i", 0), ctx.Value("q", 0), ctx.Value("i", 0)
        self.proc = ctx.Process(target=_receiver_main, args=(delay, self._port, self._count, self._max), daemon=True)
        self.proc.start()
        wait_for(lambda: self._port.value, 30, "the push receiver's port", interval=0.05)
        self.url = f"http://127.0.0.1:{self._port.value}/push"

    @property
    def count(self) -> int:
        return int(self._count.value)

    @property
    def max_inflight(self) -> int:
        return int(self._max.value)

    @max_inflight.setter
    def max_inflight(self, value: int) -> None:
        self._max.value = value

    def close(self) -> None:
        self.proc.terminate()
        self.proc.join(10)


def publish_at(raw: Raw, topic: str, rate: float, stop: threading.Event, sent: list[int], tick: float = 0.05) -> None:
    """Publish `rate` msg/s in requests of up to 1000 every `tick` until stop is set; counts into sent[0]."""
    start = time.monotonic()
    while not stop.wait(max(0.0, start + (sent[0] / rate) - time.monotonic())):
        due = min(1000, int((time.monotonic() - start + tick) * rate) - sent[0])
        if due > 0:
            raw.publish_pb(raw.batch(topic, due), timeout=30)
            sent[0] += due


def sub_state(rest: str, name: str) -> dict:
    subs = httpx.get(f"{rest}/admin/state", timeout=30).json()["subscriptions"]
    return next(s for s in subs if s["name"] == name)


def bench_cpu(args: argparse.Namespace, rows: list[tuple[str, str]]) -> None:
    from google.cloud import pubsub_v1

    from services.common.pubsub_clients import subscriber

    label = f"({args.repo})" if args.repo != REPO else ""
    receiver = Receiver()
    with tempfile.TemporaryDirectory() as tmp:
        proc, host, rest = start(Path(tmp), args.repo)
        client = subscriber(host)
        try:
            raw = Raw(host)
            topic = f"projects/{PROJECT}/topics/cpu"
            pull_sub, push_sub = f"projects/{PROJECT}/subscriptions/pull", f"projects/{PROJECT}/subscriptions/push"
            raw.create_topic(types.Topic(name=topic))
            raw.create_sub(types.Subscription(name=pull_sub, topic=topic, ack_deadline_seconds=60))
            raw.create_sub(
                types.Subscription(
                    name=push_sub, topic=topic, ack_deadline_seconds=60, push_config={"push_endpoint": receiver.url}
                )
            )
            future = client.subscribe(
                pull_sub, lambda m: m.ack(), flow_control=pubsub_v1.types.FlowControl(max_messages=1000)
            )
            time.sleep(5)  # warm-up: the stream is open, the client's lease loop running
            idle = cpu_percent(proc.pid, args.seconds)
            rows.append(
                (f"emulator CPU idle, 1 StreamingPull + 1 push sub, {args.seconds:.0f} s {label}", f"{idle:.2f} %")
            )
            stop, sent = threading.Event(), [0]
            threading.Thread(target=publish_at, args=(raw, topic, args.rate, stop, sent), daemon=True).start()
            time.sleep(5)
            busy = cpu_percent(proc.pid, args.seconds)
            pull, push = sub_state(rest, pull_sub), sub_state(rest, push_sub)
            stop.set()
            rows.append((f"emulator CPU at {args.rate:.0f} msg/s, same subscribers {label}", f"{busy:.2f} %"))
            rows.append(
                (
                    f"backlog at the end (pull / push), oldest unacked {label}",
                    f"{pull['backlog']} / {push['backlog']}, "
                    f"{max(pull['oldest_unacked_age_s'], push['oldest_unacked_age_s']):.1f} s",
                )
            )
            rows.append((f"emulator RSS after the run {label}", f"{rss_mib(proc.pid):.0f} MiB"))
            rows.append((f"log bytes written {label}", f"{(Path(tmp) / 'pubsub.log').stat().st_size:,}"))
            future.cancel()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            receiver.close()


def bench_push_sweep(args: argparse.Namespace, rows: list[tuple[str, str]]) -> None:
    """Largest rate with a flat push backlog (oldest unacked < 5 s after --step-seconds at the rate)."""
    label = f"({args.repo})" if args.repo != REPO else ""
    receiver = Receiver(args.push_delay)
    with tempfile.TemporaryDirectory() as tmp:
        proc, host, rest = start(Path(tmp), args.repo)
        try:
            raw = Raw(host)
            best = 0.0
            for rate in [float(r) for r in args.push_sweep.split(",")]:
                topic = f"projects/{PROJECT}/topics/push-{rate:.0f}"
                sub = f"projects/{PROJECT}/subscriptions/push-{rate:.0f}"
                raw.create_topic(types.Topic(name=topic))
                raw.create_sub(
                    types.Subscription(
                        name=sub, topic=topic, ack_deadline_seconds=60, push_config={"push_endpoint": receiver.url}
                    )
                )
                stop, sent = threading.Event(), [0]
                threading.Thread(target=publish_at, args=(raw, topic, rate, stop, sent), daemon=True).start()
                c0, t0 = cpu_seconds(proc.pid), time.monotonic()
                time.sleep(args.step_seconds)
                state = sub_state(rest, sub)
                elapsed = time.monotonic() - t0
                cpu = 100 * (cpu_seconds(proc.pid) - c0) / elapsed
                stop.set()
                achieved = sent[0] / elapsed
                # flat: the oldest unacked message is young, and the publisher really kept the rate
                flat = state["oldest_unacked_age_s"] < 5.0 and achieved >= 0.95 * rate
                rows.append(
                    (
                        f"push at {rate:.0f} msg/s, receiver {args.push_delay} s/request {label}",
                        f"{'flat' if flat else 'NOT FLAT'}: published {achieved:.0f}/s, "
                        f"backlog {state['backlog']}, oldest "
                        f"{state['oldest_unacked_age_s']:.1f} s, receiver max in flight {receiver.max_inflight}, "
                        f"emulator CPU {cpu:.0f} %",
                    )
                )
                raw_delete = raw.channel.unary_unary(
                    "/google.pubsub.v1.Subscriber/DeleteSubscription",
                    types.DeleteSubscriptionRequest.serialize,
                    lambda b: b,
                )
                raw_delete(types.DeleteSubscriptionRequest(subscription=sub), timeout=30)
                if not flat:
                    break
                best = rate
                receiver.max_inflight = 0
            rows.append((f"largest push rate with a flat backlog {label}", f"{best:.0f} msg/s"))
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            receiver.close()


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, str(REPO))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--messages", type=int, default=200_000, help="messages per throughput run")
    p.add_argument("--client-messages", type=int, default=50_000, help="messages for the google-cloud-pubsub runs")
    p.add_argument("--backlog", type=int, default=1_000_000, help="backlog size for the RSS measurement")
    p.add_argument("--cpu", action="store_true", help="measure emulator CPU idle and at --rate instead")
    p.add_argument("--rate", type=float, default=200.0, help="publish rate of --cpu (msg/s)")
    p.add_argument("--seconds", type=float, default=60.0, help="length of each --cpu measurement")
    p.add_argument("--push-sweep", help="comma-separated publish rates for the push-throughput sweep")
    p.add_argument("--push-delay", type=float, default=0.5, help="receiver seconds per push request (sweep)")
    p.add_argument("--step-seconds", type=float, default=20.0, help="seconds at each rate of the sweep")
    p.add_argument("--repo", type=Path, default=REPO, help="checkout to run the emulator from")
    p.add_argument("--data-dir", action="store_true", help="run the emulator with --data-dir (in a temporary folder)")
    args = p.parse_args(argv)
    stop_on_signals()  # stopped by `timeout` or `kill`: the finally still cleans up
    rows: list[tuple[str, str]] = []
    if args.cpu or args.push_sweep:
        if args.cpu:
            bench_cpu(args, rows)
        if args.push_sweep:
            bench_push_sweep(args, rows)
        _print(argv, rows)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        proc, host, rest = start(Path(tmp), args.repo, args.data_dir)
        try:
            raw = Raw(host)
            topic, sub = f"projects/{PROJECT}/topics/throughput", f"projects/{PROJECT}/subscriptions/throughput"
            raw.create_topic(types.Topic(name=topic))
            raw.create_sub(types.Subscription(name=sub, topic=topic, ack_deadline_seconds=60))
            rows.append(("start-up RSS", f"{rss_mib(proc.pid):.0f} MiB"))

            rate = bench_raw_publish(raw, topic, args.messages)
            rows.append(("publish, raw gRPC, 1000 msgs x 200 B per request, 4 in flight", f"{rate:,.0f} msg/s"))
            rate = bench_raw_drain(raw, sub, args.messages)
            rows.append(("drain, raw StreamingPull, acks on the stream (one subscriber)", f"{rate:,.0f} msg/s"))

            rate = bench_client_publish(host, topic, args.client_messages)
            rows.append(("publish, google-cloud-pubsub PublisherClient, batches of 1000", f"{rate:,.0f} msg/s"))
            rate = bench_client_drain(host, sub, args.client_messages)
            rows.append(("drain, google-cloud-pubsub subscribe() callback + ack", f"{rate:,.0f} msg/s"))

            lat_topic = f"projects/{PROJECT}/topics/latency"
            raw.create_topic(types.Topic(name=lat_topic))
            raw.create_sub(types.Subscription(name=f"projects/{PROJECT}/subscriptions/latency", topic=lat_topic))
            p50, p99 = bench_latency(raw, lat_topic, 2000, 1)
            rows.append(("publish latency, 1 message per request (p50 / p99)", f"{p50:.2f} / {p99:.2f} ms"))
            p50, p99 = bench_latency(raw, lat_topic, 200, 1000)
            rows.append(("publish latency, 1000 messages per request (p50 / p99)", f"{p50:.2f} / {p99:.2f} ms"))

            big_topic = f"projects/{PROJECT}/topics/backlog"
            raw.create_topic(types.Topic(name=big_topic))
            raw.create_sub(types.Subscription(name=f"projects/{PROJECT}/subscriptions/backlog", topic=big_topic))
            before = rss_mib(proc.pid)
            bench_raw_publish(raw, big_topic, args.backlog)
            backlog = httpx.get(f"{rest}/admin/state", timeout=30).json()
            n = next(s["backlog"] for s in backlog["subscriptions"] if s["name"].endswith("/backlog"))
            after = rss_mib(proc.pid)
            rows.append((f"RSS with {n:,} x 200 B messages in backlog (one subscription)", f"{after:.0f} MiB"))
            per_msg = (after - before) * 2**20 / n
            rows.append(("growth from filling the backlog", f"{after - before:.0f} MiB ({per_msg:.0f} B/msg)"))
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    _print(argv, rows)
    return 0


def _print(argv: list[str] | None, rows: list[tuple[str, str]]) -> None:
    print(f"`{' '.join(['.venv/bin/python', 'benchmarks/pubsub_bench.py', *(argv or sys.argv[1:])])}`")
    print(f"on {platform.node()} ({os.cpu_count()} CPUs), emulator and client on the same box\n")
    print("| measurement | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    raise SystemExit(main())
