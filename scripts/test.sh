#!/usr/bin/env bash
# Run the whole test suite (unit, loopback, interop) in the project's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check softphone tests scripts
.venv/bin/lint-imports
.venv/bin/mypy
exec .venv/bin/python -m pytest -q -p no:cacheprovider --durations=15 "$@"
