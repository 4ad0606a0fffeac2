"""The stand-in for a user's custom container and the helpers of the tests that deploy it: one tiny Python HTTP
server run as the container's command (``HYP_ENDPOINT_CONTAINERS=local``) or baked into an image (the docker
tier), configured by the environment variables the model gives it."""

from __future__ import annotations

import contextlib
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from google.api_core import exceptions

IMAGE = "europe-west1-docker.pkg.dev/my-project/serving/echo:1"

# the "container", one request at a time (a hung handler blocks every later request, as in a stuck server):
# - writes its pid where PID_FILE says; listens on HOST (0.0.0.0 in an image);
# - exits at start while CRASH is set or CRASH_FILE exists;
# - answers health with HEALTH (200 by default; the number in HEALTH_FILE while it exists);
# - stops answering GETs (alive but hung) from the (HANG_AFTER + 1)th on when armed: always with HANG_ALWAYS,
#   or when HANG_ONCE_FILE exists at its start (it removes the file, so the server started after it is not armed);
# - predicts each instance's sum times FACTOR (1 by default), with what Vertex told it
SERVER = textwrap.dedent(
    """
    import json, os, time
    from http.server import BaseHTTPRequestHandler, HTTPServer

    open(os.environ["PID_FILE"], "w").write(str(os.getpid()))
    if os.environ.get("CRASH"):
        raise SystemExit("cannot load the model: " + os.environ["CRASH"])
    if os.path.exists(os.environ.get("CRASH_FILE", "/nonexistent")):
        raise SystemExit("cannot load the model: " + open(os.environ["CRASH_FILE"]).read())
    armed = bool(os.environ.get("HANG_ALWAYS"))
    once = os.environ.get("HANG_ONCE_FILE")
    if once and os.path.exists(once):
        os.remove(once)
        armed = True
    seen = 0

    def health():
        if os.path.exists(os.environ.get("HEALTH_FILE", "/nonexistent")):
            return int(open(os.environ["HEALTH_FILE"]).read())
        return int(os.environ.get("HEALTH", "200"))

    class Handler(BaseHTTPRequestHandler):
        def reply(self, code, body):
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            global seen
            seen += 1
            if armed and seen > int(os.environ.get("HANG_AFTER", "0")):
                time.sleep(3600)
            if self.path == os.environ["AIP_HEALTH_ROUTE"]:
                self.reply(health(), {})
            else:
                self.reply(404, {"error": self.path})

        def do_POST(self):
            if self.path != os.environ["AIP_PREDICT_ROUTE"]:
                return self.reply(404, {"error": self.path})
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            factor = float(os.environ.get("FACTOR", "1"))
            told = {k: os.environ.get(k) for k in ("AIP_DEPLOYED_MODEL_ID", "AIP_STORAGE_URI", "AIP_MODE")}
            self.reply(200, {"predictions": [{"sum": sum(i) * factor, **told} for i in body["instances"]]})

        def log_message(self, *args):
            pass

    HTTPServer((os.environ.get("HOST", "127.0.0.1"), int(os.environ["AIP_HTTP_PORT"])), Handler).serve_forever()
    """
)


@contextlib.contextmanager
def deployed(aiplatform: Any, server_script: Path, name: str, env: dict[str, str]) -> Iterator[tuple[Any, Any]]:
    """The script deployed as a custom container on an endpoint of its own: (model, endpoint); undeployed and
    deleted afterwards."""
    model = aiplatform.Model.upload(
        display_name=name,
        serving_container_image_uri=IMAGE,
        serving_container_command=[sys.executable, str(server_script)],
        serving_container_environment_variables=env,
    )
    endpoint = aiplatform.Endpoint.create(display_name=name)
    try:
        model.deploy(endpoint=endpoint)
        yield model, endpoint
    finally:
        endpoint.undeploy_all()
        endpoint.delete()
        model.delete()


def pid_of(path: Path) -> int:
    """The pid the server wrote (0 while a starting server has the file open and empty)."""
    text = path.read_text().strip()
    return int(text) if text else 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def status(endpoint: Any) -> Any:
    [model] = endpoint.list_models()  # fetched again: list_models syncs the resource
    return model.status


def refusal(endpoint: Any) -> str | None:
    """The message of ``:predict``'s UNAVAILABLE, or None when it answers (any other error fails the test)."""
    try:
        endpoint.predict(instances=[[1.0, 2.0]], timeout=30)
    except exceptions.ServiceUnavailable as exc:
        return str(exc)
    return None


def answers(endpoint: Any) -> bool:
    """Whether ``:predict`` answers, and with the sum a FACTOR of 1 gives."""
    try:
        return bool(endpoint.predict(instances=[[1.0, 2.0]], timeout=30).predictions[0]["sum"] == 3.0)
    except exceptions.ServiceUnavailable:
        return False
