"""`hyp loadgen`: synthetic purchase events with labelled anomalies, to Pub/Sub, HTTP, Kafka or files."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import datetime

from loadgen.config import ANOMALY_KINDS, DEFAULT_ANOMALY_RATES, ConfigError, Drift, GeneratorConfig
from loadgen.sinks import SINKS, SinkError
from services.common.config import Flag

DEFAULT_RATE = 100.0
SIM_RATE = GeneratorConfig.model_fields["sim_rate"].default
# Sinks that write files (training sets, backfills): their events get the simulated clock unless --clock real.
FILE_SINKS = frozenset({"jsonl", "parquet"})
BATCH = {"pubsub": 5000, "parquet": 50_000, "jsonl": 20_000, "http": 100, "kafka": 1000}
log = logging.getLogger("loadgen")
# GeneratorConfig field -> the flag that sets it, for error messages
FLAGS = {"mix": "--mix", "anomaly_rates": "--anomaly-rate", "drift": "--drift", "n_users": "--users",
         "start": "--start", "sim_rate": "--sim-rate", "clock": "--clock", "run_id": "--run-id"}  # fmt: skip
# LoadgenSettings fields the flags set (flags over HYP_LOADGEN_*), for services.common.config.load
SETTING_FLAGS = (
    Flag("to", ("--to",)),
    Flag("rate", ("--rate",)),
    Flag("seed", ("--seed",)),
    Flag("users", ("--users",)),
    Flag("url", ("--url",)),
    Flag("out", ("--out",)),
    Flag("scenario", ("--scenario",)),
    Flag("kafka_bootstrap", ("--bootstrap",)),
    Flag("pubsub_emulator_host", ("--emulator-host",)),
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hyp loadgen",
        description="Generate GA4-style purchase events with labelled anomalies (labels in attributes only).",
        epilog=f"anomaly kinds: {', '.join(ANOMALY_KINDS)}. Without --count/--duration/--scenario it runs until "
        "SIGTERM or Ctrl-C. Prints a JSON report (sent, achieved_rate, max_lag_s, by_kind) at the end.",
    )
    p.add_argument("--to", choices=SINKS, help="destination (env HYP_LOADGEN_TO, default pubsub)")
    p.add_argument("--topic", help="Pub/Sub topic id or path, or Kafka topic (default hyp-pubsub-topic)")
    p.add_argument("--emulator-host", help="Pub/Sub emulator host:port (env PUBSUB_EMULATOR_HOST)")
    p.add_argument("--url", help="--to http: the proxy's URL, e.g. http://127.0.0.1:8082/json (env HYP_LOADGEN_URL)")
    p.add_argument("--bootstrap", help="--to kafka: bootstrap servers host:port[,...] (env HYP_KAFKA_BOOTSTRAP)")
    p.add_argument("--out", help="--to jsonl: file ('-' = stdout); --to parquet: warehouse folder")
    speed = p.add_mutually_exclusive_group()
    speed.add_argument(
        "--rate", type=float, help=f"events/s, open loop (env HYP_LOADGEN_RATE, default {DEFAULT_RATE:g})"
    )
    speed.add_argument("--max", action="store_true", help="as fast as possible")
    p.add_argument("--count", type=int, help="stop after this many events")
    p.add_argument("--duration", help="stop after this long (30, 30s, 5m, 1h)")
    p.add_argument("--seed", type=int, help="same seed, same events (env HYP_LOADGEN_SEED)")
    p.add_argument("--scenario", help="scenario YAML file or shipped name (steady, drift, spike)")
    p.add_argument("--mix", help="event shares, e.g. view_item=0.6,add_to_cart=0.25,purchase=0.15")
    p.add_argument("--anomaly-rate", action="append", default=[], metavar="KIND=RATE", help="share of purchases")
    p.add_argument("--drift", action="append", default=[], metavar="KEY=VALUE", help=f"{', '.join(Drift.model_fields)}")
    p.add_argument("--users", type=int, help="size of the user population (env HYP_LOADGEN_USERS)")
    p.add_argument(
        "--clock",
        choices=["real", "simulated"],
        help="timestamps: now, or simulated (default: simulated for --to jsonl/parquet, real otherwise)",
    )
    p.add_argument("--start", help="--clock simulated: first timestamp (ISO 8601, UTC; default 2026-11-01)")
    p.add_argument(
        "--sim-rate",
        type=float,
        default=None,
        help=f"--clock simulated: events per simulated second (default {SIM_RATE:g}, Poisson arrivals)",
    )
    p.add_argument("--run-id", help="run_id attribute (default: random)")
    p.add_argument("--batch", type=int, help="events per send call")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="progress bar (tty)")
    p.add_argument("--list-scenarios", action="store_true", help="list the shipped scenarios and exit")
    return p


def _pairs(text: str, flag: str) -> dict[str, float]:
    out = {}
    for part in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{flag}: expected KEY=VALUE, got {part!r}")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"{flag}: {key.strip()}: not a number: {value!r}") from None
    return out


def _positive(value: float | int | None, flag: str) -> None:
    if value is not None and not value > 0:
        raise ConfigError(f"{flag}: must be > 0, got {value}")


def build(args: argparse.Namespace):
    """Validate options into (generator, sink, phases, run options); ConfigError on bad input."""
    from loadgen.generator import EventGenerator
    from loadgen.runner import RunPhase
    from loadgen.scenario import load, parse_duration
    from loadgen.settings import LoadgenSettings
    from services.common.config import ConfigError as SettingError
    from services.common.config import load as load_settings
    from services.common.config import values

    for value, flag in (
        (args.rate, "--rate"),
        (args.count, "--count"),
        (args.users, "--users"),
        (args.batch, "--batch"),
    ):
        _positive(value, flag)
    try:  # flags over the environment, checked together
        s = load_settings(LoadgenSettings, values(args, SETTING_FLAGS), SETTING_FLAGS)
    except SettingError as exc:
        raise ConfigError(str(exc)) from None
    to = args.to or s.to
    if to not in SINKS:
        raise ConfigError(f"HYP_LOADGEN_TO: expected one of {', '.join(SINKS)}, got {to!r}")
    rate = None if args.max else (args.rate if args.rate is not None else s.rate)
    try:
        duration = parse_duration(args.duration) if args.duration is not None else None
    except ValueError as exc:
        raise ConfigError(f"--duration: {exc}") from None
    try:
        start = datetime.fromisoformat(args.start) if args.start else None
    except ValueError:
        raise ConfigError(f"--start: not an ISO 8601 date-time: {args.start!r}") from None
    clock = args.clock or ("simulated" if to in FILE_SINKS else "real")
    fields: dict[str, object] = {"n_users": args.users or s.users, "clock": clock, "run_id": args.run_id or ""}
    if start:
        fields["start"] = start
    if args.sim_rate is not None:
        fields["sim_rate"] = args.sim_rate
    if args.mix:
        fields["mix"] = _pairs(args.mix, "--mix")
    if args.anomaly_rate:
        fields["anomaly_rates"] = {**DEFAULT_ANOMALY_RATES, **_pairs(",".join(args.anomaly_rate), "--anomaly-rate")}
    if args.drift:
        fields["drift"] = _pairs(",".join(args.drift), "--drift")
    try:
        base = GeneratorConfig.build(**fields)
    except ConfigError as exc:
        field, _, rest = str(exc).partition(".") if str(exc).split(":")[0].count(".") else str(exc).partition(":")
        flag = FLAGS.get(field.strip(), field)
        raise ConfigError(f"{flag}{'.' if _ == '.' else ':'}{rest}") from None
    seed = args.seed if args.seed is not None else s.seed
    scenario_name = args.scenario or s.scenario
    if scenario_name:
        scenario = load(scenario_name, base)
        seed = seed if seed is not None else scenario.seed
        phases, previous = [], base.drift
        for phase in scenario.phases:
            config = phase.config(base)
            phases.append(
                RunPhase(config, None if args.max else phase.rate, phase.count, phase.duration,
                         previous if phase.ramp else None, phase.name)
            )  # fmt: skip
            previous = config.drift
    else:
        phases = [RunPhase(base, None if args.max else (rate or DEFAULT_RATE), name="run")]
    generator = EventGenerator(seed, base)
    sink = make_sink(to, args, s, base.n_users, generator.run_id)
    progress = args.progress if args.progress is not None else sys.stderr.isatty()
    return generator, sink, phases, {"count": args.count, "duration": duration, "progress": progress,
                                      "max_batch": args.batch or BATCH[to]}  # fmt: skip


def make_sink(to: str, args: argparse.Namespace, s, n_users: int, run_id: str):
    if to == "pubsub":
        from loadgen.sinks.pubsub import PubSubSink

        topic = args.topic or s.topic
        path = topic if topic.startswith("projects/") else s.topic_path(topic)
        host = args.emulator_host if args.emulator_host is not None else s.pubsub_emulator_host
        return PubSubSink(path, host or None, n_users, run_id)
    if to == "http":
        from loadgen.sinks.http import HttpSink

        url = args.url or s.url
        if not url:
            raise ConfigError("--url: required with --to http (e.g. http://127.0.0.1:8082/json)")
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"--url: expected an http:// or https:// URL, got {url!r}")
        return HttpSink(url, n_users, run_id)
    if to == "kafka":
        from loadgen.sinks.kafka import KafkaSink

        bootstrap = args.bootstrap or s.kafka_bootstrap
        if not bootstrap:
            raise ConfigError("--bootstrap: required with --to kafka (or set HYP_KAFKA_BOOTSTRAP)")
        return KafkaSink(bootstrap, args.topic or s.kafka_topic, n_users, run_id)
    if to == "jsonl":
        from loadgen.sinks.jsonl import JsonlSink

        out = args.out or s.out
        if not out:
            raise ConfigError("--out: required with --to jsonl (a file, or - for stdout)")
        return JsonlSink(out, n_users, run_id)
    from loadgen.sinks.parquet import ParquetSink

    return ParquetSink(args.out or s.out or s.warehouse_dir, n_users, run_id)


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.list_scenarios:
        from loadgen.scenario import SCENARIO_DIR, load

        for path in sorted(SCENARIO_DIR.glob("*.yaml")):
            print(f"{path.stem}: {load(str(path)).description.strip()}")
        return 0
    from loadgen.runner import run

    try:
        generator, sink, phases, options = build(args)
    except (ConfigError, SinkError) as exc:
        print(f"hyp loadgen: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        report = run(generator, sink, phases, stop=stop, **options)
    except SinkError as exc:
        print(f"hyp loadgen: {exc}", file=sys.stderr)
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print(json.dumps(report.as_dict()), file=sys.stdout if (args.to != "jsonl" or args.out != "-") else sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
