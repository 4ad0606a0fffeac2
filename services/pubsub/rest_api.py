"""REST front end at the real API's paths, plus the health check, /metrics and an admin view.

``GET /`` answers ``Ok.`` (as Google's emulator does), ``GET /metrics`` is Prometheus text,
``GET /admin/state`` is JSON (topics, subscriptions with backlog) for the console. Errors come
back in Google's JSON error shape with the HTTP status the real REST API uses. A request whose
``Host`` is not one of the emulator's names is refused first (services/common/hosts.py).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Collection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from google.protobuf import json_format

from services.common import hosts
from services.pubsub import metrics
from services.pubsub.broker import Broker, PullResponse
from services.pubsub.errors import ApiError, invalid, not_found
from services.pubsub.pb import types

log = logging.getLogger("hyp.pubsub.rest")
T = types
MAX_BODY = 20_000_000
_P = r"projects/(?P<project>[^/:]+)"


Json = dict[str, Any]
Handler = Callable[[re.Match[str], Json], Any]


def _to_json(pb: Any) -> Json:
    doc: Json = json_format.MessageToDict(pb)
    return doc


def _empty(action: Callable[[str], None]) -> Handler:
    """A handler for a call that returns nothing (delete, detach): run it on the path's name, answer ``{}``."""

    def handle(m: re.Match[str], _: Json) -> Json:
        action(m["name"])
        return {}

    return handle


def _parse(body: Json, cls: Any) -> Any:
    try:
        return json_format.ParseDict(body, cls())
    except json_format.ParseError as exc:
        raise invalid(f"Invalid JSON payload: {exc}") from None


