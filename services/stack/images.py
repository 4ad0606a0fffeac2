"""`hyp images build|save|load|list`: the stack's container images, and an offline path for workshops.

``build`` builds each image of services/stack/definition.py from compose/Dockerfile (BuildKit, cached);
``save`` writes them (and, with ``--with-base``, the base image) to one tarball; ``load`` restores it on a
machine with no registry, after which ``docker compose up --no-build --wait`` starts with no build and no
pull. compose/build-base-image.sh makes the python:3.11-slim base from Debian packages when no registry
is reachable at all.

The build context is a checkout's root, or, where hyp-local was installed from its wheel (no checkout),
one assembled in a temporary folder from the installed package: the wheel ships compose/Dockerfile,
requirements.lock and pyproject.toml as data files (``share/hyp-local``) beside the ``services``, ``models``
and ``loadgen`` packages. ``build --dry-run`` shows the context and the commands without Docker.
Besides the stack's images: ``bigquery`` (goccy/bigquery-emulator's command line, for testcontainers'
``BigQueryEmulatorContainer``) and ``detector-sdk`` (Dataflow's ``--sdk_container_image``, built only where
Beam's SDK base image can be had).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.config import Command, ConfigError
from services.stack import definition as d
from services.stack.settings import ImagesSettings

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("services", "models", "loadgen")
DOCKERFILE = "compose/Dockerfile"
BUILD_FILES = ("pyproject.toml", "requirements.lock", DOCKERFILE, "compose/requirements_for.py")
SHARE = "share/hyp-local"  # where the wheel's data files land, under the environment's prefix
CORE_IMAGES = sorted({s.image for s in d.SERVICES})
# What pytest-hyp-local's hyp_stack starts: the emulators and the data path with its model. Tests send their own
# events (no load generator, which would also take CPU from the start-up) and run no orchestrator or console
# (the orchestrator, at a background CPU share, was the last service healthy).
NOT_FOR_TESTS = ("loadgen", "orchestrator", "console")
TEST_SERVICES = [s.name for s in d.SERVICES if s.name not in NOT_FOR_TESTS]
DEFAULT_TARBALL = Path(f"hyp-local-images-{d.VERSION}.tar")


@dataclass(frozen=True)
class Extra:
    """An image outside the stack: a build target of compose/Dockerfile, or (``sdk``) Beam's SDK image."""

    image: d.Image
    target: str | None = None
    sdk: bool = False


EXTRA_IMAGES: dict[str, Extra] = {
    "bigquery": Extra(d.Image("bigquery", "warehouse,serve", "goccy/bigquery-emulator's command line"), "bigquery"),
    "detector-sdk": Extra(d.Image("detector-sdk", "", "Dataflow's --sdk_container_image (Beam's base)"), sdk=True),
}
ALL_IMAGES: dict[str, d.Image] = {**d.IMAGES, **{k: e.image for k, e in EXTRA_IMAGES.items()}}


SDK_MODULE = "services.detector.sdk_image"  # renders the SDK image's Dockerfile; run as a process, not imported
SDK_IMAGE = f"hyp-local/detector-sdk:{d.VERSION}"


def sdk_dockerfile() -> tuple[str, str]:
    """The SDK image's base image and Dockerfile, from ``python -m services.detector.sdk_image`` (the detector's
    own module says what its workers need; the stack reaches it as a process, as it reaches every command)."""
    done = subprocess.run([sys.executable, "-m", SDK_MODULE], capture_output=True, text=True, check=True)
    base = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("FROM "))
    return base, done.stdout


def tag(key: str) -> str:
    extra = EXTRA_IMAGES.get(key)
    return SDK_IMAGE if extra is not None and extra.sdk else ALL_IMAGES[key].tag


def _installed_share() -> Path | None:
    """The installed wheel's ``share/hyp-local`` folder, found through the distribution's file list."""
    try:
        dist = importlib.metadata.distribution("hyp-local")
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in dist.files or ():
        if file.as_posix().endswith(f"{SHARE}/{DOCKERFILE}"):
            return Path(str(dist.locate_file(file))).resolve().parents[1]
    return None


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)  # a top-level package: found, not imported
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {name} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _build_files_base() -> Path:
    base = ROOT if is_checkout() else _installed_share()
    if base is None:
        raise FileNotFoundError(
            f"no build files: neither a checkout nor an installed hyp-local wheel with {SHARE}/{DOCKERFILE}"
        )
    return base


