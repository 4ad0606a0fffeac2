"""A fast, lossless Pub/Sub read for Beam's local streaming runner (``BundleBasedDirectRunner``).

Why this exists: on that runner the stock ``ReadFromPubSub`` is replaced by the runner's own
evaluator, which pulls 10 messages per bundle and acknowledges them before anything downstream
ran (a crash drops them). Unbounded splittable DoFns do not run there in streaming mode, so the
read plugs into the runner's evaluator mechanism instead:

* :class:`ReadPubSubBatches` is a root primitive whose evaluator hands out *batches* of messages
  (up to ``batch_size`` per element) that a background thread has already pulled;
* nothing is acknowledged here: each message's ``ack_id`` travels with its batch and the
  pipeline's last stage calls :meth:`LocalSubscription.acknowledge` after the warehouse files
  and the published messages are durable; until then a lease thread extends the ack deadlines;
* flow control: at most ``max_outstanding`` messages are pulled and not yet acknowledged;
* :func:`stop_all` stops pulling; the evaluator then ends its output (watermark to +inf) so
  the runner drains what is in flight and the pipeline finishes: a clean stop, Dataflow's drain.

INTERNAL API: ``TransformEvaluatorRegistry._test_evaluators_overrides``, ``_TransformEvaluator``
and ``TransformResult`` are Beam internals with no compatibility promise. They are touched only
here, Beam is pinned (pyproject.toml), and :func:`check_beam_internals` (called at start and by a
test) fails loudly if an upgrade moved them.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import apache_beam as beam
from apache_beam import pvalue

from services.detector.batch import Batch, Message

log = logging.getLogger(__name__)

BEAM_VERSION = "2.77.0"  # the version these internals were read from; keep in step with pyproject.toml
ACK_CHUNK = 2500  # ack ids per acknowledge/modify_ack_deadline request (Pub/Sub's request size limit)
# An idle root evaluation blocks this long for the first message (the runner has one worker thread and
# schedules the root only when nothing else runs, so waiting here costs no latency; a message or a stop
# wakes it at once). Short waits made the idle runner cycle ~100 times a second (30% of a core).
IDLE_WAIT_S = 1.0
QUICK_EMPTY_S = 0.05  # an empty pull answered faster than this was not held by the server
MIN_EMPTY_WAIT_S, MAX_EMPTY_WAIT_S = 0.005, 0.25


class BeamInternalsChanged(RuntimeError):
    """The Beam internals this module relies on are not where they were in BEAM_VERSION."""


def check_beam_internals() -> None:
    """Raise BeamInternalsChanged unless the direct runner's evaluator hooks look as expected."""
    problems = []
    if beam.__version__ != BEAM_VERSION:
        problems.append(f"apache-beam is {beam.__version__}, this read was written against {BEAM_VERSION}")
    try:
        from apache_beam.runners.direct import transform_evaluator as te
        from apache_beam.runners.direct.util import TransformResult
    except ImportError as exc:  # pragma: no cover - only on a broken Beam
        raise BeamInternalsChanged(f"direct runner modules moved: {exc}") from None
    registry = getattr(te, "TransformEvaluatorRegistry", None)
    if not isinstance(getattr(registry, "_test_evaluators_overrides", None), dict):
        problems.append("TransformEvaluatorRegistry._test_evaluators_overrides is gone")
    base = getattr(te, "_TransformEvaluator", None)
    for name in ("finish_bundle", "_expand_outputs", "start_bundle", "process_element"):
        if not hasattr(base, name):
            problems.append(f"_TransformEvaluator.{name} is gone")
    from apache_beam.transforms import userstate

    if not callable(getattr(userstate, "get_dofn_specs", None)):
        problems.append("userstate.get_dofn_specs is gone")
    import inspect

    params = list(inspect.signature(TransformResult.__init__).parameters)
    expected = ["self", "transform_evaluator", "uncommitted_output_bundles", "unprocessed_bundles"]
    if params[:4] != expected:
        problems.append(f"TransformResult signature changed: {params}")
    from apache_beam.ml.inference import base as inference
    from apache_beam.runners.direct import watermark_manager as wm

    if not callable(getattr(wm.WatermarkManager, "get_watermarks", None)):
        problems.append("WatermarkManager.get_watermarks is gone")
    if not callable(getattr(wm._TransformWatermarks, "remove_pending", None)):
        problems.append("_TransformWatermarks.remove_pending is gone")
    if not callable(getattr(inference, "load_model_status", None)) or not hasattr(inference, "_ModelStatus"):
        problems.append("apache_beam.ml.inference.base.load_model_status or _ModelStatus is gone")
    if problems:
        raise BeamInternalsChanged("; ".join(problems))


