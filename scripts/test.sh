#!/usr/bin/env bash
# Install everything and run every test tier: fast + integration (+ browser, + gpu where one exists),
# then docker. Every machine prerequisite (chromium, Docker) is set up before the first tier, so a test
# that can run on a fresh machine never skips because of the order of set-up steps (the fast tier
# validates the compose files with the docker CLI). A tier that cannot run here skips with its reason;
# pytest's "no tests ran" (exit 5) is not a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# Types, with pyproject's [tool.mypy]: every package it lists (services, models, loadgen), pydantic's plugin,
# strict on services/common, services/pubsub and services/stack.
.venv/bin/mypy

# Browser tests drive Debian's chromium (never a downloaded browser); install it where we may.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
    || echo "test: could not install chromium; browser tests will skip" >&2
fi

# Docker (engine + compose CLI), where it is missing and we may set it up (root, the script exists,
# HYP_SKIP_DOCKER unset); the fast tier's compose-config tests need its CLI, the docker tier its engine.
if [ "${HYP_SKIP_DOCKER:-0}" != 1 ] && [ "$(id -u)" = 0 ] && [ -f ../shared/ci/docker-setup.sh ] \
   && ! { docker info >/dev/null 2>&1 && docker compose version >/dev/null 2>&1; }; then
  bash ../shared/ci/docker-setup.sh
fi

pytest_tier() {
  local rc=0
  .venv/bin/python -m pytest -p no:cacheprovider "$@" || rc=$?
  if [ "$rc" = 5 ]; then rc=0; fi
  return "$rc"
}

pytest_tier -m "not docker"
pytest_tier -m docker
