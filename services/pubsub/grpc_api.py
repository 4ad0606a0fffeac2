"""gRPC front end: google.pubsub.v1 Publisher and Subscriber over the broker.

Handlers are registered with generic handlers and take raw request bytes, so a malformed
request gets INVALID_ARGUMENT (not gRPC's INTERNAL deserialization error) and pull responses
are returned as bytes built by :mod:`services.pubsub.wire`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from google.rpc import status_pb2

from services.pubsub import names
from services.pubsub.broker import Broker
from services.pubsub.errors import ApiError, invalid
from services.pubsub.pb import types
from services.pubsub.subscription import SubState
from services.pubsub.validation import parse_ack_id

log = logging.getLogger("hyp.pubsub.grpc")

T = types
Empty = b""
MAX_PULL_WAIT_S = 30.0
# A stream sleeps until the broker notifies its subscription (messages, acks, nacks, expiry) or the call
# ends; this is only a safety net.
STREAM_IDLE_WAIT_S = 60.0


def _page(items: list[Any], page_size: int, page_token: str) -> tuple[list[Any], str]:
    try:
        start = int(page_token) if page_token else 0
    except ValueError:
        raise invalid(f"Invalid page_token: {page_token!r}") from None
    if page_size <= 0:
        return items[start:], ""
    end = start + page_size
    return items[start:end], str(end) if end < len(items) else ""


def abort(context: grpc.ServicerContext, error: ApiError) -> None:
    """End the call with the error's code and message, and its details (ErrorInfo) as the real service does."""
    if error.details:
        from grpc_status import rpc_status  # imports grpc.aio: only for the few errors with details

        status = status_pb2.Status(code=error.code.value[0], message=error.message)
        for detail in error.details:
            status.details.add().Pack(detail)
        context.abort_with_status(rpc_status.to_status(status))
    context.abort(error.code, error.message)


def _void(call: Callable[[Any], None], reply: Any) -> Callable[[Any, grpc.ServicerContext], Any]:
    """A handler for a call that returns nothing: run it, answer `reply`."""

    def handler(req: Any, context: grpc.ServicerContext) -> Any:
        call(req)
        return reply

    return handler


def _unary(req_cls: Any, fn: Callable[[Any, grpc.ServicerContext], Any]) -> grpc.RpcMethodHandler:
    name = req_cls.DESCRIPTOR.name

    def handler(raw: bytes, context: grpc.ServicerContext) -> bytes:
        error: ApiError | None = None
        try:
            if len(raw) > names.MAX_PUBLISH_REQUEST_BYTES:
                raise invalid(f"Request payload size exceeds the limit: {names.MAX_PUBLISH_REQUEST_BYTES} bytes.")
            try:
                req = req_cls.FromString(raw)
            except DecodeError:
                raise invalid(f"Malformed {name}: the request bytes are not a valid protobuf") from None
            resp = fn(req, context)
            return resp if isinstance(resp, bytes) else resp.SerializeToString()
        except ApiError as exc:
            error = exc
        except Exception:
            log.exception("unexpected error in %s", name)
            error = ApiError(grpc.StatusCode.INTERNAL, f"internal error handling {name}")
        abort(context, error)
        raise AssertionError("unreachable")

    return grpc.unary_unary_rpc_method_handler(handler)


