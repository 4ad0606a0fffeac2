"""The refresh loop's cadence: fast only while a page watches, slow otherwise; bounded caches."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from services.common.processes import free_port, wait_for
from services.console import sources
from services.console.collector import MAX_CHAMPIONS, Collector
from services.console.live import LiveAnomalies
from services.console.settings import ConsoleSettings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Counting(BaseHTTPRequestHandler):
    """A real HTTP server standing for the scraped services: counts the GETs it answers."""

    hits = 0
    lock = threading.Lock()

    def do_GET(self) -> None:
        with Counting.lock:
            Counting.hits += 1
        body = b"Ok." if self.path == "/" else b"# nothing\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def service() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Counting)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Counting.hits = 0
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def settings(tmp_path: Path, url: str | None = None, **values: Any) -> ConsoleSettings:
    dead = f"http://127.0.0.1:{free_port()}"
    base: dict[str, Any] = {
        "HYP_CONSOLE_PUBSUB_URL": url or dead,
        "HYP_CONSOLE_DETECTOR_METRICS_URL": dead + "/metrics",
        "HYP_CONSOLE_ENDPOINT_URL": dead,
        "HYP_CONSOLE_PROCESSOR_URL": dead,
        "HYP_CONSOLE_ORCHESTRATOR_URL": dead,
        "MLFLOW_TRACKING_URI": dead,
        "HYP_WAREHOUSE_DIR": str(tmp_path),
        "HYP_CONSOLE_SUBSCRIBE": False,
        "HYP_CONSOLE_PROBE_TIMEOUT_S": 0.5,
    }
    return ConsoleSettings(**{**base, **values})


def test_the_wait_is_the_idle_cadence_unless_someone_watches(tmp_path):
    clock = Clock()
    s = settings(tmp_path, HYP_CONSOLE_REFRESH_S=2, HYP_CONSOLE_IDLE_REFRESH_S=30)
    collector = Collector(s, LiveAnomalies(), clock=clock)
    assert collector.due_in() == 0  # never refreshed: now
    asyncio.run(collector.refresh())
    clock.now += 5
    assert collector.interval_s == 30 and collector.due_in() == pytest.approx(25)
    with collector.watching():
        assert collector.interval_s == 2 and collector.due_in() <= 0  # overdue at the fast cadence
        with collector.watching():
            assert collector.watchers == 2
        assert collector.watchers == 1
    assert collector.watchers == 0 and collector.due_in() == pytest.approx(25)
    asyncio.run(collector.close())


def test_a_one_off_read_refreshes_only_a_stale_snapshot(tmp_path):
    clock = Clock()
    collector = Collector(settings(tmp_path, HYP_CONSOLE_REFRESH_S=2), LiveAnomalies(), clock=clock)

    async def scenario() -> list[int]:
        seen = []
        for step in (0, 0.5, 1.0, 1.0):  # 0, 0.5, 1.5, 2.5 s after the first
            clock.now += step
            await collector.fresh()
            seen.append(collector.version)
        await collector.close()
        return seen

    assert asyncio.run(scenario()) == [1, 1, 1, 2]


def test_scrapes_follow_the_watchers(tmp_path, service):
    """Against a real HTTP server: one watcher brings refreshes every refresh_s at once; none, none."""
    s = settings(tmp_path, service, HYP_CONSOLE_REFRESH_S=0.05, HYP_CONSOLE_IDLE_REFRESH_S=3600)
    collector = Collector(s, LiveAnomalies())

    async def until(condition, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout), collector.changed:
            await collector.changed.wait_for(condition)

    async def scenario() -> None:
        task = asyncio.create_task(collector.run())
        try:
            await until(lambda: collector.version >= 1)
            hits_per_refresh = Counting.hits  # the emulator's health and /metrics
            assert hits_per_refresh == 2
            assert collector.due_in() > 3000  # unwatched: the next one an hour away
            with collector.watching():
                start = collector.version
                await until(lambda: collector.version >= start + 5)
            async with collector._refreshing:  # a refresh under way when the page left ends first
                watched = collector.version
            assert collector.due_in() > 3000
            # the loop sleeps now; everything it scraped was one refresh's worth each time
            assert Counting.hits == hits_per_refresh * watched
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await collector.close()

    asyncio.run(scenario())


def test_caches_stay_bounded(tmp_path):
    cache = sources.BoundedCache(8)
    for i in range(1000):
        cache[f"run{i}"] = (0.0, {"f1": i})
    assert len(cache) == 8 and list(cache) == [f"run{i}" for i in range(992, 1000)]
    cache["run992"] = (1.0, {})  # rewritten: now the newest
    cache["new"] = (1.0, {})
    assert "run992" in cache and "run993" not in cache and len(cache) == 8

    collector = Collector(settings(tmp_path), LiveAnomalies())
    for v in range(100):
        collector._track_champion(str(v))
    assert len(collector._champions) == MAX_CHAMPIONS and collector._champions[-1]["version"] == "99"
    asyncio.run(collector.close())


def test_an_open_page_is_a_watcher_until_it_goes(tmp_path):
    """Through the real app and server: an SSE stream brings the fast cadence; closing it ends it."""
    import json

    import httpx

    from services.console.app import create_app
    from services.testing.asgi import serve_in_thread

    app = create_app(settings(tmp_path, HYP_CONSOLE_REFRESH_S=0.2, HYP_CONSOLE_IDLE_REFRESH_S=3600))
    with serve_in_thread(app) as url:
        assert httpx.get(url + "/api/snapshot", trust_env=False).json()["watchers"] == 0
        snapshots = []
        with httpx.stream("GET", url + "/api/stream", timeout=10, trust_env=False) as stream:
            for line in stream.iter_lines():
                if line.startswith("data: "):
                    snapshots.append(json.loads(line.removeprefix("data: ")))
                if len(snapshots) == 2:  # the one there was, then a refresh the page brought at once
                    break
        assert snapshots[1]["watchers"] == 1 and snapshots[1]["refresh_s"] == 0.2

        def released() -> dict[str, Any] | None:
            snap = httpx.get(url + "/api/snapshot", trust_env=False).json()
            return None if snap["watchers"] else snap

        snap = wait_for(released, 10, "the closed stream to stop counting as a watcher", interval=0.1)
        assert snap["refresh_s"] == 3600
