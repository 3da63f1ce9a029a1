#!/usr/bin/env bash
# Run the whole test suite (unit, loopback, interop) in the project's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check softphone tests scripts
.venv/bin/lint-imports
.venv/bin/mypy
# Two workers (pytest-xdist): most tests wait on calls and timers, so two run side by side
# on two cores; SOFTPHONE_TEST_WORKERS=0 runs them one after another.
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 -n "${SOFTPHONE_TEST_WORKERS:-2}" "$@"
