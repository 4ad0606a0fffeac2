"""The SDK container image Dataflow (or Flink's DOCKER environment) runs the detector's DoFns in.

Dataflow starts ``--sdk_container_image`` on its workers with Beam's container contract: the image's
entrypoint must stay Beam's ``/opt/apache/beam/boot``, and its Python, Beam version and packages must
match the submitting process. So the image is Beam's own Python SDK image for our Python and Beam
versions, plus ``requirements.lock`` and this repository's packages, and nothing else changed.

:func:`dockerfile` is the build file; ``python -m services.detector.sdk_image`` prints it, which is how
``hyp images build --image detector-sdk`` gets it (the stack runs this module, it does not import it), then
builds it against the build context (a checkout, or one assembled from the installed wheel) where the base
image is present or can be pulled, and otherwise says so and skips. Submitting with it: docs/detector.md,
"Dataflow", and docs/testing.md.
"""

from __future__ import annotations

import sys

BEAM_VERSION = "2.77.0"  # pyproject.toml's pin
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
SDK_BASE_IMAGE = f"apache/beam_python{PYTHON}_sdk:{BEAM_VERSION}"
SDK_IMAGE = "hyp-local/detector-sdk:0.1.0"  # services/stack/images.py builds it under this tag
PACKAGES = ("services", "models", "loadgen")  # what the pipeline's DoFns import


def dockerfile(base_image: str = SDK_BASE_IMAGE) -> str:
    """A Dockerfile for the SDK image: Beam's base, the lock, our packages; Beam's entrypoint untouched."""
    copies = "\n".join(f"COPY {name}/ /opt/hyp/{name}/" for name in PACKAGES)
    return f"""# hyp-local detector SDK container for Dataflow's --sdk_container_image (services/detector/sdk_image.py)
FROM {base_image}
COPY requirements.lock /opt/hyp/requirements.lock
RUN pip install --no-cache-dir -r /opt/hyp/requirements.lock
{copies}
ENV PYTHONPATH=/opt/hyp
# no ENTRYPOINT: Beam's /opt/apache/beam/boot is the container contract Dataflow starts
"""


if __name__ == "__main__":
    print(dockerfile(), end="")
