#!/usr/bin/env bash
# Run the whole test suite (unit, loopback, interop) in the project's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check softphone tests scripts
.venv/bin/lint-imports
.venv/bin/mypy
# Two workers (pytest-xdist): most tests wait on calls and timers, so two run side by side
# on two cores (SOFTPHONE_TEST_WORKERS=0: one after another). A worker that runs out of
# tests takes some of the other's (--dist worksteal): the same tests took 11 min with
# xdist's default scheduling, 8 with this one, on two cores. The real-time tests (speech
# quality, recordings that must keep up, sound devices) then run alone, so that no other
# test takes the CPU from their media clocks.
# The phones the tests start (hundreds of processes) load the package's bytecode instead
# of compiling it each time (see setup.sh), also after an edit.
.venv/bin/python -m compileall -q softphone
PYTEST=(.venv/bin/python -m pytest -q -p no:cacheprovider --durations=10)
run() {  # pytest's exit code, with 5 (none of the tests asked for is in this part) as success
	local code=0
	"${PYTEST[@]}" "$@" || code=$?
	if [ "$code" -eq 5 ]; then code=0; fi
	return "$code"
}
run -n "${SOFTPHONE_TEST_WORKERS:-2}" --dist worksteal -m "not realtime" "$@"
run -m realtime "$@"
