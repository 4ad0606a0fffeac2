"""Models and the orchestrator, through their public APIs: the champion alias set or rolled back with
MLflow's REST API (``registered-models/alias``), orchestrator runs started with parameters and read
step by step (``POST /runs``, ``GET /runs/{id}``), and the drift statistics its sensor last computed
(``GET /health``), next to the reference and recent distributions read through the BigQuery API."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from services.console.deps import CollectorDep, HttpDep, SettingsDep
from services.console.upstream import ActionError, call, view

router = APIRouter(prefix="/api")

FEATURES = ("tax", "shipping", "value")  # the orchestrator's drift features (ecommerce.purchase.*)
DRIFT_BINS = 20
RECENT_ROWS = 500  # the orchestrator's defaults (HYP_ORCH_DRIFT_RECENT_ROWS, _REFERENCE_ROWS)
REFERENCE_ROWS = 2000


class Champion(BaseModel):
    version: str = Field(pattern=r"^[1-9][0-9]{0,8}$")


class RunRequest(BaseModel):
    """What the page may pass to the orchestrator's ``POST /runs`` (it validates them again)."""

    model_config = ConfigDict(extra="forbid")
    candidates: list[str] | None = Field(None, min_length=1, max_length=10)
    window_minutes: float | None = Field(None, gt=0)
    max_rows: int | None = Field(None, gt=0)
    holdout_fraction: float | None = Field(None, gt=0, lt=1)
    promote: bool = True
    reason: str | None = Field("started from the console", max_length=500)


def _registry(settings: Any) -> str:
    return settings.mlflow_tracking_uri.rstrip("/") + "/api/2.0/mlflow"


async def _set_champion(settings: Any, http: Any, version: str) -> None:
    body = {"name": settings.model_name, "alias": settings.model_alias, "version": version}
    await call(http, "MLflow set alias", "POST", _registry(settings) + "/registered-models/alias", json=body)


async def _current(settings: Any, http: Any) -> tuple[str | None, list[str]]:
    """(the champion's version, every version newest first), read from MLflow."""
    reg = await call(
        http,
        "MLflow registered-models/get",
        "GET",
        _registry(settings) + "/registered-models/get",
        params={"name": settings.model_name},
    )
    model = reg.get("registered_model", {})
    champion = next(
        (str(a["version"]) for a in model.get("aliases", []) if a.get("alias") == settings.model_alias), None
    )
    found = await call(
        http,
        "MLflow model-versions/search",
        "GET",
        _registry(settings) + "/model-versions/search",
        params={"filter": f"name='{settings.model_name}'", "max_results": 200},
    )
    versions = sorted((str(v["version"]) for v in found.get("model_versions", [])), key=int, reverse=True)
    return champion, versions


@router.post("/models/champion")
async def promote(body: Champion, settings: SettingsDep, http: HttpDep, collector: CollectorDep) -> dict[str, Any]:
    """Point the champion alias at ``version`` (the detector and the endpoint follow the alias)."""
    before, versions = await _current(settings, http)
    if body.version not in versions:
        raise ActionError(404, f"promote: {settings.model_name} has no version {body.version}")
    await _set_champion(settings, http, body.version)
    collector.models_changed()
    return {"champion": body.version, "before": before}


@router.post("/models/rollback")
async def rollback(settings: SettingsDep, http: HttpDep, collector: CollectorDep) -> dict[str, Any]:
    """Back to the champion before this one: the last other version the console saw as champion, else the
    newest version older than the current champion (MLflow keeps only the current alias)."""
    current, versions = await _current(settings, http)
    if current is None:
        raise ActionError(409, f"roll back: {settings.model_name} has no @{settings.model_alias}")
    seen = [h["version"] for h in collector.champion_history if h["version"] != current and h["version"] in versions]
    older = [v for v in versions if int(v) < int(current)]
    target = seen[-1] if seen else (older[0] if older else None)
    if target is None:
        raise ActionError(409, f"roll back: no version before v{current} to go back to")
    await _set_champion(settings, http, target)
    collector.models_changed()
    return {"champion": target, "before": current}


@router.post("/orchestrator/runs")
async def start_run(body: RunRequest, settings: SettingsDep, http: HttpDep) -> dict[str, Any]:
    """Start an orchestrator run (or join the one in progress, as its API does)."""
    params = body.model_dump(exclude_none=True)
    url = settings.orchestrator_url.rstrip("/") + "/runs"
    return await call(http, "orchestrator POST /runs", "POST", url, json=params)


