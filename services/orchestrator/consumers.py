"""Which model version the consumers report: the endpoint (Vertex Endpoint resource) and the detector (Prometheus).

A consumer whose address is not configured is skipped, and the run record says so. The detector may run as
several workers on one subscription (``hyp up --detector-workers N``, compose replicas): it is given as a list of
/metrics URLs (comma-separated in ``HYP_ORCH_DETECTOR_METRICS_URL``), and a host name that resolves to several
addresses (compose's DNS name of a scaled service) stands for each of them; the detector has a version only
when every worker reports the same one.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from services.common import metric_names, names, prometheus


def endpoint_version(base_url: str, endpoint_name: str, *, timeout: float = 5.0) -> str | None:
    """``modelVersionId`` of the first deployed model of the Endpoint resource (Vertex REST GET)."""
    response = httpx.get(names.rest_url(base_url, endpoint_name), timeout=timeout)
    response.raise_for_status()
    deployed = response.json().get("deployedModels") or []
    version = deployed[0].get("modelVersionId") if deployed else None
    return str(version) if version not in (None, "") else None


def detector_version(metrics_url: str, *, timeout: float = 5.0) -> str | None:
    """The model version the detector's /metrics page reports (:func:`version_from_metrics`)."""
    response = httpx.get(metrics_url, timeout=timeout)
    response.raise_for_status()
    return version_from_metrics(response.text)


def split_urls(value: str | None) -> list[str]:
    """A comma-separated list of URLs (one URL is a list of one); blanks dropped."""
    return [u.strip() for u in (value or "").split(",") if u.strip()]


def expand(url: str) -> list[str]:
    """``url``, or one URL per IPv4 address when its host name resolves to several (compose replicas)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return [url]  # an address already
    except ValueError:
        pass
    if host == "localhost":
        return [url]
    try:
        infos = socket.getaddrinfo(host, parts.port, socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return [url]  # the probe reports the failure
    addresses = sorted({str(info[4][0]) for info in infos})
    if len(addresses) < 2:
        return [url]
    port = f":{parts.port}" if parts.port else ""
    return [urlunsplit(parts._replace(netloc=f"{address}{port}")) for address in addresses]


def detector_versions(metrics_urls: Sequence[str], *, timeout: float = 5.0) -> str | None:
    """The version every worker reports (each URL expanded by :func:`expand`), or, while they differ, which
    reports what (``mixed: URL=3, URL=4``): never a version that only some workers score with."""
    urls = [u for url in metrics_urls for u in expand(url)]
    seen = {url: detector_version(url, timeout=timeout) for url in urls}
    versions = set(seen.values())
    if len(versions) == 1:
        return versions.pop()
    return "mixed: " + ", ".join(f"{url}={version}" for url, version in seen.items())


def version_from_metrics(text: str) -> str | None:
    """The version a detector's or endpoint's /metrics page reports (names from services.common.metric_names).

    The detector's gauge is 1 for the version in its ``model_version`` label, the endpoint's for the one in
    its ``version`` label; a page whose version gauge carries no label gives the version as its value.
    """
    scrape = prometheus.parse(text)
    for name, label in (
        (metric_names.DETECTOR_MODEL_VERSION, metric_names.MODEL_VERSION),
        (metric_names.ENDPOINT_MODEL_VERSION, "version"),
    ):
        samples = scrape.samples.get(name, [])
        for sample in samples:
            if sample.labels.get(label) and sample.value != 0:
                return sample.labels[label]
        for sample in samples:
            if not sample.labels and sample.value > 0 and sample.value.is_integer():
                return str(int(sample.value))
    return None


def wait_for_version(
    probe: Callable[[], str | None], want: str, *, timeout_s: float, interval_s: float = 0.5
) -> dict[str, Any]:
    """Poll ``probe`` until it reports ``want`` or ``timeout_s`` passes; return what was seen."""
    start = time.monotonic()
    seen: str | None = None
    error: str | None = None
    while True:
        try:
            seen = probe()
            error = None
        except (httpx.HTTPError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        elapsed = time.monotonic() - start
        if seen == want:
            return {"status": "confirmed", "version": seen, "seconds": round(elapsed, 3)}
        if elapsed >= timeout_s:
            return {"status": "timeout", "version": seen, "seconds": round(elapsed, 3), "error": error}
        time.sleep(interval_s)
