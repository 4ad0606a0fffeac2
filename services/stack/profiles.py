"""Optional compose profiles: flink, google-emulator, postgres.

Services that run our own code derive from the core definition (same image, same settings, a different
command or variables); the third-party images (Flink, Kafka, the Beam job server, PostgreSQL, Google's
emulator) are pinned here. None of these images can be pulled on the reference machine: the flink and
google-emulator profiles are validated with ``docker compose --profile NAME config`` only (docs/stack.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from services.stack import definition as d
from services.stack import flink

POSTGRES_IMAGE = "postgres:16.4-bookworm"
GOOGLE_EMULATOR_IMAGE = "gcr.io/google.com/cloudsdktool/google-cloud-cli:497.0.0-emulators"

POSTGRES_URI = "postgresql://mlflow:${POSTGRES_PASSWORD:-mlflow}@postgres:5432/mlflow"
FLINK_REST_PORT = 8088  # published as 8088 so it does not collide with the processor's 8081

ComposeService = Callable[[d.Service, dict[str, d.Service]], dict[str, Any]]


def _third_party(profile: str, image: str, **fields: Any) -> dict[str, Any]:
    return {"image": image, "profiles": [profile], "init": True, "restart": "unless-stopped", **fields}


def _ours(
    s: d.Service, profile: str, by_name: dict[str, d.Service], compose_service: ComposeService, **extra: Any
) -> dict[str, Any]:
    out = compose_service(s, by_name)
    out["profiles"] = [profile]
    depends = extra.pop("depends_on", None)
    if depends:
        out["depends_on"] = {**out.get("depends_on", {}), **depends}
    out.update(extra)
    return out


def services(by_name: dict[str, d.Service], compose_service: ComposeService) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    out.update(_postgres(by_name, compose_service))
    out.update(_google_emulator())
    out.update(_flink(by_name, compose_service))
    return out


def volumes() -> set[str]:
    return {"postgres-data"}


def _postgres(by_name: dict[str, d.Service], compose_service: ComposeService) -> dict[str, dict[str, Any]]:
    mlflow = by_name["mlflow"]
    # MLflow on PostgreSQL: the same server command with a PostgreSQL backend store, started in place of
    # `mlflow` by `docker compose --profile postgres up mlflow-postgres ...` (docs/stack.md).
    pg_mlflow = replace(
        mlflow,
        name="mlflow-postgres",
        command=(*mlflow.command, "--backend-store-uri", POSTGRES_URI),
        image="app-postgres",
        ports=(),
        urls={},
    )
    return {
        "postgres": _third_party(
            "postgres",
            POSTGRES_IMAGE,
            environment={
                "POSTGRES_USER": "mlflow",
                "POSTGRES_PASSWORD": "${POSTGRES_PASSWORD:-mlflow}",
                "POSTGRES_DB": "mlflow",
            },
            volumes=["postgres-data:/var/lib/postgresql/data"],
            healthcheck={
                "test": ["CMD", "pg_isready", "-U", "mlflow", "-d", "mlflow"],
                "interval": "2s",
                "timeout": "5s",
                "retries": 30,
            },
        ),
        "mlflow-postgres": _ours(
            pg_mlflow,
            "postgres",
            by_name,
            compose_service,
            depends_on={"postgres": {"condition": "service_healthy"}},
            ports=[f"127.0.0.1:{d.MLFLOW_PORT + 1}:{d.MLFLOW_PORT}"],
        ),
    }


def _google_emulator() -> dict[str, dict[str, Any]]:
    # Google's own emulator (JVM, starts empty, keeps nothing): point the stack at it with
    # PUBSUB_EMULATOR_HOST=pubsub-google:8085 in a compose override; it starts empty (docs/stack.md).
    return {
        "pubsub-google": _third_party(
            "google-emulator",
            GOOGLE_EMULATOR_IMAGE,
            command=[
                "gcloud",
                "beta",
                "emulators",
                "pubsub",
                "start",
                "--project=${HYP_PROJECT:-hyp-local}",
                f"--host-port=0.0.0.0:{d.PUBSUB_PORT}",
            ],
            ports=[f"127.0.0.1:{d.PUBSUB_PORT + 10}:{d.PUBSUB_PORT}"],
            healthcheck={
                "test": ["CMD", "curl", "-fsS", f"http://127.0.0.1:{d.PUBSUB_PORT}/"],
                "interval": "2s",
                "timeout": "5s",
                "retries": 60,
            },
        ),
    }


def _flink(by_name: dict[str, d.Service], compose_service: ComposeService) -> dict[str, dict[str, Any]]:
    """services/stack/flink.py's definition: stock images as they are, ours derived from the core services
    (the SDK harness and the detector from the detector, so the pipeline's steps get its settings and volumes)."""
    out: dict[str, dict[str, Any]] = {}
    for name, fields in flink.third_party_services().items():
        fields = dict(fields)
        out[name] = _third_party(flink.PROFILE, fields.pop("image"), **fields)
    out["flink-jobmanager"]["ports"] = [f"127.0.0.1:{FLINK_REST_PORT}:8081"]
    bases = {"beam-sdk-harness": "detector", "detector-flink": "detector", "loadgen-kafka": "loadgen"}
    for name, fields in flink.app_services(d.DETECTOR_METRICS_PORT).items():
        fields = dict(fields)
        base = by_name[bases[name]]
        command = tuple(fields.pop("command", base.command))
        service = replace(base, name=name, command=command, ports=(), urls={}, replicas_env=None)
        rendered = _ours(service, flink.PROFILE, by_name, compose_service, **fields)
        if "network_mode" in rendered:  # a sidecar in another service's network: no ports, names or health of its own
            for key in ("ports", "hostname", "networks", "healthcheck"):
                rendered.pop(key, None)
        out[name] = rendered
    return out
