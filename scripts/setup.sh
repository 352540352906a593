#!/usr/bin/env bash
# One-time, idempotent set-up of a fresh machine: a virtual environment in .venv with the CPU build
# of torch (pinned here, not in pyproject, so GPU users keep their own torch) and mathforge itself
# in editable mode with every extra the tests exercise.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.mathforge-setup
want="$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[torch,serve,hf,synth,dev]"
# Headless Chromium renders the HTML reports in a test; install it when we can (root + apt).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
    || echo "setup: chromium could not be installed; the report rendering test will be skipped" >&2
fi
echo "$want" > "$stamp"