def compose_info() -> dict[str, Any]:
    """The stack's compose file and, per service, its container ports (a caller publishes them where it likes)."""
    base = _build_files_base()
    compose = base / "docker-compose.yml"
    if not compose.is_file():
        raise FileNotFoundError(f"no compose file at {compose}")
    return {
        "version": d.VERSION,
        "compose_file": str(compose),
        "env_file": str(base / ".env"),
        "project": d.TUNABLES["HYP_PROJECT"],
        "location": d.TUNABLES["HYP_LOCATION"],
        "images": sorted(tag(k) for k in CORE_IMAGES),
        "ports": {s.name: list(s.ports) for s in d.SERVICES if s.ports},
        "test_services": TEST_SERVICES,
    }


def is_checkout() -> bool:
    """Whether this code runs from a checkout (its build files beside the packages), not from a wheel."""
    return all((ROOT / name).is_file() for name in BUILD_FILES) and _package_dir("services") == ROOT / "services"


def context_sources() -> dict[str, Path]:
    """Each entry of the build context (its path in the context) and where it comes from."""
    base = _build_files_base()
    sources = {name: base / name for name in BUILD_FILES}
    sources.update({name: _package_dir(name) for name in PACKAGES})
    missing = [str(path) for path in sources.values() if not path.exists()]
    if missing:
        raise FileNotFoundError(f"build files missing: {', '.join(missing)}")
    return sources


_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def stage_context(dest: Path) -> Path:
    """Copy the build context into ``dest`` (what a checkout's .dockerignore lets through)."""
    for name, source in context_sources().items():
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=_IGNORE)
        else:
            shutil.copy2(source, target)
    return dest


@contextmanager
def build_context() -> Iterator[Path]:
    """The checkout's root, or a staged copy of the installed package's build context (removed afterwards)."""
    if is_checkout():
        yield ROOT
        return
    with tempfile.TemporaryDirectory(prefix="hyp-images-") as tmp:
        yield stage_context(Path(tmp))


def build_command(image: d.Image, base_image: str, context: Path = ROOT, target: str | None = None) -> list[str]:
    return [
        *("docker", "build", "--file", str(context / DOCKERFILE)),
        *("--build-arg", f"BASE_IMAGE={base_image}", "--build-arg", f"EXTRAS={image.extras}"),
        *(("--target", target) if target else ()),
        *("--tag", image.tag, str(context)),
    ]


def sdk_build_command(dockerfile: Path, context: Path) -> list[str]:
    return ["docker", "build", "--file", str(dockerfile), "--tag", tag("detector-sdk"), str(context)]


def _run(cmd: list[str]) -> int:
    print("+ " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, env={**os.environ, "DOCKER_BUILDKIT": "1"}).returncode


def _present(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def command() -> Command[ImagesSettings]:
    cli = Command("images", ImagesSettings, description=__doc__.splitlines()[0])
    sub = cli.parser.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="build the images (default: the core stack's)")
    b.add_argument("--image", action="append", choices=sorted(ALL_IMAGES), help="only this image (repeatable)")
    cli.flag("base_image", parser=b, help="base image")
    b.add_argument("--gpu", action="store_true", help="also the GPU image, on CUDA_BASE_IMAGE")
    b.add_argument("--dry-run", action="store_true", help="show the build context and the commands; build nothing")
    b.add_argument("--no-pull", action="store_true", help="pull no base image (the SDK image is skipped without it)")
    s = sub.add_parser("save", help="save the images to one tarball")
    s.add_argument("--output", "-o", type=Path, default=DEFAULT_TARBALL, help=f"tarball (default {DEFAULT_TARBALL})")
    s.add_argument("--with-base", action="store_true", help="include the base image, so the target can rebuild")
    s.add_argument("--image", action="append", choices=sorted(ALL_IMAGES), help="only this image (repeatable)")
    load = sub.add_parser("load", help="load images from a tarball made by `hyp images save`")
    load.add_argument("--input", "-i", type=Path, default=DEFAULT_TARBALL, help=f"tarball (default {DEFAULT_TARBALL})")
    sub.add_parser("list", help="the images, their tags and whether they are present")
    sub.add_parser("compose", help="where the compose file is (a checkout's or the installed wheel's) and each "
                   "service's ports, as JSON (what pytest-hyp-local's hyp_stack fixture starts)")  # fmt: skip
    return cli


def describe_context() -> list[str]:
    """One line per build-context entry: its path in the context, where it comes from, how many files."""
    lines = [f"context: {'this checkout' if is_checkout() else 'the installed hyp-local package'}"]
    for name, source in context_sources().items():
        files = (
            sum(1 for p in source.rglob("*") if p.is_file() and "__pycache__" not in p.parts) if source.is_dir() else 1
        )
        lines.append(f"  {name:<30} {files:>5} file(s)  <- {source}")
    return lines


