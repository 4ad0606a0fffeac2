"""The model registry, as consumers and the trainer use it (MLflow's, standing in for Vertex AI's).

Consumers (the Beam detector, the endpoint) call:

- :func:`load_champion` -> ``(model, version)``: resolves ``@champion`` to a version first and
  loads that version, so the version reported is the one that scores;
- :func:`champion_version` -> the version the alias points at, or None (one cheap REST call);
- :class:`ChampionWatcher` -> ``poll()`` returns the new version when the alias moved (hot reload).

Every alias move goes through :func:`set_champion`, which appends an event to the registered
model's history (tags ``hyp.history.NNNNNN``); :func:`rollback` replays that history.
"""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

MODEL_NAME = "purchase-anomaly"
ALIAS = "champion"
HISTORY_PREFIX = "hyp.history."


class RegistryError(RuntimeError):
    """A registry operation that cannot be done (no champion, unknown version, nothing to roll back to)."""


def client(tracking_uri: str | None = None) -> MlflowClient:
    """A client bound to one tracking server (registry on the same server), no global state."""
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


@contextlib.contextmanager
def use_tracking_uri(uri: str | None) -> Iterator[None]:
    """Point mlflow's fluent API (runs, log_model) at ``uri`` for a block, then restore it."""
    import mlflow

    if uri is None:
        yield
        return
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(previous)


def _not_found(exc: MlflowException) -> bool:
    return exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND")


def champion_version(c: MlflowClient, name: str = MODEL_NAME, alias: str = ALIAS) -> str | None:
    """The version ``@alias`` points at, or None when the model or the alias does not exist."""
    try:
        return str(c.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if _not_found(exc):
            return None
        raise


def load_version(tracking_uri: str | None, name: str, version: str | int) -> Any:
    """Load one registered version as a pyfunc model (downloaded through the tracking server)."""
    import mlflow

    c = client(tracking_uri)
    source = c.get_model_version_download_uri(name, str(version))
    dst = tempfile.mkdtemp(prefix=f"hyp-{name}-v{version}-")
    local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=dst, tracking_uri=tracking_uri)
    return mlflow.pyfunc.load_model(local)


def load_champion(tracking_uri: str | None = None, name: str = MODEL_NAME, alias: str = ALIAS) -> tuple[Any, str]:
    """``models:/name@alias`` -> (pyfunc model, version); RegistryError when there is no champion yet."""
    version = champion_version(client(tracking_uri), name, alias)
    if version is None:
        raise RegistryError(f"no {name}@{alias} yet: run `hyp models ensure-champion` (or `hyp train --promote`)")
    return load_version(tracking_uri, name, version), version


def unwrap(pyfunc_model: Any) -> Any:
    """The AnomalyModel inside a loaded pyfunc (for direct, schema-free vectorised scoring)."""
    return pyfunc_model.unwrap_python_model()


class ChampionWatcher:
    """Cheap poll for hot reload: ``poll()`` returns the new version when ``@alias`` moved, else None.

    Transient registry errors are logged and read as "no change", so a consumer keeps scoring
    with what it has while MLflow restarts.
    """

    def __init__(self, tracking_uri: str | None = None, name: str = MODEL_NAME, alias: str = ALIAS):
        self._client = client(tracking_uri)
        self.name, self.alias = name, alias
        self.current: str | None = None

    def poll(self) -> str | None:
        try:
            version = champion_version(self._client, self.name, self.alias)
        except Exception as exc:  # the registry being down must not kill a consumer
            log.warning("champion poll failed: %s", exc)
            return None
        if version is not None and version != self.current:
            self.current = version
            return version
        return None


@dataclass(frozen=True)
class HistoryEvent:
    seq: int
    ts: float
    action: str  # promote | rollback | bootstrap | manual
    version: str
    previous: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "action": self.action,
            "version": self.version,
            "previous": self.previous,
            "reason": self.reason,
        }


def history(c: MlflowClient, name: str = MODEL_NAME) -> list[HistoryEvent]:
    """Every alias move of the model, oldest first."""
    try:
        tags = c.get_registered_model(name).tags
    except MlflowException as exc:
        if _not_found(exc):
            return []
        raise
    events = []
    for key, value in tags.items():
        if key.startswith(HISTORY_PREFIX):
            d = json.loads(value)
            events.append(HistoryEvent(d["seq"], d["ts"], d["action"], d["version"], d.get("previous"), d["reason"]))
    return sorted(events, key=lambda e: e.seq)


def set_champion(
    c: MlflowClient, version: str | int, *, action: str, reason: str, name: str = MODEL_NAME, alias: str = ALIAS
) -> HistoryEvent:
    """Move ``@alias`` to ``version`` and record why; RegistryError for an unknown version."""
    version = str(version)
    try:
        c.get_model_version(name, version)
    except MlflowException as exc:
        if _not_found(exc):
            raise RegistryError(f"{name} has no version {version}") from None
        raise
    previous = champion_version(c, name, alias)
    past = history(c, name)
    event = HistoryEvent(len(past) + 1, time.time(), action, version, previous, reason)
    c.set_registered_model_alias(name, alias, version)
    c.set_registered_model_tag(name, f"{HISTORY_PREFIX}{event.seq:06d}", json.dumps(event.as_dict()))
    c.set_model_version_tag(name, version, "hyp.champion_since", str(event.ts))
    return event


def champion_stack(events: list[HistoryEvent]) -> list[str]:
    """Replay the history: promotions push a version, rollbacks pop back to the one before."""
    stack: list[str] = []
    for e in events:
        if e.action == "rollback":
            while stack and stack[-1] != e.version:
                stack.pop()
            if not stack:
                stack.append(e.version)
        elif not stack or stack[-1] != e.version:
            stack.append(e.version)
    return stack


def rollback(
    c: MlflowClient, name: str = MODEL_NAME, alias: str = ALIAS, reason: str = "manual rollback"
) -> HistoryEvent:
    """Move ``@alias`` back to the champion before the current one; RegistryError when there is none."""
    stack = champion_stack(history(c, name))
    current = champion_version(c, name, alias)
    if current is None:
        raise RegistryError(f"{name}@{alias} is not set: nothing to roll back")
    if not stack or stack[-1] != current:  # the alias was moved outside hyp: start the stack from it
        stack.append(current)
    if len(stack) < 2:
        raise RegistryError(f"{name}@{alias} = v{current} has no earlier champion to roll back to")
    return set_champion(c, stack[-2], action="rollback", reason=reason, name=name, alias=alias)


def gate(
    challenger: dict[str, float], champion: dict[str, float] | None, metric: str, min_delta: float = 0.0
) -> tuple[bool, str]:
    """Champion/challenger: promote only when the challenger beats the champion on ``metric``."""
    if metric not in challenger:
        raise RegistryError(f"promotion metric {metric!r} was not computed (have: {', '.join(sorted(challenger))})")
    if champion is None:
        return True, f"no champion yet; challenger {metric}={challenger[metric]:.4f}"
    a, b = challenger[metric], champion.get(metric, float("-inf"))
    margin = f" {min_delta:+g}" if min_delta else ""  # a negative delta passes a challenger no better (tests, demos)
    if a > b + min_delta:
        return True, f"challenger {metric}={a:.4f} beats champion {metric}={b:.4f}{margin}"
    return False, f"challenger {metric}={a:.4f} does not beat champion {metric}={b:.4f} (+{min_delta})"
