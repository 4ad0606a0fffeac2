#!/usr/bin/env bash
# Create .venv at the repository root with the locked dependencies and `hyp` on its PATH.
# Idempotent; needs only Python 3.11 and a reachable package index (PyPI or a mirror).
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-}
if [ -z "$py" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      py=$candidate; break
    fi
  done
fi
[ -n "$py" ] || { echo "setup: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$py" -m venv .venv
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip --version >/dev/null 2>&1 || .venv/bin/python -m ensurepip >/dev/null
  .venv/bin/python -m pip install -q --disable-pip-version-check "uv==$(sed -n "s/^uv==//p" requirements.lock)"
fi
.venv/bin/uv pip sync -q -p .venv/bin/python requirements.lock
.venv/bin/uv pip install -q -p .venv/bin/python --no-deps -e .
echo "setup: ready; .venv/bin/hyp --help lists the commands" >&2
