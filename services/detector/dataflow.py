"""The detector as a Dataflow job, translated offline: `hyp detector --runner DataflowRunner --dry_run=True ...`.

Beam's DataflowRunner with ``--dry_run=True`` (Beam's TestOptions) applies Dataflow's overrides, snapshots the
pipeline as a runner-API proto with the SDK container as its environment, builds the job, and returns
before it would stage files or call the Dataflow API: no credentials, no network. What it built is
summarised here (:func:`summary`) so a user, and tests, can see the job Dataflow would get: the steps,
the read (Dataflow's own Pub/Sub source, ``beam:transform:pubsub_read:v1``), the container image.

Submitting for real is the same command without ``--dry_run`` (docs/detector.md, "Other runners").
"""

from __future__ import annotations

from typing import Any

DATAFLOW_RUNNERS = ("DataflowRunner", "TestDataflowRunner")
PUBSUB_READ_URN = "beam:transform:pubsub_read:v1"


def is_dry_run(options: Any, runner: str) -> bool:
    from apache_beam.options.pipeline_options import TestOptions

    return runner in DATAFLOW_RUNNERS and bool(options.view_as(TestOptions).dry_run)


def summary(result: Any) -> dict[str, Any]:
    """The translated job of a dry run's ``result``: leaf steps (name, URN) in graph order, environments."""
    job = result.job
    proto = job.proto_pipeline
    transforms = proto.components.transforms
    steps: list[dict[str, str]] = []

    def visit(transform_id: str) -> None:
        transform = transforms[transform_id]
        if not transform.subtransforms:
            steps.append({"name": transform.unique_name, "urn": transform.spec.urn})
        for sub in transform.subtransforms:
            visit(sub)

    for root in proto.root_transform_ids:
        visit(root)
    environments = []
    for env in proto.components.environments.values():
        entry = {"urn": env.urn}
        if env.urn == "beam:env:docker:v1":
            from apache_beam.portability.api import beam_runner_api_pb2

            entry["container_image"] = beam_runner_api_pb2.DockerPayload.FromString(env.payload).container_image
        environments.append(entry)
    from apache_beam.options.pipeline_options import GoogleCloudOptions, StandardOptions

    cloud = job.options.view_as(GoogleCloudOptions)
    return {
        "runner": "DataflowRunner",
        "dry_run": True,
        "job_name": job.default_job_name(cloud.job_name),
        "project": cloud.project,
        "region": cloud.region,
        "streaming": bool(job.options.view_as(StandardOptions).streaming),
        "steps": steps,
        "environments": environments,
    }