# ---------------------------------------------------------------------------------------------
# The subscription: a background pull loop, leases and acknowledgements (no Beam involved).


@dataclass(frozen=True)
class SubscriptionConfig:
    """What identifies one local subscription reader; hashable, so pickled copies find the same one."""

    subscription: str  # projects/P/subscriptions/S
    emulator_host: str | None
    max_messages: int = 2000  # per pull request
    max_outstanding: int = 20_000  # pulled and not yet acknowledged
    ack_deadline_s: int = 60
    pull_timeout_s: float = 5.0
    # for tests; default: an emulator client. Not part of the identity: pickled copies of a config
    # (the runner round-trips the pipeline) must find the same reader.
    client_factory: Callable[[str | None], Any] | None = field(default=None, compare=False, hash=False)


def _default_client(emulator_host: str | None) -> Any:
    from services.common.pubsub_clients import subscriber

    return subscriber(emulator_host)


class LocalSubscription:
    """Pulls ahead into a buffer, extends leases while messages are in flight, acknowledges on request."""

    def __init__(self, config: SubscriptionConfig) -> None:
        self.config = config
        self._client = (config.client_factory or _default_client)(config.emulator_host)
        self._cond = threading.Condition()
        self._buffer: collections.deque[Message] = collections.deque()
        self._leases: dict[str, float] = {}  # ack_id -> monotonic time pulled
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self.pulled = 0
        self.acked = 0
        self.errors = 0

    # lifecycle -----------------------------------------------------------------------------
    @property
    def started(self) -> bool:
        return bool(self._threads)

    def start(self) -> LocalSubscription:
        for target, name in ((self._pull_loop, "pull"), (self._lease_loop, "lease")):
            thread = threading.Thread(target=target, name=f"hyp-detector-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop pulling; messages buffered but not handed out are released for redelivery."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        with self._cond:
            left = [m.ack_id for m in self._buffer if m.ack_id]
            self._buffer.clear()
            for ack_id in left:
                self._leases.pop(ack_id, None)
            self._cond.notify_all()
        if left:
            self._modify(left, 0)

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def outstanding(self) -> int:
        with self._cond:
            return len(self._leases)

    def close(self) -> None:
        self.stop()
        for thread in self._threads:
            thread.join(timeout=self.config.pull_timeout_s + 1)

    # consumer side ---------------------------------------------------------------------------
    def take(self, max_n: int, wait_s: float = 0.0, linger_s: float = 0.0) -> list[Message]:
        """Up to ``max_n`` buffered messages; waits at most ``wait_s`` for the first one, then up to ``linger_s``
        more for the batch to fill (each bundle costs the runner a fixed ~10 ms: at a trickle, fuller bundles
        are most of the detector's CPU)."""
        with self._cond:
            if not self._buffer and wait_s > 0 and not self._stopping.is_set():
                self._cond.wait(wait_s)
            if self._buffer and linger_s > 0:
                until = time.monotonic() + linger_s
                while len(self._buffer) < max_n and not self._stopping.is_set():
                    left = until - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            n = min(max_n, len(self._buffer))
            return [self._buffer.popleft() for _ in range(n)]

    def release(self, ack_ids: Iterable[str]) -> None:
        """Give messages back for redelivery now (their outputs could not be made durable)."""
        ids = list(ack_ids)
        if not ids:
            return
        with self._cond:
            for ack_id in ids:
                self._leases.pop(ack_id, None)
            self._cond.notify_all()
        self._modify(ids, 0)

    def acknowledge(self, ack_ids: Iterable[str]) -> None:
        """Acknowledge (after what the messages produced is durable); failures leave them to redelivery."""
        ids = list(ack_ids)
        if not ids:
            return
        for i in range(0, len(ids), ACK_CHUNK):
            chunk = ids[i : i + ACK_CHUNK]
            for attempt in range(3):
                try:
                    self._client.acknowledge(request={"subscription": self.config.subscription, "ack_ids": chunk})
                    break
                except Exception as exc:  # any transport error: retry, then leave to redelivery
                    self.errors += 1
                    if attempt == 2:
                        log.warning("acknowledge failed; %d messages will be redelivered: %s", len(chunk), exc)
                    else:
                        time.sleep(0.1 * (attempt + 1))
        with self._cond:
            for ack_id in ids:
                self._leases.pop(ack_id, None)
            self.acked += len(ids)
            self._cond.notify_all()

    # background threads ------------------------------------------------------------------------
    def _pull_loop(self) -> None:
        backoff, empty_wait = 0.1, MIN_EMPTY_WAIT_S
        request = {"subscription": self.config.subscription}
        while not self._stopping.is_set():
            with self._cond:
                room = self.config.max_outstanding - len(self._leases)
                if room <= 0:
                    self._cond.wait(1.0)  # acknowledge() and stop() notify: no need to poll fast
                    continue
            asked = time.monotonic()
            try:
                response = self._client.pull(
                    request={**request, "max_messages": min(room, self.config.max_messages)},
                    timeout=self.config.pull_timeout_s,
                )
            except Exception as exc:  # emulator restarting, deadline, ...: back off and retry
                if self._stopping.is_set():
                    break
                self.errors += 1
                log.warning("pull from %s failed (retrying in %.1fs): %s", self.config.subscription, backoff, exc)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            messages = _messages(response)
            if not messages:
                # A server that holds an empty pull (Pub/Sub, hyp pubsub) answers after seconds: pull again at
                # once. One that answers at once would make this a busy loop: back off, 5 ms doubling to 250 ms.
                if time.monotonic() - asked < QUICK_EMPTY_S:
                    self._stopping.wait(empty_wait)
                    empty_wait = min(empty_wait * 2, MAX_EMPTY_WAIT_S)
                continue
            empty_wait = MIN_EMPTY_WAIT_S
            now = time.monotonic()
            with self._cond:
                if self._stopping.is_set():
                    late = [m.ack_id for m in messages if m.ack_id]
                else:
                    late = []
                    for m in messages:
                        self._leases[m.ack_id] = now  # type: ignore[index]
                    self._buffer.extend(messages)
                    self.pulled += len(messages)
                self._cond.notify_all()
            if late:
                self._modify(late, 0)

    def _lease_loop(self) -> None:
        period = max(1.0, self.config.ack_deadline_s / 3)
        while not self._stopping.wait(period):
            with self._cond:
                ids = list(self._leases)
            if ids:
                self._modify(ids, self.config.ack_deadline_s)

    def _modify(self, ack_ids: list[str], seconds: int) -> None:
        for i in range(0, len(ack_ids), ACK_CHUNK):
            try:
                self._client.modify_ack_deadline(
                    request={
                        "subscription": self.config.subscription,
                        "ack_ids": ack_ids[i : i + ACK_CHUNK],
                        "ack_deadline_seconds": seconds,
                    }
                )
            except Exception as exc:  # a lost lease only means an earlier redelivery
                self.errors += 1
                log.warning("modify_ack_deadline failed for %d messages: %s", len(ack_ids), exc)


def _messages(response: Any) -> list[Message]:
    """PullResponse -> Messages, reading the raw protobuf (proto-plus field access is slow)."""
    pb = getattr(response, "_pb", response)
    out = []
    for rm in pb.received_messages:
        msg = rm.message
        publish_us = msg.publish_time.seconds * 1_000_000 + msg.publish_time.nanos // 1000
        out.append(Message(msg.data, dict(msg.attributes), msg.message_id, publish_us, rm.ack_id))
    return out


_REGISTRY: dict[SubscriptionConfig, LocalSubscription] = {}
_REGISTRY_LOCK = threading.Lock()


def subscription_for(config: SubscriptionConfig, *, pull: bool = True) -> LocalSubscription:
    """The process's one reader for this config, shared by the read and the ack stage.

    ``pull=False`` (the ack stage) never starts the pull loop: acknowledging needs only the client.
    """
    with _REGISTRY_LOCK:
        sub = _REGISTRY.get(config)
        if sub is None:
            sub = _REGISTRY[config] = LocalSubscription(config)
        if pull and not sub.started:
            sub.start()
        return sub


def stop_all() -> None:
    """Stop every reader of this process: the pipelines drain what is in flight and finish."""
    with _REGISTRY_LOCK:
        subs = list(_REGISTRY.values())
    for sub in subs:
        sub.stop()


def close_all() -> None:
    """Stop and forget every reader (tests, end of main)."""
    with _REGISTRY_LOCK:
        subs = list(_REGISTRY.values())
        _REGISTRY.clear()
    for sub in subs:
        sub.close()


# ---------------------------------------------------------------------------------------------
# The Beam side: a root primitive and its evaluator for the direct runner.


class ReadPubSubBatches(beam.PTransform):
    """Root transform: a PCollection of :class:`Batch` read from a subscription (local runner only)."""

    def __init__(
        self,
        config: SubscriptionConfig,
        *,
        batch_size: int = 2000,
        poll_wait_s: float = IDLE_WAIT_S,
        linger_s: float = 0.0,
    ) -> None:
        super().__init__()
        self.config = config
        self.batch_size = batch_size
        self.poll_wait_s = poll_wait_s
        self.linger_s = linger_s

    def get_windowing(self, unused_inputs: Any) -> beam.Windowing:
        from apache_beam.transforms.window import GlobalWindows

        return beam.Windowing(GlobalWindows())

    def expand(self, pbegin: pvalue.PBegin) -> pvalue.PCollection:
        _register_evaluator()
        return pvalue.PCollection(pbegin.pipeline, is_bounded=False)


_EVALUATOR_CLASS: list[type] = []
_SPECS_CACHE_MAX = 512


def _dofn_key(dofn: Any, depth: int = 0) -> Any:
    """What a DoFn's state/timer specs depend on: its class and the callables it holds (wrapped DoFns, user
    functions by code object), so the copy the runner unpickles for every bundle maps to the same key."""
    parts = []
    for name, value in sorted(vars(dofn).items()) if hasattr(dofn, "__dict__") else ():
        if isinstance(value, beam.DoFn) and depth < 4:
            parts.append((name, _dofn_key(value, depth + 1)))
        elif callable(value):
            parts.append((name, getattr(value, "__code__", type(value))))
    return (type(dofn), tuple(parts))


def _memoize_dofn_specs() -> None:
    """The direct runner asks every bundle whether each DoFn is stateful (``userstate.get_dofn_specs``:
    a signature inspection of every method of the DoFn, and of a fresh unpickled copy each time). Measured
    at 200 events/s that was ~60% of the runner's CPU. Remember the answer for DoFns without state or
    timers (stateful ones, none here, are inspected every time as before)."""
    from apache_beam.transforms import userstate

    original = userstate.get_dofn_specs
    if getattr(original, "_hyp_memoized", False):
        return
    cache: dict[Any, bool] = {}

    def get_dofn_specs(dofn: Any) -> Any:
        try:
            key = _dofn_key(dofn)
            hash(key)
        except Exception:  # an unhashable attribute: no memo
            return original(dofn)
        if key in cache:
            return (set(), set())
        specs = original(dofn)
        if not specs[0] and not specs[1]:
            if len(cache) >= _SPECS_CACHE_MAX:
                cache.clear()
            cache[key] = True
        return specs

    get_dofn_specs._hyp_memoized = True  # type: ignore[attr-defined]
    userstate.get_dofn_specs = get_dofn_specs  # is_stateful_dofn and validate_stateful_dofn look it up here


def _forget_consumed(context: Any, applied: Any, consumed: Any) -> None:
    """Drop the empty bundle this evaluation consumed from the read's pending set.

    The runner adds each rescheduling bundle (``unprocessed_bundles``) to the transform's pending set and
    removes a consumed input bundle only when it has elements (``WatermarkManager._update_pending``), so
    the read's empty rescheduling bundles stayed there for good: one per evaluation (measured with
    tracemalloc, ~13 a second at 200 events/s, each kept and walked at every watermark refresh). An empty
    bundle holds no watermark, so forgetting it changes nothing else."""
    if consumed is not None and not consumed.has_elements():
        context._watermark_manager.get_watermarks(applied).remove_pending(consumed)


def _share_model_status() -> None:
    """One ``Shared`` handle per model tag for RunInference's model status, as for its model.

    ``apache_beam.ml.inference.base.load_model_status`` makes a new ``shared.Shared()`` (a fresh uuid key in
    the process-wide shared map, never removed) at every ``setup``, and the direct runner sets a DoFn up
    for every bundle: one control block leaked per bundle (measured with tracemalloc, ~7 a second at 200
    events/s). The same tag now finds the same handle, so the status object is shared as its tag says."""
    from apache_beam.ml.inference import base
    from apache_beam.utils import shared

    original = base.load_model_status
    if getattr(original, "_hyp_shared", False):
        return
    handles: dict[str, Any] = {}
    lock = threading.Lock()

    def load_model_status(model_tag: str, share_across_processes: bool) -> Any:
        if share_across_processes:
            return original(model_tag, share_across_processes)
        tag = f"{model_tag}_model_status"
        with lock:
            handle = handles.get(tag)
            if handle is None:
                if len(handles) >= _SPECS_CACHE_MAX:
                    handles.clear()
                handle = handles[tag] = shared.Shared()
        return handle.acquire(lambda: base._ModelStatus(False), tag=tag)

    load_model_status._hyp_shared = True  # type: ignore[attr-defined]
    base.load_model_status = load_model_status  # RunInference's setup looks it up in its module


def _register_evaluator() -> None:
    """Teach the direct runner to evaluate ReadPubSubBatches (once per process)."""
    if _EVALUATOR_CLASS:
        return
    check_beam_internals()
    from apache_beam.runners.direct.transform_evaluator import TransformEvaluatorRegistry, _TransformEvaluator
    from apache_beam.runners.direct.util import TransformResult
    from apache_beam.transforms.window import GlobalWindows
    from apache_beam.utils.timestamp import MAX_TIMESTAMP, Timestamp

    class _ReadBatchesEvaluator(_TransformEvaluator):
        """Each evaluation hands out one batch from the reader's buffer and reschedules itself."""

        def start_bundle(self) -> None:
            pass

        def process_element(self, element: Any) -> None:
            pass

        def finish_bundle(self) -> TransformResult:
            transform = self._applied_ptransform.transform
            assert isinstance(transform, ReadPubSubBatches)
            sub = subscription_for(transform.config)
            messages = sub.take(transform.batch_size, wait_s=transform.poll_wait_s, linger_s=transform.linger_s)
            bundles = []
            now = time.time()
            if messages:
                (output,) = self._outputs
                bundle = self._evaluation_context.create_bundle(output)
                batch = Batch(messages=tuple(messages), received_at=now)
                bundle.output(GlobalWindows.windowed_value(batch, timestamp=Timestamp.of(now)))
                bundles.append(bundle)
            _forget_consumed(self._evaluation_context, self._applied_ptransform, self._input_committed_bundle)
            if sub.stopping:  # drain: no more input, the watermark goes to +inf and the pipeline ends
                return TransformResult(self, bundles, [], None, {None: MAX_TIMESTAMP})
            # the root's (empty) input; the runner's round-tripped transform has no pipeline, and needs none
            again = self._evaluation_context.create_bundle(pvalue.PBegin(transform.pipeline))  # type: ignore[arg-type]
            return TransformResult(self, bundles, [again], None, {None: Timestamp.of(now)})

    TransformEvaluatorRegistry._test_evaluators_overrides[ReadPubSubBatches] = _ReadBatchesEvaluator
    _memoize_dofn_specs()
    _share_model_status()
    _EVALUATOR_CLASS.append(_ReadBatchesEvaluator)


class AcknowledgeFn(beam.DoFn):
    """Last stage: acknowledge a batch's messages; its input only exists once the writes are durable."""

    def __init__(self, config: SubscriptionConfig | None) -> None:
        self.config = config

    def process(self, batch: Batch):
        ids = batch.ack_ids
        if ids and self.config is not None:
            subscription_for(self.config, pull=False).acknowledge(ids)
        yield batch
