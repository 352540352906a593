#!/usr/bin/env bash
# The main job (README): set up, then run the quickstart.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/mathforge quickstart "$@"