def _build_sdk(dry_run: bool, pull: bool = True) -> int:
    """Beam's SDK base + our lock and packages, where the base is present or can be pulled; otherwise say so."""
    base, text = sdk_dockerfile()
    if dry_run:
        print(f"{SDK_IMAGE}: Dockerfile (rendered by {SDK_MODULE})\n{text}")
        print("+ " + " ".join(sdk_build_command(Path("<context>/Dockerfile.sdk"), Path("<context>"))))
        return 0
    if not _present(base) and not (pull and _run(["docker", "pull", base]) == 0):
        print(
            f"hyp images: skipping {SDK_IMAGE}: its base image {base} is not present"
            + (" and cannot be pulled here" if pull else " (--no-pull)")
            + " (build it where a registry is reachable, or `docker load` the base first)",
            file=sys.stderr,
        )
        return 0
    with build_context() as context, tempfile.TemporaryDirectory(prefix="hyp-sdk-") as tmp:
        dockerfile = Path(tmp) / "Dockerfile.sdk"
        dockerfile.write_text(text, encoding="utf-8")
        return _run(sdk_build_command(dockerfile, context))


STAGED = Path("<a temporary copy of the context above>")


def build(keys: list[str], settings: ImagesSettings, dry_run: bool, pull: bool = True) -> int:
    if dry_run:
        print("\n".join(describe_context()))
    with nullcontext(ROOT if is_checkout() else STAGED) if dry_run else build_context() as context:
        for key in keys:
            extra = EXTRA_IMAGES.get(key)
            if extra is not None and extra.sdk:
                code = _build_sdk(dry_run, pull)
            else:
                image_base = settings.cuda_base_image if key == d.GPU_IMAGE else settings.base_image
                cmd = build_command(ALL_IMAGES[key], image_base, context, extra.target if extra else None)
                if dry_run:
                    print("+ " + " ".join(cmd))
                code = 0 if dry_run else _run(cmd)
            if code != 0:
                print(f"hyp images: building {tag(key)} failed (status {code})", file=sys.stderr)
                return code
    return 0


def main(argv: list[str] | None = None) -> int:
    cli = command()
    try:
        args, settings = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)

    if args.action == "compose":
        try:
            print(json.dumps(compose_info(), indent=2))
        except FileNotFoundError as exc:
            print(f"hyp images: {exc}", file=sys.stderr)
            return 1
        return 0
    if args.action == "build" and args.dry_run:
        try:
            return build(_build_keys(args), settings, dry_run=True)
        except FileNotFoundError as exc:
            print(f"hyp images: {exc}", file=sys.stderr)
            return 1
    if shutil.which("docker") is None:
        print("hyp images: no docker CLI on PATH (install Docker, or use `hyp up` without it)", file=sys.stderr)
        return 1
    base = settings.base_image
    if args.action == "list":
        for key in sorted(ALL_IMAGES):
            image = ALL_IMAGES[key]
            state = "present" if _present(tag(key)) else "missing"
            print(f"{tag(key):<36} {state:<8} extras={image.extras or '-'}  {image.description}")
        return 0
    if args.action == "build":
        try:
            return build(_build_keys(args), settings, dry_run=False, pull=not args.no_pull)
        except FileNotFoundError as exc:
            print(f"hyp images: {exc}", file=sys.stderr)
            return 1
    if args.action == "save":
        tags = [tag(k) for k in (args.image or CORE_IMAGES)] + ([base] if args.with_base else [])
        missing = [t for t in tags if not _present(t)]
        if missing:
            print(f"hyp images: not built yet: {', '.join(missing)} (run `hyp images build`)", file=sys.stderr)
            return 1
        code = _run(["docker", "save", "--output", str(args.output), *tags])
        if code == 0:
            print(f"saved {', '.join(tags)} to {args.output} ({args.output.stat().st_size / 2**20:,.0f} MiB)")
        return code
    if not args.input.is_file():
        print(f"hyp images: no tarball at {args.input}", file=sys.stderr)
        return 1
    code = _run(["docker", "load", "--input", str(args.input)])
    if code == 0:
        print("loaded; start with `docker compose up --no-build --wait`")
    return code


def _build_keys(args: Any) -> list[str]:
    keys: list[str] = list(args.image or CORE_IMAGES)
    if args.gpu and d.GPU_IMAGE not in keys:
        keys.append(d.GPU_IMAGE)
    return keys


if __name__ == "__main__":
    raise SystemExit(main())