class PubsubGrpc:
    """Builds the two generic handlers for a broker."""

    def __init__(self, broker: Broker) -> None:
        self.b = broker

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        b = self.b
        publisher = {
            "CreateTopic": _unary(T.Topic.pb(), lambda r, c: b.create_topic(r)),
            "UpdateTopic": _unary(T.UpdateTopicRequest.pb(), lambda r, c: b.update_topic(r.topic, r.update_mask)),
            "Publish": _unary(T.PublishRequest.pb(), self.publish),
            "GetTopic": _unary(T.GetTopicRequest.pb(), lambda r, c: b.get_topic(r.topic)),
            "ListTopics": _unary(T.ListTopicsRequest.pb(), self.list_topics),
            "ListTopicSubscriptions": _unary(T.ListTopicSubscriptionsRequest.pb(), self.list_topic_subscriptions),
            "ListTopicSnapshots": _unary(T.ListTopicSnapshotsRequest.pb(), self.list_topic_snapshots),
            "DeleteTopic": _unary(T.DeleteTopicRequest.pb(), _void(lambda r: b.delete_topic(r.topic), Empty)),
            "DetachSubscription": _unary(
                T.DetachSubscriptionRequest.pb(),
                _void(lambda r: b.detach_subscription(r.subscription), T.DetachSubscriptionResponse.pb()()),
            ),
        }
        subscriber = {
            "CreateSubscription": _unary(T.Subscription.pb(), lambda r, c: b.create_subscription(r)),
            "GetSubscription": _unary(T.GetSubscriptionRequest.pb(), lambda r, c: b.get_subscription(r.subscription)),
            "UpdateSubscription": _unary(
                T.UpdateSubscriptionRequest.pb(), lambda r, c: b.update_subscription(r.subscription, r.update_mask)
            ),
            "ListSubscriptions": _unary(T.ListSubscriptionsRequest.pb(), self.list_subscriptions),
            "DeleteSubscription": _unary(
                T.DeleteSubscriptionRequest.pb(), _void(lambda r: b.delete_subscription(r.subscription), Empty)
            ),
            "ModifyAckDeadline": _unary(
                T.ModifyAckDeadlineRequest.pb(),
                _void(lambda r: b.modify_ack_deadline(r.subscription, r.ack_ids, r.ack_deadline_seconds), Empty),
            ),
            "Acknowledge": _unary(
                T.AcknowledgeRequest.pb(), _void(lambda r: b.acknowledge(r.subscription, r.ack_ids), Empty)
            ),
            "Pull": _unary(T.PullRequest.pb(), self.pull),
            "StreamingPull": grpc.stream_stream_rpc_method_handler(self.streaming_pull),
            "ModifyPushConfig": _unary(
                T.ModifyPushConfigRequest.pb(),
                _void(lambda r: b.modify_push_config(r.subscription, r.push_config), Empty),
            ),
            "GetSnapshot": _unary(T.GetSnapshotRequest.pb(), lambda r, c: b.get_snapshot(r.snapshot)),
            "ListSnapshots": _unary(T.ListSnapshotsRequest.pb(), self.list_snapshots),
            "CreateSnapshot": _unary(
                T.CreateSnapshotRequest.pb(), lambda r, c: b.create_snapshot(r.name, r.subscription, dict(r.labels))
            ),
            "UpdateSnapshot": _unary(
                T.UpdateSnapshotRequest.pb(), lambda r, c: b.update_snapshot(r.snapshot, r.update_mask)
            ),
            "DeleteSnapshot": _unary(
                T.DeleteSnapshotRequest.pb(), _void(lambda r: b.delete_snapshot(r.snapshot), Empty)
            ),
            "Seek": _unary(T.SeekRequest.pb(), self.seek),
        }
        return [
            grpc.method_handlers_generic_handler("google.pubsub.v1.Publisher", publisher),
            grpc.method_handlers_generic_handler("google.pubsub.v1.Subscriber", subscriber),
        ]

    # ---------------------------------------------------------------- publisher
    def publish(self, req: Any, context: grpc.ServicerContext) -> Any:
        ids = self.b.publish(req.topic, req.messages)
        return T.PublishResponse.pb()(message_ids=ids)

    def list_topics(self, req: Any, context: grpc.ServicerContext) -> Any:
        items, token = _page(self.b.list_topics(req.project), req.page_size, req.page_token)
        return T.ListTopicsResponse.pb()(topics=items, next_page_token=token)

    def list_topic_subscriptions(self, req: Any, context: grpc.ServicerContext) -> Any:
        items, token = _page(self.b.list_topic_subscriptions(req.topic), req.page_size, req.page_token)
        return T.ListTopicSubscriptionsResponse.pb()(subscriptions=items, next_page_token=token)

    def list_topic_snapshots(self, req: Any, context: grpc.ServicerContext) -> Any:
        items, token = _page(self.b.list_topic_snapshots(req.topic), req.page_size, req.page_token)
        return T.ListTopicSnapshotsResponse.pb()(snapshots=items, next_page_token=token)

    # ---------------------------------------------------------------- subscriber
    def list_subscriptions(self, req: Any, context: grpc.ServicerContext) -> Any:
        items, token = _page(self.b.list_subscriptions(req.project), req.page_size, req.page_token)
        return T.ListSubscriptionsResponse.pb()(subscriptions=items, next_page_token=token)

    def list_snapshots(self, req: Any, context: grpc.ServicerContext) -> Any:
        items, token = _page(self.b.list_snapshots(req.project), req.page_size, req.page_token)
        return T.ListSnapshotsResponse.pb()(snapshots=items, next_page_token=token)

    def seek(self, req: Any, context: grpc.ServicerContext) -> Any:
        target = req.WhichOneof("target")
        if target is None:
            raise invalid("Seek needs a time or a snapshot")
        self.b.seek(
            req.subscription, req.time if target == "time" else None, req.snapshot if target == "snapshot" else None
        )
        return T.SeekResponse.pb()()

    def pull(self, req: Any, context: grpc.ServicerContext) -> bytes:
        remaining = context.time_remaining()
        wait = MAX_PULL_WAIT_S if remaining is None else max(0.0, min(MAX_PULL_WAIT_S, remaining - 0.5))
        items = self.b.pull(req.subscription, req.max_messages, req.return_immediately, wait)
        return b"".join(items)

    def streaming_pull(self, request_iterator: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        try:
            stream = _Stream(self.b, request_iterator, context)
        except ApiError as exc:
            context.abort(exc.code, exc.message)
            return
        yield from stream.responses()


def _properties(sub: SubState) -> bytes:
    """subscription_properties (field 4): exactly_once_delivery_enabled (1), message_ordering_enabled (2)."""
    body = (b"\x08\x01" if sub.exactly_once else b"") + (b"\x10\x01" if sub.ordered else b"")
    return b"\x22" + bytes((len(body),)) + body if body else b""


def _parse_stream_request(raw: bytes) -> Any:
    try:
        return T.StreamingPullRequest.pb().FromString(raw)
    except DecodeError:
        raise invalid("Malformed StreamingPullRequest") from None


class _Stream:
    """One StreamingPull: a reader thread applies acks and modacks, the handler sends messages."""

    def __init__(self, broker: Broker, requests: Iterator[bytes], context: grpc.ServicerContext) -> None:
        self.b = broker
        self.context = context
        self.requests = requests
        try:
            first = _parse_stream_request(next(requests))
        except StopIteration:
            raise invalid("StreamingPull needs an initial request") from None
        if not first.subscription:
            raise invalid("The initial StreamingPullRequest must name a subscription")
        if not names.MIN_ACK_DEADLINE_S <= first.stream_ack_deadline_seconds <= names.MAX_ACK_DEADLINE_S:
            raise invalid(
                f"Invalid stream_ack_deadline_seconds: {first.stream_ack_deadline_seconds} (must be between 10 and 600)"
            )
        self.sub: SubState = broker.pull_sub(first.subscription)
        self.deadline_s = first.stream_ack_deadline_seconds
        self.max_messages = first.max_outstanding_messages
        self.max_bytes = first.max_outstanding_bytes
        self.mine: dict[int, int] = {}
        # exactly-once: outcomes of acks/modacks received on the stream, confirmed in the next response
        self.acked_ok: list[str] = []
        self.acked_bad: list[str] = []
        self.modacked_ok: list[str] = []
        self.modacked_bad: list[str] = []
        self.done = threading.Event()
        self.error: ApiError | None = None
        self._apply(first)
        context.add_callback(self._wake)
        self.reader = threading.Thread(target=self._read, name="streaming-pull-reader", daemon=True)
        self.reader.start()

    def _apply(self, req: Any) -> None:
        sub, b = self.sub, self.b
        if req.ack_ids:
            with b.lock:
                if sub.exactly_once:
                    failed = sub.ack_exactly_once(req.ack_ids)
                    self._confirm(req.ack_ids, failed, self.acked_ok, self.acked_bad)
                else:
                    sub.ack([parse_ack_id(a) for a in req.ack_ids])
        if req.modify_deadline_ack_ids:
            if len(req.modify_deadline_ack_ids) != len(req.modify_deadline_seconds):
                raise invalid("modify_deadline_seconds and modify_deadline_ack_ids must have the same length")
            items = [
                (ack_id, max(0, min(seconds, names.MAX_ACK_DEADLINE_S)))
                for ack_id, seconds in zip(req.modify_deadline_ack_ids, req.modify_deadline_seconds, strict=True)
            ]
            with b.lock:
                if sub.exactly_once:
                    failed = sub.modack_exactly_once(items)
                    self._confirm(req.modify_deadline_ack_ids, failed, self.modacked_ok, self.modacked_bad)
                else:
                    for ack_id, seconds in items:
                        sub.modack([parse_ack_id(ack_id)], seconds)
        if req.stream_ack_deadline_seconds:
            self.deadline_s = max(
                names.MIN_ACK_DEADLINE_S, min(req.stream_ack_deadline_seconds, names.MAX_ACK_DEADLINE_S)
            )
        if req.max_outstanding_messages:
            self.max_messages = req.max_outstanding_messages
        if req.max_outstanding_bytes:
            self.max_bytes = req.max_outstanding_bytes

    def _wake(self) -> None:
        with self.b.lock:
            self.sub.cond.notify_all()

    def _confirm(self, ack_ids: Any, failed: list[str], ok: list[str], bad: list[str]) -> None:
        """Queue a confirmation for the responder (lock held) and wake it."""
        failed_set = set(failed)
        ok.extend(a for a in ack_ids if a not in failed_set)
        bad.extend(failed)
        self.sub.cond.notify_all()

    def _confirmations(self) -> bytes:
        """Encoded acknowledge_confirmation / modify_ack_deadline_confirmation fields, emptied. Lock held."""
        out = b""
        if self.acked_ok or self.acked_bad:
            conf = T.StreamingPullResponse.AcknowledgeConfirmation.pb()(
                ack_ids=self.acked_ok, invalid_ack_ids=self.acked_bad
            )
            out += T.StreamingPullResponse.pb()(acknowledge_confirmation=conf).SerializeToString()
            self.acked_ok, self.acked_bad = [], []
        if self.modacked_ok or self.modacked_bad:
            conf = T.StreamingPullResponse.ModifyAckDeadlineConfirmation.pb()(
                ack_ids=self.modacked_ok, invalid_ack_ids=self.modacked_bad
            )
            out += T.StreamingPullResponse.pb()(modify_ack_deadline_confirmation=conf).SerializeToString()
            self.modacked_ok, self.modacked_bad = [], []
        return out

    def _read(self) -> None:
        try:
            for raw in self.requests:
                self._apply(_parse_stream_request(raw))
        except ApiError as exc:
            self.error = exc
        except Exception:  # the client went away: grpc raises on the iterator
            pass
        finally:
            self.done.set()
            with self.b.lock:
                self.sub.cond.notify_all()

    def _capacity(self) -> int:
        if not self.max_messages:
            return names.MAX_PULL_MESSAGES
        leased = self.sub.leased
        if len(self.mine) >= self.max_messages:
            self.mine = {s: g for s, g in self.mine.items() if (lease := leased.get(s)) is not None and lease[1] == g}
        return max(0, min(names.MAX_PULL_MESSAGES, int(self.max_messages) - len(self.mine)))

    def responses(self) -> Iterator[bytes]:
        sub, b = self.sub, self.b
        while not self.done.is_set() and self.context.is_active():
            with b.lock:
                if b.subs.get(sub.name) is not sub:
                    self.error = ApiError(grpc.StatusCode.NOT_FOUND, f"Subscription does not exist: {sub.name}")
                    break
                if sub.pb.detached:
                    self.error = ApiError(grpc.StatusCode.FAILED_PRECONDITION, f"Subscription is detached: {sub.name}")
                    break
                cap = self._capacity()
                track = self.mine if self.max_messages else None  # only flow control needs the leases
                items = sub.take(cap, self.deadline_s, self.max_bytes, track) if cap else []
                confirmations = self._confirmations() if sub.exactly_once else b""
                if not items and not confirmations:
                    sub.cond.wait(STREAM_IDLE_WAIT_S)
                    continue
                props = _properties(sub)
            yield b"".join(items) + confirmations + props
        if self.error is not None:
            self.context.abort(self.error.code, self.error.message)
