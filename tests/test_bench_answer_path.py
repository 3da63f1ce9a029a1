"""The answer benchmark (scripts/bench/answer_path.py): it times each 200, and the run that
callgrind counts (``--marked``, which ``--instructions`` runs under valgrind; with ``--flush``,
which ``--cache-lines`` adds) answers the same."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench" / "answer_path.py"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("options", [[], ["--marked"], ["--marked", "--flush"]], ids=["timed", "marked", "flushed"])
def test_every_counted_invite_is_answered(options: list[str]) -> None:
    cmd = [sys.executable, str(SCRIPT), "--calls", "12", "--skip", "4", "--gap-ms", "5", *options]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"gap +5 ms: median +([\d.]+) us .*\((\d+) answers\)", done.stdout)
    assert found, done.stdout
    assert int(found.group(2)) == 8 and float(found.group(1)) > 0