@router.get("/orchestrator/runs/{run_id}")
async def get_run(run_id: str, settings: SettingsDep, http: HttpDep) -> dict[str, Any]:
    if not run_id.isalnum() or len(run_id) > 64:
        raise ActionError(400, f"run id {run_id!r}: letters and digits only")
    url = settings.orchestrator_url.rstrip("/") + f"/runs/{run_id}"
    return await call(http, "orchestrator GET /runs/{id}", "GET", url)


@router.get("/models/drift")
async def drift(settings: SettingsDep, http: HttpDep, collector: CollectorDep) -> dict[str, Any]:
    """The orchestrator's last drift reading (PSI, KS per feature) and, per feature, the reference (the
    champion's training window, from its ``hyp.window_*`` tags; else the oldest purchases, as the
    orchestrator does) and the newest purchases as histograms over the same bins."""
    health = await view(
        call(http, "orchestrator GET /health", "GET", settings.orchestrator_url.rstrip("/") + "/health"), {}
    )
    reading = (health.get("sensors") or {}).get("drift")
    champion = next(
        (
            v
            for v in collector.snapshot.get("models", {}).get("versions", [])
            if settings.model_alias in v.get("aliases", [])
        ),
        None,
    )
    tags = (champion or {}).get("tags", {})
    start, end = tags.get("hyp.window_start"), tags.get("hyp.window_end")
    distributions = await view(_distributions(settings, http, start, end), {"features": {}})
    return {
        "statistics": reading,
        "orchestrator": health.get("unavailable"),
        "reference": f"champion v{champion['version']} training window {start} .. {end}"
        if champion and start and end
        else f"oldest {REFERENCE_ROWS} purchases",
        **distributions,
    }


async def _distributions(settings: Any, http: Any, start: str | None, end: str | None) -> dict[str, Any]:
    import numpy as np

    from services.console.routes.warehouse import query_rows

    table = f"`{settings.project}.ecommerce_sink.cloud_run`"
    cols = ", ".join(f"CAST(ecommerce.purchase.{f} AS FLOAT64) AS {f}" for f in FEATURES)
    where = "event = 'purchase'"
    if start and end:
        ref_where = f"{where} AND event_datetime BETWEEN '{_literal(start)}' AND '{_literal(end)}'"
        ref_order = "DESC"
    else:
        ref_where, ref_order = where, "ASC"
    reference, recent = await asyncio.gather(
        query_rows(
            settings,
            http,
            f"SELECT {cols} FROM {table} WHERE {ref_where} ORDER BY event_datetime {ref_order} LIMIT {REFERENCE_ROWS}",
        ),
        query_rows(
            settings, http, f"SELECT {cols} FROM {table} WHERE {where} ORDER BY event_datetime DESC LIMIT {RECENT_ROWS}"
        ),
    )
    out: dict[str, Any] = {}
    for i, feature in enumerate(FEATURES):
        ref = np.array([float(r[i]) for r in reference if r[i] is not None])
        rec = np.array([float(r[i]) for r in recent if r[i] is not None])
        both = np.concatenate([ref, rec])
        if not len(both):
            out[feature] = {"edges": [], "reference": [], "recent": []}
            continue
        # bins over the middle 99 % of both: one injected 100x value would squash every other bar into one;
        # what lies outside is counted in the first or last bin
        lo, hi = np.percentile(both, [0.5, 99.5])
        log = bool(lo > 0 and hi / lo > 50)  # prices span decades: equal bins of log10 show the shape
        if log:
            edges = np.geomspace(lo, hi, DRIFT_BINS + 1)
        else:
            edges = np.histogram_bin_edges(both, bins=DRIFT_BINS, range=(lo, hi) if hi > lo else None)
        out[feature] = {
            "log": log,
            "edges": edges.tolist(),
            "reference": np.histogram(np.clip(ref, edges[0], edges[-1]), edges)[0].tolist(),
            "recent": np.histogram(np.clip(rec, edges[0], edges[-1]), edges)[0].tolist(),
        }
    return {"features": out, "rows": {"reference": len(reference), "recent": len(recent)}}


def _literal(value: str) -> str:
    """A timestamp from a tag, safe inside a SQL string literal."""
    if not all(c.isdigit() or c in " -:.T+Z" for c in value):
        raise ActionError(400, f"champion window tag {value!r} is not a timestamp")
    return value
