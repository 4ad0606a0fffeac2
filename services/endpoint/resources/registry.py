"""Vertex AI's Model Registry as a view of the MLflow registry: one registry, two views.

A Vertex model is an MLflow registered model (its name is the model id), a Vertex model version is
an MLflow model version (same number), and a version alias is an MLflow alias. ``Model.upload``
registers a version whose source is the ``artifactUri`` and whose tags keep what MLflow has no field
for (the container spec); the display name and labels are tags of the registered model. So
``purchase-anomaly`` with its ``@champion`` is a Vertex model with version alias ``champion``, and an
uploaded model shows in the MLflow UI.

The default version (Vertex's ``default`` alias) is MLflow's alias ``default`` when set, else the
``champion`` version, else the latest version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from services.common import names
from services.endpoint.resources.errors import ApiError, invalid, not_found
from services.endpoint.resources.operations import new_id, rfc3339

TAG = "vertex."
DISPLAY_NAME = TAG + "display_name"
LABEL = TAG + "label."
CONTAINER = TAG + "container_spec"
ARTIFACT = TAG + "artifact_uri"
DEFAULT = "default"
MODEL_ID = re.compile(r"^[a-z_][a-z0-9_-]{0,62}$")
ALIAS = re.compile(r"^[a-z][a-zA-Z0-9-]{0,126}[a-z0-9]$")


@dataclass(frozen=True)
class Version:
    """One model version, as deploying needs it."""

    model_id: str
    version: str
    display_name: str
    image_uri: str  # "" for a model registered in MLflow without Vertex (served as an MLflow model)
    artifact_uri: str
    container: dict[str, Any] = field(default_factory=dict)  # Vertex's containerSpec, as uploaded


def _missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def split_name(name: str) -> tuple[str, str | None]:
    """``projects/p/locations/l/models/M@V`` (or ``M``, ``M@alias``) -> ("M", "V" or None)."""
    model, _, version = names.short(name).partition("@")
    return model, version or None


class ModelRegistry:
    """The Vertex view of the MLflow registry at ``tracking_uri`` for one project and location."""

    def __init__(self, tracking_uri: str, project: str, location: str) -> None:
        from models.registry import client

        self.client = client(tracking_uri)
        self.project, self.location = project, location

    def _registered(self, model_id: str) -> Any:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_registered_model(model_id)
        except MlflowException as exc:
            if _missing(exc):
                raise not_found("Model", names.model(self.project, self.location, model_id)) from None
            raise

    def _versions(self, model_id: str) -> list[Any]:
        found = self.client.search_model_versions(f"name='{model_id}'")
        return sorted(found, key=lambda mv: int(mv.version))

    def _default(self, rm: Any, versions: list[Any]) -> str | None:
        aliases = dict(rm.aliases or {})
        for alias in (DEFAULT, "champion"):
            if alias in aliases:
                return str(aliases[alias])
        return str(versions[-1].version) if versions else None

    def _resolve(self, model_id: str, version: str | None) -> tuple[Any, Any, list[Any]]:
        """(registered model, the version asked for (id or alias; default when None), all versions)."""
        rm = self._registered(model_id)
        versions = self._versions(model_id)
        wanted = version or DEFAULT
        if wanted == DEFAULT:
            wanted = self._default(rm, versions) or ""
        elif not wanted.isdigit():
            wanted = str(dict(rm.aliases or {}).get(wanted, ""))
        for mv in versions:
            if str(mv.version) == wanted:
                return rm, mv, versions
        at = f"@{version}" if version else ""
        raise not_found("Model", names.model(self.project, self.location, model_id) + at)

    def resource(self, rm: Any, mv: Any, versions: list[Any]) -> dict[str, Any]:
        """The Model resource of one version, as Vertex returns it."""
        default = self._default(rm, versions)
        # the registered model's aliases (search results leave a version's own list empty)
        aliases = [a for a, v in dict(rm.aliases or {}).items() if str(v) == str(mv.version) and a != DEFAULT]
        if str(mv.version) == default:
            aliases.insert(0, DEFAULT)
        tags = dict(rm.tags or {})
        vtags = dict(mv.tags or {})
        body: dict[str, Any] = {
            "name": names.model(self.project, self.location, rm.name),
            "displayName": tags.get(DISPLAY_NAME, rm.name),
            "description": rm.description or "",
            "versionId": str(mv.version),
            "versionAliases": aliases,
            "versionDescription": mv.description or "",
            "createTime": rfc3339(rm.creation_timestamp / 1000),
            "updateTime": rfc3339((rm.last_updated_timestamp or rm.creation_timestamp) / 1000),
            "versionCreateTime": rfc3339(mv.creation_timestamp / 1000),
            "versionUpdateTime": rfc3339((mv.last_updated_timestamp or mv.creation_timestamp) / 1000),
            "artifactUri": vtags.get(ARTIFACT, mv.source or ""),
            "labels": {k[len(LABEL) :]: v for k, v in tags.items() if k.startswith(LABEL)},
            "supportedDeploymentResourcesTypes": ["DEDICATED_RESOURCES"],
        }
        if CONTAINER in vtags:
            body["containerSpec"] = json.loads(vtags[CONTAINER])
        return body

    def get(self, name: str) -> dict[str, Any]:
        model_id, version = split_name(name)
        return self.resource(*self._resolve(model_id, version))

    def version(self, name: str) -> Version:
        """What deploying ``name`` (``M``, ``M@V`` or ``M@alias``) needs."""
        model_id, version = split_name(name)
        rm, mv, _ = self._resolve(model_id, version)
        spec = json.loads(dict(mv.tags or {}).get(CONTAINER, "{}"))
        display = dict(rm.tags or {}).get(DISPLAY_NAME, rm.name)
        artifact = dict(mv.tags or {}).get(ARTIFACT, mv.source or "")
        return Version(rm.name, str(mv.version), display, spec.get("imageUri", ""), artifact, spec)

    def list_models(self, flt: str = "") -> list[dict[str, Any]]:
        """Every model's default version, filtered (``display_name="x"``, ``labels.k="v"``, joined by AND)."""
        match = parse_filter(flt)
        out = []
        for rm in self._all_registered():
            versions = self._versions(rm.name)
            default = self._default(rm, versions)
            for mv in versions:
                if str(mv.version) == default:
                    body = self.resource(rm, mv, versions)
                    if match(body):
                        out.append(body)
        return out

    def _all_registered(self) -> list[Any]:
        found, token = [], None
        while True:
            page = self.client.search_registered_models(max_results=100, page_token=token)
            found += [rm for rm in page if "/" not in rm.name]
            token = page.token
            if not token:
                return found

    def list_versions(self, name: str) -> list[dict[str, Any]]:
        model_id, _ = split_name(name)
        rm = self._registered(model_id)
        versions = self._versions(model_id)
        return [self.resource(rm, mv, versions) for mv in versions]

    def upload(self, body: dict[str, Any], artifact_check: Any) -> tuple[str, str]:
        """``models.upload``'s request -> (model id, version id). ``artifact_check(image, uri)`` refuses an
        artifact the image cannot serve before anything is registered."""
        model = body.get("model") or {}
        display_name = model.get("displayName") or ""
        if not display_name:
            raise invalid("model.display_name: required")
        spec = model.get("containerSpec") or {}
        image = spec.get("imageUri") or ""
        if not image:
            raise invalid("model.container_spec.image_uri: required")
        artifact = model.get("artifactUri") or ""
        aliases = list(model.get("versionAliases") or [])
        for alias in aliases:
            if not ALIAS.match(alias) or re.fullmatch(r"v\d+", alias):
                raise invalid(f"model.version_aliases: `{alias}` is not a valid alias ([a-z][a-zA-Z0-9-]*[a-z0-9])")
        parent = body.get("parentModel") or ""
        if parent:
            model_id, _ = split_name(parent)
            self._registered(model_id)
            new_model = False
        else:
            model_id = body.get("modelId") or new_id()
            if body.get("modelId") and not MODEL_ID.match(model_id):
                raise invalid(f"model_id `{model_id}`: up to 63 of [a-z0-9_-], not starting with a digit or hyphen")
            new_model = not self._exists(model_id)
            if not new_model:
                raise ApiError(
                    "ALREADY_EXISTS", f"Model `{names.model(self.project, self.location, model_id)}` exists."
                )
        artifact_check(image, artifact)
        return self._register(model_id, new_model, display_name, model, spec, artifact, aliases)

    def _exists(self, model_id: str) -> bool:
        try:
            self._registered(model_id)
        except ApiError:
            return False
        return True

    def _register(
        self,
        model_id: str,
        new_model: bool,
        display_name: str,
        model: dict[str, Any],
        spec: dict[str, Any],
        artifact: str,
        aliases: list[str],
    ) -> tuple[str, str]:
        c = self.client
        if new_model:
            tags = {DISPLAY_NAME: display_name, **{LABEL + k: v for k, v in (model.get("labels") or {}).items()}}
            c.create_registered_model(model_id, tags=tags, description=model.get("description") or None)
        try:
            tags = {CONTAINER: json.dumps(spec), ARTIFACT: artifact}
            # no artifact (an image alone): the image as a docker:// URI (an MLflow server refuses local paths
            # outside a run, and http(s) sources naming other hosts)
            image = quote(spec["imageUri"].split("://")[-1], safe="/")
            source = artifact or f"docker://{image}"
            mv = c.create_model_version(model_id, source, tags=tags, description=model.get("versionDescription"))
            version = str(mv.version)
            if new_model and DEFAULT not in aliases:
                aliases.append(DEFAULT)  # a model's first version is its default
            for alias in aliases:
                c.set_registered_model_alias(model_id, alias, version)
        except Exception:
            if new_model:  # nothing half-registered stays behind
                c.delete_registered_model(model_id)
            raise
        return model_id, version

    def delete_version(self, name: str) -> str:
        """``models.deleteVersion`` of ``M@V``: any version but the default one (move ``default`` first)."""
        model_id, version = split_name(name)
        if version is None:
            raise invalid(f"name `{name}`: expected MODEL@VERSION")
        rm, mv, versions = self._resolve(model_id, version)
        if str(mv.version) == self._default(rm, versions):
            raise ApiError(
                "FAILED_PRECONDITION",
                f"version {mv.version} of `{names.model(self.project, self.location, model_id)}` is the default "
                "version; move the default alias to another version, or delete the model",
            )
        self.client.delete_model_version(model_id, str(mv.version))
        return str(mv.version)

    def merge_aliases(self, name: str, aliases: list[str]) -> dict[str, Any]:
        """``models.mergeVersionAliases``: ``alias`` adds (moving it from another version), ``-alias`` removes."""
        model_id, version = split_name(name)
        rm, mv, _ = self._resolve(model_id, version)
        current = {a for a, v in dict(rm.aliases or {}).items() if str(v) == str(mv.version)}
        for alias in aliases:
            bare = alias.removeprefix("-")
            if not ALIAS.match(bare) or re.fullmatch(r"v\d+", bare):
                raise invalid(f"version_aliases: `{alias}` is not a valid alias ([a-z][a-zA-Z0-9-]*[a-z0-9])")
            if alias.startswith("-") and bare == DEFAULT:
                raise invalid("version_aliases: `default` cannot be removed; add it to another version instead")
        for alias in aliases:
            if alias.startswith("-"):
                if alias[1:] in current:
                    self.client.delete_registered_model_alias(model_id, alias[1:])
            else:
                self.client.set_registered_model_alias(model_id, alias, str(mv.version))
        return self.get(f"{model_id}@{mv.version}")

    def delete(self, name: str) -> None:
        model_id, _ = split_name(name)
        self._registered(model_id)
        self.client.delete_registered_model(model_id)


def parse_filter(flt: str) -> Any:
    """A predicate over a Model/Endpoint resource for Vertex's list filter (the common subset:
    ``display_name="x"`` and ``labels.key="value"`` terms joined by AND); INVALID_ARGUMENT otherwise."""
    terms = []
    for term in re.split(r"\s+AND\s+", flt.strip()) if flt.strip() else []:
        found = re.fullmatch(r'\s*(display_name|labels\.[a-z0-9_-]+)\s*=\s*"([^"]*)"\s*', term)
        if found is None:
            raise invalid(f'filter `{flt}`: only display_name="..." and labels.KEY="..." joined by AND are supported')
        terms.append((found.group(1), found.group(2)))

    def match(resource: dict[str, Any]) -> bool:
        for name, value in terms:
            if name == "display_name":
                if resource.get("displayName") != value:
                    return False
            elif resource.get("labels", {}).get(name[len("labels.") :]) != value:
                return False
        return True

    return match
