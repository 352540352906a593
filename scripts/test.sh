#!/usr/bin/env bash
# The test command (README, .ci/run): set up, lint, then the whole suite. pytest's exit code 5
# ("no tests collected") is turned into a failure so an empty run can never pass.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
.venv/bin/ruff check mathforge tests bench || exit 1
.venv/bin/python -m pytest -q "$@"
rc=$?
if [ "$rc" = 5 ]; then
  echo "scripts/test.sh: pytest collected no tests; treating that as a failure" >&2
  exit 1
fi
exit "$rc"
