"""BigQuery subscriptions: write each message of a subscription with ``bigquery_config`` into its table.

One thread per BigQuery subscription sleeps on the subscription's condition until messages are ready (a
publish wakes it: no polling), leases what is ready (up to ``batch_rows``; a partial batch within
``linger_s`` of the previous write waits out the rest of it), and writes it with one
tabledata.insertAll to ``hyp bigquery`` (services/pubsub/bq_client.py), ``insertId`` = the message id so
a batch written again after a failure or a crash is not stored twice. At least once, as on GCP: a message
is acked only after BigQuery accepted its row.

- A row BigQuery refuses (insertErrors), or a message that cannot become a row (not UTF-8 for a STRING
  ``data`` column, not a JSON object with ``use_table_schema``), is nacked: it goes to the dead-letter topic
  after ``max_delivery_attempts`` when the subscription has one, else it is retried with the retry
  policy's backoff (0.1 s doubling to 60 s without one) and stays in the backlog.
- A failure of the whole write (``hyp bigquery`` down, the table missing, a schema that does not fit)
  gives the batch back untried (no delivery attempt counted) and pauses the subscription (0.1 s doubling
  to ``MAX_PAUSE_S``). The table missing sets ``bigquery_config.state`` NOT_FOUND, a table whose columns do
  not fit SCHEMA_MISMATCH (the subscription's own ``state`` RESOURCE_ERROR); the first write that succeeds
  sets both back to ACTIVE.

The columns, as the real service writes them: without ``use_table_schema``/``use_topic_schema`` the
message's data into ``data`` (STRING, BYTES or JSON); with ``use_table_schema`` the fields of the JSON
message into the columns of the same names (``drop_unknown_fields``: fields without a column are dropped,
otherwise the row is refused); with ``write_metadata`` also ``subscription_name``, ``message_id`` (STRING),
``publish_time`` (TIMESTAMP) and ``attributes`` (STRING or JSON: a JSON object).
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from services.pubsub.bq_client import BigQueryClient, TableNotFound, Unavailable
from services.pubsub.broker import Broker
from services.pubsub.subscription import SubState
from services.pubsub.topic import PubsubMessage
from services.pubsub.validation import BQ_ACTIVE, bigquery_table

log = logging.getLogger("hyp.pubsub.bigquery")

# BigQueryConfig.State and Subscription.State values
NOT_FOUND = 3
SCHEMA_MISMATCH = 4
RESOURCE_ERROR = 2
MIN_PAUSE_S = 0.1
MAX_PAUSE_S = 5.0  # local choice: a table created or `hyp bigquery` restarted is picked up within seconds
SCHEMA_TTL_S = 30.0  # the table's schema is read again after this long (and after any failure)
IDLE_WAIT_S = 5.0  # a bounded wait on the subscription's condition (a publish notifies it at once)
WARN_EVERY_S = 60.0  # `hyp bigquery` down (or not part of this setup): one warning a minute, not one a try
MAX_BATCH_BYTES = 8 * 1024 * 1024  # insertAll allows 10 MB per request; rows are a bit larger than messages

_DATA_TYPES = {"STRING", "BYTES", "JSON"}
_METADATA = {
    "subscription_name": {"STRING"},
    "message_id": {"STRING"},
    "publish_time": {"TIMESTAMP"},
    "attributes": {"STRING", "JSON"},
}


_compact = json.JSONEncoder(separators=(",", ":")).encode  # one encoder: json.dumps(separators=) makes one a call


class SchemaMismatch(Exception):
    """The table's columns do not fit the subscription's config."""


@dataclass
class _Target:
    """One subscription's table and what its schema says (refreshed every SCHEMA_TTL_S)."""

    project: str
    dataset: str
    table: str
    columns: dict[str, str] = field(default_factory=dict)  # lower-case name -> type
    names: dict[str, str] = field(default_factory=dict)  # lower-case name -> the column's own spelling
    read_at: float = float("-inf")