class Routes:
    """(method, path regex) -> handler(match, body) returning a JSON-able dict."""

    def __init__(self, broker: Broker, push_outcomes: Callable[[], Json] | None = None) -> None:
        self.b = broker
        self.push_outcomes = push_outcomes or (lambda: {})
        topic = rf"/v1/(?P<name>{_P}/topics/(?P<id>[^/:]+))"
        sub = rf"/v1/(?P<name>{_P}/subscriptions/(?P<id>[^/:]+))"
        snap = rf"/v1/(?P<name>{_P}/snapshots/(?P<id>[^/:]+))"
        self.table: list[tuple[str, re.Pattern[str], Handler]] = [
            ("PUT", re.compile(topic), self.create_topic),
            ("GET", re.compile(topic), lambda m, _: _to_json(self.b.get_topic(m["name"]))),
            ("PATCH", re.compile(topic), self.update_topic),
            ("DELETE", re.compile(topic), _empty(self.b.delete_topic)),
            ("POST", re.compile(topic + ":publish"), self.publish),
            ("GET", re.compile(r"/v1/(?P<parent>projects/[^/:]+)/topics"), self.list_topics),
            ("GET", re.compile(topic + "/subscriptions"), self.list_topic_subscriptions),
            ("GET", re.compile(topic + "/snapshots"), self.list_topic_snapshots),
            ("PUT", re.compile(sub), self.create_subscription),
            ("GET", re.compile(sub), lambda m, _: _to_json(self.b.get_subscription(m["name"]))),
            ("PATCH", re.compile(sub), self.update_subscription),
            ("DELETE", re.compile(sub), _empty(self.b.delete_subscription)),
            ("POST", re.compile(sub + ":pull"), self.pull),
            ("POST", re.compile(sub + ":acknowledge"), self.acknowledge),
            ("POST", re.compile(sub + ":modifyAckDeadline"), self.modify_ack_deadline),
            ("POST", re.compile(sub + ":modifyPushConfig"), self.modify_push_config),
            ("POST", re.compile(sub + ":seek"), self.seek),
            ("POST", re.compile(sub + ":detach"), _empty(self.b.detach_subscription)),
            ("GET", re.compile(r"/v1/(?P<parent>projects/[^/:]+)/subscriptions"), self.list_subscriptions),
            ("PUT", re.compile(snap), self.create_snapshot),
            ("GET", re.compile(snap), lambda m, _: _to_json(self.b.get_snapshot(m["name"]))),
            ("PATCH", re.compile(snap), self.update_snapshot),
            ("DELETE", re.compile(snap), _empty(self.b.delete_snapshot)),
            ("GET", re.compile(r"/v1/(?P<parent>projects/[^/:]+)/snapshots"), self.list_snapshots),
        ]

    def dispatch(self, method: str, path: str, body: Json) -> Any:
        known_path = False
        for verb, pattern, fn in self.table:
            m = pattern.fullmatch(path)
            if m:
                known_path = True
                if verb == method:
                    return fn(m, body)
        if known_path:
            raise ApiError(grpc.StatusCode.UNIMPLEMENTED, f"Method {method} is not allowed on {path}")
        raise not_found(f"Unknown path: {path}")

    # topics
    def create_topic(self, m: re.Match[str], body: Json) -> Any:
        pb = _parse(body, T.Topic.pb())
        pb.name = m["name"]
        return _to_json(self.b.create_topic(pb))

    def update_topic(self, m: re.Match[str], body: Json) -> Any:
        req = _parse(body, T.UpdateTopicRequest.pb())
        req.topic.name = m["name"]
        return _to_json(self.b.update_topic(req.topic, req.update_mask))

    def publish(self, m: re.Match[str], body: Json) -> Any:
        req = _parse(body, T.PublishRequest.pb())
        return {"messageIds": self.b.publish(m["name"], req.messages)}

    def list_topics(self, m: re.Match[str], _: Json) -> Any:
        return {"topics": [_to_json(t) for t in self.b.list_topics(m["parent"])]}

    def list_topic_subscriptions(self, m: re.Match[str], _: Json) -> Any:
        return {"subscriptions": self.b.list_topic_subscriptions(m["name"])}

    def list_topic_snapshots(self, m: re.Match[str], _: Json) -> Any:
        return {"snapshots": self.b.list_topic_snapshots(m["name"])}

    # subscriptions
    def create_subscription(self, m: re.Match[str], body: Json) -> Any:
        pb = _parse(body, T.Subscription.pb())
        pb.name = m["name"]
        return _to_json(self.b.create_subscription(pb))

    def update_subscription(self, m: re.Match[str], body: Json) -> Any:
        req = _parse(body, T.UpdateSubscriptionRequest.pb())
        req.subscription.name = m["name"]
        return _to_json(self.b.update_subscription(req.subscription, req.update_mask))

    def list_subscriptions(self, m: re.Match[str], _: Json) -> Any:
        return {"subscriptions": [_to_json(s) for s in self.b.list_subscriptions(m["parent"])]}

    def pull(self, m: re.Match[str], body: Json) -> Any:
        req = _parse(body, T.PullRequest.pb())
        wait = 0.0 if req.return_immediately else 10.0
        items = self.b.pull(m["name"], req.max_messages, req.return_immediately, wait)
        return _to_json(PullResponse.FromString(b"".join(items)))

    def acknowledge(self, m: re.Match[str], body: Json) -> Any:
        req = _parse(body, T.AcknowledgeRequest.pb())
        self.b.acknowledge(m["name"], req.ack_ids)
        return {}

    def modify_ack_deadline(self, m: re.Match[str], body: Json) -> Any:
        req = _parse(body, T.ModifyAckDeadlineRequest.pb())
        self.b.modify_ack_deadline(m["name"], req.ack_ids, req.ack_deadline_seconds)
        return {}

    def modify_push_config(self, m: re.Match[str], body: Json) -> Any:
        req = _parse(body, T.ModifyPushConfigRequest.pb())
        self.b.modify_push_config(m["name"], req.push_config)
        return {}

    def seek(self, m: re.Match[str], body: Json) -> Any:
        req = _parse(body, T.SeekRequest.pb())
        target = req.WhichOneof("target")
        if target is None:
            raise invalid("Seek needs a time or a snapshot")
        self.b.seek(m["name"], req.time if target == "time" else None, req.snapshot if target == "snapshot" else None)
        return {}

    # snapshots
    def create_snapshot(self, m: re.Match[str], body: Json) -> Any:
        req = _parse(body, T.CreateSnapshotRequest.pb())
        return _to_json(self.b.create_snapshot(m["name"], req.subscription, dict(req.labels)))

    def update_snapshot(self, m: re.Match[str], body: Json) -> Any:
        req = _parse(body, T.UpdateSnapshotRequest.pb())
        req.snapshot.name = m["name"]
        return _to_json(self.b.update_snapshot(req.snapshot, req.update_mask))

    def list_snapshots(self, m: re.Match[str], _: Json) -> Any:
        return {"snapshots": [_to_json(s) for s in self.b.list_snapshots(m["parent"])]}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes: Routes
    allowed_hosts: Collection[str] = ()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format % args)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, doc: Any) -> None:
        self._send(status, json.dumps(doc).encode(), "application/json; charset=utf-8")

    def _handle(self) -> None:
        refused = hosts.refused(self.headers.get_all("Host") or [], self.allowed_hosts)
        if refused is not None:  # not one of our names (DNS rebinding): the body, if any, is left unread
            self.close_connection = True
            self._send(*refused, "application/json")
            return
        path = self.path.split("?", 1)[0]
        if self.command in ("GET", "HEAD") and path == "/":
            self._send(200, b"Ok.", "text/plain; charset=utf-8")
            return
        if self.command == "GET" and path == "/metrics":
            text = metrics.render(self.routes.b.stats(), self.routes.push_outcomes())
            self._send(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")
            return
        if self.command == "GET" and path == "/admin/state":
            self._json(200, self.routes.b.stats())
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise invalid(f"Request payload size exceeds the limit: {MAX_BODY} bytes.")
            raw = self.rfile.read(length) if length else b""
            try:
                body = json.loads(raw) if raw.strip() else {}
            except ValueError:
                raise invalid("Invalid JSON payload received: the body is not JSON") from None
            if not isinstance(body, dict):
                raise invalid("Invalid JSON payload received: the body must be a JSON object")
            self._json(200, self.routes.dispatch(self.command, path, body))
        except ApiError as exc:
            self._json(exc.http_status, exc.to_json())
        except Exception:
            log.exception("unexpected REST error")
            self._json(500, {"error": {"code": 500, "message": "internal error", "status": "INTERNAL"}})

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = do_HEAD = _handle


class RestServer:
    def __init__(
        self,
        broker: Broker,
        host: str,
        port: int,
        push_outcomes: Callable[[], Json] | None = None,
        *,
        allowed_hosts: Collection[str],  # hosts.for_settings: the bind address, loopback, HYP_ALLOWED_HOSTS
    ) -> None:
        attrs = {"routes": Routes(broker, push_outcomes), "allowed_hosts": frozenset(allowed_hosts)}
        handler = type("Handler", (_Handler,), attrs)
        ThreadingHTTPServer.allow_reuse_address = True
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.5}, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
