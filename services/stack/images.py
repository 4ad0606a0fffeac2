"""`hyp images build|save|load|list`: the stack's container images, and an offline path for workshops.

``build`` builds each image of services/stack/definition.py from compose/Dockerfile (BuildKit, cached);
``save`` writes them (and, with ``--with-base``, the base image) to one tarball; ``load`` restores it on a
machine with no registry, after which ``docker compose up --no-build --wait`` starts with no build and no
pull. compose/build-base-image.sh makes the python:3.11-slim base from Debian packages when no registry
is reachable at all.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from services.common.config import Command, ConfigError
from services.stack import definition as d
from services.stack.settings import ImagesSettings

ROOT = Path(__file__).resolve().parents[2]
CORE_IMAGES = sorted({s.image for s in d.SERVICES})
DEFAULT_TARBALL = Path(f"hyp-local-images-{d.VERSION}.tar")


def build_command(image: d.Image, base_image: str) -> list[str]:
    return [
        *("docker", "build", "--file", str(ROOT / "compose" / "Dockerfile")),
        *("--build-arg", f"BASE_IMAGE={base_image}", "--build-arg", f"EXTRAS={image.extras}"),
        *("--tag", image.tag, str(ROOT)),
    ]


def _run(cmd: list[str]) -> int:
    print("+ " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, env={**os.environ, "DOCKER_BUILDKIT": "1"}).returncode


def _present(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def command() -> Command[ImagesSettings]:
    cli = Command("images", ImagesSettings, description=__doc__.splitlines()[0])
    sub = cli.parser.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="build the images (default: the core stack's)")
    b.add_argument("--image", action="append", choices=sorted(d.IMAGES), help="only this image (repeatable)")
    cli.flag("base_image", parser=b, help="base image")
    b.add_argument("--gpu", action="store_true", help="also the GPU image, on CUDA_BASE_IMAGE")
    s = sub.add_parser("save", help="save the images to one tarball")
    s.add_argument("--output", "-o", type=Path, default=DEFAULT_TARBALL, help=f"tarball (default {DEFAULT_TARBALL})")
    s.add_argument("--with-base", action="store_true", help="include the base image, so the target can rebuild")
    s.add_argument("--image", action="append", choices=sorted(d.IMAGES), help="only this image (repeatable)")
    load = sub.add_parser("load", help="load images from a tarball made by `hyp images save`")
    load.add_argument("--input", "-i", type=Path, default=DEFAULT_TARBALL, help=f"tarball (default {DEFAULT_TARBALL})")
    sub.add_parser("list", help="the images, their tags and whether they are present")
    return cli


def main(argv: list[str] | None = None) -> int:
    cli = command()
    try:
        args, settings = cli.parse(argv)
    except ConfigError as exc:
        return cli.fail(exc)

    if shutil.which("docker") is None:
        print("hyp images: no docker CLI on PATH (install Docker, or use `hyp up` without it)", file=sys.stderr)
        return 1
    base = settings.base_image
    if args.action == "list":
        for key in sorted(d.IMAGES):
            image = d.IMAGES[key]
            state = "present" if _present(image.tag) else "missing"
            print(f"{image.tag:<32} {state:<8} extras={image.extras or '-'}  {image.description}")
        return 0
    if args.action == "build":
        keys = args.image or CORE_IMAGES
        if args.gpu and d.GPU_IMAGE not in keys:
            keys = [*keys, d.GPU_IMAGE]
        for key in keys:
            image_base = settings.cuda_base_image if key == d.GPU_IMAGE else base
            code = _run(build_command(d.IMAGES[key], image_base))
            if code != 0:
                print(f"hyp images: building {d.IMAGES[key].tag} failed (status {code})", file=sys.stderr)
                return code
        return 0
    if args.action == "save":
        tags = [d.IMAGES[k].tag for k in (args.image or CORE_IMAGES)] + ([base] if args.with_base else [])
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


if __name__ == "__main__":
    raise SystemExit(main())
