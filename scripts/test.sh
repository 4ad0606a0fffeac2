#!/usr/bin/env bash
# Install everything and run every test tier: fast + integration (+ browser, + gpu where one exists),
# then docker (Docker set up first where it is missing). A tier that cannot run here skips with its
# reason; pytest's "no tests ran" (exit 5) is not a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .

# Browser tests drive Debian's chromium (never a downloaded browser); install it where we may.
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
    || echo "test: could not install chromium; browser tests will skip" >&2
fi

pytest_tier() {
  local rc=0
  .venv/bin/python -m pytest -p no:cacheprovider "$@" || rc=$?
  if [ "$rc" = 5 ]; then rc=0; fi
  return "$rc"
}

pytest_tier -m "not docker"
if [ "${HYP_SKIP_DOCKER:-0}" != 1 ] && [ "$(id -u)" = 0 ] && ! docker info >/dev/null 2>&1 \
   && [ -f ../shared/ci/docker-setup.sh ]; then
  bash ../shared/ci/docker-setup.sh
fi
pytest_tier -m docker
