"""Write docker-compose.yml and .env from the stack definition: ``python -m services.stack.compose_gen``.

``--check`` exits 1 (naming the file) when a committed file differs from what the definition gives, which
is what the fast test asserts, so the compose file and ``hyp up`` cannot drift apart.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from services.stack import definition as d
from services.stack import profiles

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = "docker-compose.yml"
ENV_FILE = ".env"
GPU_FILE = "docker-compose.gpu.yml"
DATA = "/data"
USER = "10001:10001"

HEADER = """\
# GENERATED from services/stack/definition.py by `python -m services.stack.compose_gen`: edit the definition,
# not this file (tests/services/stack/test_compose_gen.py fails when they differ).
# `docker compose up --wait` builds the images (compose/Dockerfile), starts the core stack and returns once
# every long-running service is healthy. Profiles: flink, google-emulator, postgres (docs/stack.md).
"""

GPU_HEADER = """\
# GENERATED from services/stack/definition.py by `python -m services.stack.compose_gen`: only the GPU delta.
# docker compose -f docker-compose.yml -f docker-compose.gpu.yml up --wait
# The TensorFlow services are rebuilt with the `tf` extra on a CUDA base image (build argument
# CUDA_BASE_IMAGE) and reserve the host's NVIDIA GPUs (needs the NVIDIA Container Toolkit).
"""

ENV_HEADER = """\
# GENERATED from services/stack/definition.py (TUNABLES) by `python -m services.stack.compose_gen`.
# Defaults for docker compose; the same names configure `hyp up` and every service's settings.
"""


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


def build_section(image: d.Image) -> dict[str, Any]:
    return {
        "context": ".",
        "dockerfile": "compose/Dockerfile",
        "args": {"BASE_IMAGE": "${BASE_IMAGE:-" + d.TUNABLES["BASE_IMAGE"] + "}", "EXTRAS": image.extras},
    }


# Docker counts a probe that has not finished within the timeout as failed. The probe is a Python process in the
# container; on a loaded 2-core machine, in a container at a background CPU share, starting it took over 5 s and
# the orchestrator never turned healthy (docs/benchmarks.md, "pytest-hyp-local fixtures and images"). A longer
# timeout only delays the verdict on a probe that hangs; a refused connection still fails at once.
HEALTH_TIMEOUT_S = 20


def healthcheck(health: d.Health) -> dict[str, Any]:
    return {
        "test": ["CMD", "python", "-m", "services.stack.healthcheck", *health.probe_args("127.0.0.1")],
        "interval": _duration(health.interval_s),
        "timeout": _duration(HEALTH_TIMEOUT_S),
        "retries": health.retries,
        "start_period": _duration(health.start_period_s),
    }


def compose_service(s: d.Service, by_name: dict[str, d.Service]) -> dict[str, Any]:
    image = d.IMAGES[s.image]
    out: dict[str, Any] = {
        "image": image.tag,
        "build": build_section(image),
        "pull_policy": "build",
        "init": True,
        "user": USER,
        "command": d.command(s, "compose", data=DATA),
        "environment": d.environment(s, "compose", data=DATA),
    }
    if s.ports:
        out["ports"] = [f"127.0.0.1:{p}:{p}" for p in s.ports]
    if s.replicas_env:
        replicate(out, s)
    if s.health:
        out["healthcheck"] = healthcheck(s.health)
    if s.depends_on:
        out["depends_on"] = {
            dep: {"condition": "service_completed_successfully" if by_name[dep].oneshot else "service_healthy"}
            for dep in s.depends_on
        }
    if s.volumes:
        out["volumes"] = [f"{vol}:{path}" for vol, path in s.volumes.items()]
    out["restart"] = "no" if s.oneshot else RESTART
    out["stop_grace_period"] = _duration(s.stop_grace_s)
    if s.memory:
        out["mem_limit"] = s.memory
    if s.background:
        out["cpu_shares"] = BACKGROUND_CPU_SHARES
    return out


def replicate(out: dict[str, Any], s: d.Service) -> None:
    """Replicas of ``s`` (the detector's workers): ``${HYP_DETECTOR_WORKERS:-1}`` of them, each labelling its
    metrics with its container's host name, its ports published on the first free of a range (one each)."""
    out["deploy"] = {"replicas": "${" + f"{s.replicas_env}:-{d.TUNABLES[s.replicas_env or '']}" + "}"}
    out["environment"]["HYP_DETECTOR_WORKER_ID"] = "hostname"  # services/detector/metrics.py worker_label
    last = d.MAX_DETECTOR_WORKERS - 1
    out["ports"] = [f"127.0.0.1:{p}-{p + last}:{p}" for p in s.ports]


def logging_section() -> dict[str, Any]:
    """Every container's output rotated by Docker (json-file driver), so no service's logs grow unbounded."""
    return {"driver": "json-file", "options": {"max-size": d.LOG_MAX_SIZE, "max-file": str(d.LOG_MAX_FILE)}}


# Give-up, as `hyp up`'s supervision does (HYP_UP_RESTART_MAX): a long-running service that exits with an error
# is started again (Docker's backoff: 100 ms doubling), but after RESTART_MAX failures in a row it stays down and
# `docker compose ps` reports it as exited with its code, instead of restarting forever. Unlike `hyp up` there is
# no time window (Docker counts failures in a row) and a daemon restart does not restart an on-failure container.
RESTART_MAX = 5
RESTART = f"on-failure:{RESTART_MAX}"

BACKGROUND_CPU_SHARES = 256  # of the default 1024: a background service gets a quarter share when cores are busy


def compose_document() -> dict[str, Any]:
    by_name = {s.name: s for s in d.SERVICES}
    services = {s.name: compose_service(s, by_name) for s in d.SERVICES}
    services.update(profiles.services(by_name, compose_service))
    for body in services.values():
        body["logging"] = logging_section()
        if body.get("restart", "no") != "no":  # the profiles' services too: one give-up policy for all
            body["restart"] = RESTART
    volumes = sorted({v for s in d.SERVICES for v in s.volumes} | profiles.volumes())
    return {"name": "hyp-local", "services": services, "volumes": {v: {} for v in volumes}}


def render_compose() -> str:
    body = yaml.safe_dump(compose_document(), sort_keys=False, default_flow_style=False, width=120)
    return HEADER + body


def nvidia_gpus() -> dict[str, Any]:
    return {"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}


def gpu_document() -> dict[str, Any]:
    image = d.IMAGES[d.GPU_IMAGE]
    services: dict[str, Any] = {}
    for s in d.SERVICES:
        if not s.gpu:
            continue
        build = build_section(image)
        build["args"]["BASE_IMAGE"] = "${CUDA_BASE_IMAGE:-" + d.CUDA_BASE_IMAGE + "}"
        services[s.name] = {
            "image": image.tag,
            "build": build,
            "environment": {"TF_FORCE_GPU_ALLOW_GROWTH": "true", "NVIDIA_VISIBLE_DEVICES": "all"},
            "mem_limit": d.GPU_MEMORY,
            "deploy": {"resources": {"reservations": {"devices": [nvidia_gpus()]}}},
        }
    return {"services": services}


def render_gpu() -> str:
    return GPU_HEADER + yaml.safe_dump(gpu_document(), sort_keys=False, default_flow_style=False, width=120)


def render_env() -> str:
    return ENV_HEADER + "".join(f"{k}={v}\n" for k, v in d.TUNABLES.items())


def outputs() -> dict[str, str]:
    return {COMPOSE_FILE: render_compose(), GPU_FILE: render_gpu(), ENV_FILE: render_env()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.stack.compose_gen", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a file differs")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root (default: this checkout)")
    args = parser.parse_args(argv)
    stale = []
    for name, text in outputs().items():
        path = args.root / name
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    if stale:
        print(f"out of date: {', '.join(stale)}; run `python -m services.stack.compose_gen`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
