#!/usr/bin/env bash
# Build the python:3.11-slim base image from Debian packages, for machines that reach a Debian mirror
# but no container registry (air-gapped workshops: run it once where a mirror is reachable, then
# `hyp images save --with-base`). Needs root, debootstrap and a Docker engine.
#   BASE_TAG=python:3.11-slim  SUITE=bookworm  MIRROR=http://deb.debian.org/debian
set -euo pipefail
BASE_TAG=${BASE_TAG:-python:3.11-slim}
SUITE=${SUITE:-bookworm}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
if docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
  echo "build-base-image: $BASE_TAG already present" >&2; exit 0
fi
command -v debootstrap >/dev/null || { echo "build-base-image: install debootstrap first" >&2; exit 1; }
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
  "$SUITE" "$root" "$MIRROR" >&2
# behave like the official image for ordinary Dockerfiles: `python` and `pip` on PATH, pip may install
ln -sf python3 "$root/usr/bin/python"
ln -sf pip3 "$root/usr/bin/pip"
rm -f "$root"/usr/lib/python3.*/EXTERNALLY-MANAGED
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' - "$BASE_TAG" >&2
docker run --rm "$BASE_TAG" python --version