def check_schema(cfg: Any, fields: list[dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    """(types, spellings) by lower-case column name; SchemaMismatch naming the column that does not fit."""
    types = {str(f.get("name", "")).lower(): str(f.get("type", "")).upper() for f in fields}
    spelled = {str(f.get("name", "")).lower(): str(f.get("name", "")) for f in fields}
    types = {k: ("INTEGER" if v == "INT64" else v) for k, v in types.items()}
    wanted: dict[str, set[str]] = {}
    if not cfg.use_table_schema:
        wanted["data"] = _DATA_TYPES
    if cfg.write_metadata:
        wanted.update(_METADATA)
    for column, allowed in wanted.items():
        if column not in types:
            raise SchemaMismatch(f"the table has no column {column!r} ({'/'.join(sorted(allowed))})")
        if types[column] not in allowed:
            raise SchemaMismatch(f"column {column!r} is {types[column]}, not {'/'.join(sorted(allowed))}")
    if not cfg.use_table_schema:
        for f in fields:
            name = str(f.get("name", ""))
            if str(f.get("mode", "")).upper() == "REQUIRED" and name.lower() not in wanted:
                raise SchemaMismatch(f"the table's REQUIRED column {name!r} is not written by this subscription")
    return types, spelled


@dataclass
class _Batch:
    """Leased messages turned into insertAll rows (``leases[i]`` is ``rows[i]``'s) and those that cannot be."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    leases: list[tuple[int, int]] = field(default_factory=list)
    refused: list[tuple[int, int]] = field(default_factory=list)


class BadMessage(ValueError):
    """The message cannot become a row of the table (refused like a row BigQuery refuses)."""


def to_row(sub_name: str, cfg: Any, target: _Target, msg: Any) -> dict[str, Any]:
    """The insertAll ``json`` of one message."""
    row: dict[str, Any] = {}
    if cfg.use_table_schema:
        try:
            doc = json.loads(msg.data)
        except ValueError:
            raise BadMessage("the message data is not JSON") from None
        if not isinstance(doc, dict):
            raise BadMessage("the message data is not a JSON object")
        row.update(doc)
    else:
        kind = target.columns.get("data", "STRING")
        column = target.names.get("data", "data")
        if kind == "BYTES":
            row[column] = base64.b64encode(msg.data).decode()
        else:
            try:
                row[column] = msg.data.decode("utf-8")
            except UnicodeDecodeError:
                raise BadMessage(f"the message data is not UTF-8 text for a {kind} column") from None
    if cfg.write_metadata:
        n = target.names
        row[n.get("subscription_name", "subscription_name")] = sub_name
        row[n.get("message_id", "message_id")] = msg.message_id
        t = msg.publish_time  # seconds since the epoch, as insertAll takes a TIMESTAMP (cheaper than RFC 3339)
        row[n.get("publish_time", "publish_time")] = f"{t.seconds}.{t.nanos // 1000:06d}"
        row[n.get("attributes", "attributes")] = _compact(dict(msg.attributes))
    return row


class BigQueryDelivery:
    """Runs the write loop of every BigQuery subscription of a broker (one thread each)."""

    def __init__(
        self, broker: Broker, url: str, batch_rows: int = 1000, linger_s: float = 0.0, timeout_s: float = 30.0
    ) -> None:
        self.b = broker
        self.url = url
        self.batch_rows = batch_rows
        self.linger_s = linger_s
        self.timeout_s = timeout_s
        self.stopping = threading.Event()
        self.threads: dict[int, threading.Thread] = {}  # subscription uid -> its loop
        self.outcomes: dict[str, Counter[str]] = defaultdict(Counter)  # written / refused / failed_writes
        self.warned: dict[int, float] = {}  # subscription uid -> when "unavailable" was last logged

    def watch(self, sub: SubState) -> None:
        """Write this subscription's messages (idempotent; any thread)."""
        with self.b.lock:
            if self.stopping.is_set():
                return
            thread = self.threads.get(sub.uid)
            if thread is not None and thread.is_alive():
                sub.cond.notify_all()
                return
            thread = threading.Thread(target=self._run, args=(sub,), name=f"pubsub-bq-{sub.uid}", daemon=True)
            self.threads[sub.uid] = thread
        thread.start()

    def _set_state(self, sub: SubState, state: int, why: str = "") -> None:
        with self.b.lock:
            cfg = sub.pb.bigquery_config
            if cfg.state == state or self.b.subs.get(sub.name) is not sub:
                return
            cfg.state = state
            sub.pb.state = BQ_ACTIVE if state == BQ_ACTIVE else RESOURCE_ERROR
            self.b.save_state()
        level = logging.INFO if state == BQ_ACTIVE else logging.WARNING
        name = {BQ_ACTIVE: "ACTIVE", NOT_FOUND: "NOT_FOUND", SCHEMA_MISMATCH: "SCHEMA_MISMATCH"}[state]
        log.log(level, "bigquery subscription %s", name, extra={"fields": {"subscription": sub.name, "why": why}})

    def _run(self, sub: SubState) -> None:
        """Take a batch, turn it into rows, and send it while the next batch is taken and turned into rows: two
        batches at most in flight, so the emulator's and BigQuery's work overlap."""
        reader = BigQueryClient(self.url, self.timeout_s)  # tables.get, from this thread
        writer = BigQueryClient(self.url, self.timeout_s)  # insertAll, from the sender thread
        sender = ThreadPoolExecutor(1, thread_name_prefix=f"pubsub-bq-send-{sub.uid}")
        pending: Future[bool] | None = None
        pause = 0.0
        target: _Target | None = None
        sent_at = float("-inf")
        clean = False  # ended because the subscription stopped being a BigQuery one (not by an error)
        try:
            while not self.stopping.is_set():
                with self.b.lock:
                    short = sub.ready_count(self.batch_rows) < self.batch_rows
                linger = sent_at + self.linger_s - time.monotonic()
                if short and linger > 0:  # a partial batch waits a little for more: fewer, larger writes
                    self.stopping.wait(linger)
                with self.b.lock:
                    pb = sub.pb
                    if self.b.subs.get(sub.name) is not sub or not pb.bigquery_config.table or pb.detached:
                        clean = True
                        break
                    cfg = type(pb.bigquery_config)()
                    cfg.CopyFrom(pb.bigquery_config)
                    track: dict[int, int] = {}
                    sub.take(self.batch_rows, pb.ack_deadline_seconds, MAX_BATCH_BYTES, track)
                    if not track and pending is None:
                        sub.cond.wait(IDLE_WAIT_S)
                        continue
                    t = sub.topic
                    blobs = t.blobs(list(track))
                batch: _Batch | None = None
                if track:
                    where = bigquery_table(cfg.table)
                    if target is None or (target.project, target.dataset, target.table) != where:
                        target = _Target(*where)
                    batch = self._prepare(sub, cfg, target, reader, list(track.items()), blobs)
                ok = batch is not None or not track
                if pending is not None:
                    ok = pending.result() and ok
                    pending = None
                if ok and batch is not None:
                    assert target is not None
                    pending = sender.submit(self._send, sub, cfg, target, writer, batch)
                    sent_at = time.monotonic()
                elif batch is not None:  # the write in flight failed as a whole: this one waits too
                    with self.b.lock:
                        sub.give_back(batch.leases + batch.refused)
                pause = 0.0 if ok else min(MAX_PAUSE_S, pause * 2 or MIN_PAUSE_S)
                if pause:
                    self.stopping.wait(pause)
        except Exception:
            log.exception("bigquery subscription loop failed", extra={"fields": {"subscription": sub.name}})
        finally:
            sender.shutdown(wait=False, cancel_futures=True)
            reader.close()
            with self.b.lock:
                if self.threads.get(sub.uid) is threading.current_thread():
                    del self.threads[sub.uid]
                pb = sub.pb  # made a BigQuery subscription again while this loop was ending: start a new one
                again = clean and self.b.subs.get(sub.name) is sub and pb.bigquery_config.table and not pb.detached
            if again:
                self.watch(sub)

    def _failed(self, sub: SubState, cfg: Any, target: _Target, leases: list[tuple[int, int]], exc: Exception) -> None:
        """A write failed as a whole: the batch back untried, the state as the real service reports it."""
        target.read_at = float("-inf")  # read the schema again before the next try
        with self.b.lock:
            sub.give_back(leases)
            self.outcomes[sub.name]["failed_writes"] += 1
        if isinstance(exc, TableNotFound):
            self._set_state(sub, NOT_FOUND, f"table {cfg.table} does not exist")
        elif isinstance(exc, SchemaMismatch):
            self._set_state(sub, SCHEMA_MISMATCH, str(exc))
        elif time.monotonic() - self.warned.get(sub.uid, float("-inf")) >= WARN_EVERY_S:  # once a minute at most
            self.warned[sub.uid] = time.monotonic()
            log.warning(
                "bigquery unavailable; retrying",
                extra={"fields": {"subscription": sub.name, "url": self.url, "why": str(exc)}},
            )

    def _prepare(
        self,
        sub: SubState,
        cfg: Any,
        target: _Target,
        client: BigQueryClient,
        leases: list[tuple[int, int]],
        blobs: list[bytes],
    ) -> _Batch | None:
        """The batch's rows (the table's schema read first when stale); None when that read failed."""
        try:
            if time.monotonic() - target.read_at > SCHEMA_TTL_S:
                resource = client.get_table(target.project, target.dataset, target.table)
                fields = (resource.get("schema") or {}).get("fields") or []
                target.columns, target.names = check_schema(cfg, fields)
                target.read_at = time.monotonic()
        except (TableNotFound, SchemaMismatch, Unavailable) as exc:
            self._failed(sub, cfg, target, leases, exc)
            return None
        batch = _Batch()
        for lease, blob in zip(leases, blobs, strict=True):
            msg = PubsubMessage.FromString(blob)
            try:
                batch.rows.append({"insertId": msg.message_id, "json": to_row(sub.name, cfg, target, msg)})
                batch.leases.append(lease)
            except BadMessage:
                batch.refused.append(lease)
        return batch

    def _send(self, sub: SubState, cfg: Any, target: _Target, client: BigQueryClient, batch: _Batch) -> bool:
        """Write one batch (sender thread); False when the write failed as a whole (the batch is given back)."""
        try:
            errors = (
                client.insert_all(
                    target.project, target.dataset, target.table, batch.rows, ignore_unknown=cfg.drop_unknown_fields
                )
                if batch.rows
                else []
            )
        except (TableNotFound, Unavailable) as exc:
            self._failed(sub, cfg, target, batch.leases + batch.refused, exc)
            return False
        except Exception as exc:  # never leave a batch leased: it would wait for its ack deadline
            log.exception("bigquery write failed", extra={"fields": {"subscription": sub.name}})
            self._failed(sub, cfg, target, batch.leases + batch.refused, exc)
            return False
        leases = batch.leases
        bad = {int(e.get("index", -1)) for e in errors if _refusal(e)}
        retry = {int(e.get("index", -1)) for e in errors} - bad  # "stopped" rows: not written, not at fault
        refused = list(batch.refused)
        with self.b.lock:
            done = [lease for i, lease in enumerate(leases) if i not in bad and i not in retry]
            sub.ack(done)
            sub.give_back([leases[i] for i in sorted(retry) if 0 <= i < len(leases)])
            refused += [leases[i] for i in sorted(bad) if 0 <= i < len(leases)]
            for seq, gen in refused:
                sub.nack(seq, gen, push=True)
            self.outcomes[sub.name]["written"] += len(done)
            self.outcomes[sub.name]["refused"] += len(refused)
        if refused:
            log.debug("bigquery refused rows", extra={"fields": {"subscription": sub.name, "rows": len(refused)}})
        if done:
            self._set_state(sub, BQ_ACTIVE)
            if self.warned.pop(sub.uid, None) is not None:
                log.info("bigquery available again", extra={"fields": {"subscription": sub.name}})
        return True

    def close(self) -> None:
        self.stopping.set()
        with self.b.lock:
            threads = list(self.threads.values())
            for sub in self.b.subs.values():
                sub.cond.notify_all()
        end = time.monotonic() + 2.0  # a write in flight may take its whole timeout: unacked, it is redelivered
        for thread in threads:
            thread.join(timeout=max(0.0, end - time.monotonic()))


def _refusal(entry: dict[str, Any]) -> bool:
    """An insertErrors entry that refuses its row itself (not one merely "stopped" with the others)."""
    reasons = {str(e.get("reason", "")) for e in entry.get("errors") or [] if isinstance(e, dict)}
    return bool(reasons - {"stopped", ""})
