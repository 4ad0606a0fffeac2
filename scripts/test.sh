#!/usr/bin/env bash
# Install everything and run every test tier: fast, integration, then docker (set up when missing).
# Tiers that cannot run here skip with their reason; pytest's "no tests ran" (5) is not a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .

pytest_tier() {  # pytest exit 5 = no test collected for this tier
  local rc=0
  .venv/bin/python -m pytest "$@" || rc=$?
  if [ "$rc" = 5 ]; then rc=0; fi
  return "$rc"
}

pytest_tier -m "not docker and not gpu" -p no:cacheprovider
if [ "${HYP_SKIP_DOCKER:-0}" != 1 ] && [ "$(id -u)" = 0 ] && ! docker info >/dev/null 2>&1 \
   && [ -f ../shared/ci/docker-setup.sh ]; then
  bash ../shared/ci/docker-setup.sh
fi
pytest_tier -m "docker and not gpu" -p no:cacheprovider
