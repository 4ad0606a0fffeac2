"""`hyp gcloud [alpha|beta] emulators pubsub start [--project=P] [--host-port=HOST:PORT] [--data-dir=DIR]`.

Runs ``hyp pubsub`` with what the gcloud command line asks for, so an image whose entry point is ``hyp``
accepts the command line testcontainers' ``PubSubContainer`` (and anything written for Google's emulator
image) passes. Flags as documented for ``gcloud beta emulators pubsub start``
(https://cloud.google.com/sdk/gcloud/reference/beta/emulators/pubsub/start): ``--host-port`` (gcloud's
default ``[::1]:8085``; here ``localhost:8085``), ``--data-dir``, and the gcloud-wide ``--project``; other
gcloud-wide flags (``--quiet``, ``--verbosity``, ...) are accepted and ignored. Unlike ``hyp pubsub``'s
default, no topology is loaded: the emulator starts empty, as Google's does. The REST side (health,
``/metrics``) listens on the gRPC port + 1.

Once serving it also prints gcloud's own start-up line (``[pubsub] INFO: Server started, listening on
PORT``), which waits written for Google's image look for (testcontainers-java waits for ``started``).
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from services.common.commands import COMMANDS
from services.common.config import Command, ConfigError, fail
from services.pubsub.settings import PubsubSettings

VERBS = ("emulators", "pubsub", "start")
TRACKS = ("alpha", "beta")
DEFAULT_HOST_PORT = "localhost:8085"
# gcloud-wide flags that take a value (``--flag VALUE`` form); accepted and ignored
_WIDE_WITH_VALUE = frozenset(
    {
        "--access-token-file",
        "--account",
        "--billing-project",
        "--configuration",
        "--flags-file",
        "--flatten",
        "--format",
        "--impersonate-service-account",
        "--trace-token",
        "--verbosity",
    }
)
_WIDE_SWITCHES = frozenset({"--quiet", "-q", "--log-http", "--user-output-enabled", "--no-user-output-enabled"})
SERVING = "pubsub emulator serving"  # hyp pubsub's start-up log message (services/pubsub/server.py)


class UsageError(ValueError):
    """A command line this shim does not map."""


@dataclass(frozen=True)
class PubsubStart:
    host: str
    port: int
    project: str | None = None
    data_dir: str | None = None

    def hyp_args(self) -> list[str]:
        """The ``hyp pubsub`` arguments that run this."""
        args = ["--host", self.host, "--port", str(self.port), "--topology", "none"]
        if self.project:
            args += ["--project", self.project]
        if self.data_dir:
            args += ["--data-dir", self.data_dir]
        return args


def split_host_port(value: str) -> tuple[str, int]:
    """``0.0.0.0:8432`` -> ("0.0.0.0", 8432); ``[::1]:8085`` -> ("::1", 8085); a bare port binds localhost."""
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "localhost", value
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UsageError(f"--host-port: expected HOST:PORT, got {value!r}")
    return host or "localhost", int(port)


def parse(argv: Sequence[str]) -> PubsubStart:
    """The gcloud command line (without ``gcloud`` itself) as a :class:`PubsubStart`."""
    words: list[str] = []
    flags: dict[str, str] = {}
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        i += 1
        if not item.startswith("-"):
            words.append(item)
            continue
        name, eq, value = item.partition("=")
        if name in _WIDE_SWITCHES:
            continue
        if name in {"--project", "--host-port", "--data-dir"} or name in _WIDE_WITH_VALUE:
            if not eq:
                if i >= len(items):
                    raise UsageError(f"{name} needs a value")
                value = items[i]
                i += 1
            flags[name] = value
            continue
        raise UsageError(f"unsupported flag {name} (hyp gcloud maps `emulators pubsub start` only)")
    if words and words[0] in TRACKS:
        words = words[1:]
    if tuple(words) != VERBS:
        raise UsageError(f"unsupported command `gcloud {' '.join(words)}` (hyp gcloud maps `emulators pubsub start`)")
    host, port = split_host_port(flags.get("--host-port", DEFAULT_HOST_PORT))
    return PubsubStart(host, port, flags.get("--project"), flags.get("--data-dir"))


class _StartedLine(logging.Handler):
    """Prints gcloud's start-up line when hyp pubsub logs that it serves."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == SERVING:
            grpc = str(getattr(record, "fields", {}).get("grpc", ""))
            print(f"[pubsub] INFO: Server started, listening on {grpc.rpartition(':')[2]}", flush=True)


def command() -> Command[PubsubSettings]:
    """``hyp pubsub``'s settings under this command's name: the mapped flags are validated (with the
    environment) before the emulator starts, and a bad value is one line naming ``hyp gcloud``."""
    cli = Command("gcloud", PubsubSettings)
    for field in ("host", "port", "topology", "project", "data_dir"):
        cli.flag(field)
    return cli


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help"}:
        print(__doc__)
        return 0
    try:
        start = parse(args)
    except UsageError as exc:
        return fail("gcloud", str(exc))
    cli = command()
    try:
        cli.parse(start.hyp_args())
    except ConfigError as exc:
        return cli.fail(exc)
    logging.getLogger("hyp.pubsub").addHandler(_StartedLine())
    pubsub = importlib.import_module(COMMANDS["pubsub"][0])
    return int(pubsub.main(start.hyp_args()) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
