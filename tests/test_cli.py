"""User mistakes on the command line: one line on stderr and the documented exit code."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import softphone as softphone_package

REPO = Path(__file__).resolve().parent.parent
USAGE = 2
NETWORK = 3


@pytest.fixture
def run(softphone: Any) -> Any:
    """Run ``softphone --json ARGS`` to completion: (exit code, stderr, process)."""

    def run_to_end(*args: str, timeout: float = 20.0, env: dict | None = None) -> Any:
        process = softphone(*args, env=env)
        code = process.wait(timeout=timeout)
        return code, process.stderr, process

    return run_to_end


def assert_one_line_error(code: int, stderr: str, expected: int) -> str:
    """One ``softphone:`` line (a mistake in the arguments adds the usage line after it)."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("usage: softphone")]
    assert lines and lines[0].startswith("softphone: ") and not lines[0].startswith("softphone: softphone"), stderr
    assert len(lines) == 1, f"expected ONE line on stderr, got {len(lines)}:\n{stderr}"
    assert code == expected, f"expected exit {expected}, got {code}; stderr: {stderr!r}"
    return lines[0]


@pytest.mark.timeout(30)
def test_unknown_subcommand(run: Any) -> None:
    code, stderr, _ = run("frobnicate")
    line = assert_one_line_error(code, stderr, USAGE)
    assert "frobnicate" in line


@pytest.mark.timeout(30)
@pytest.mark.parametrize("uri", ["sip:", "notauri@@"])
def test_call_with_a_bad_uri(run: Any, uri: str) -> None:
    code, stderr, _ = run("--bind", "127.0.0.1", "--sip-port", "0", "call", uri)
    assert_one_line_error(code, stderr, USAGE)


@pytest.mark.timeout(30)
def test_missing_config_file_is_named(run: Any) -> None:
    missing = "/nonexistent/softphonerc"
    code, stderr, _ = run(
        "--config",
        missing,
        "--bind",
        "127.0.0.1",
        "--sip-port",
        "0",
        "answer",
        "--auto",
    )
    line = assert_one_line_error(code, stderr, USAGE)
    assert missing in line


@pytest.mark.timeout(30)
def test_bad_config_value_names_file_section_and_key(run: Any, tmp_path: Path) -> None:
    config = tmp_path / "bad-port.ini"
    config.write_text("[sip]\nsip_port=abc\n", encoding="utf-8")
    code, stderr, _ = run(
        "--config", str(config), "--bind", "127.0.0.1", "answer", "--auto"
    )
    line = assert_one_line_error(code, stderr, USAGE)
    assert config.name in line
    assert "[sip]" in line
    assert "sip_port" in line


@pytest.mark.timeout(30)
def test_config_from_environment_is_read(run: Any, tmp_path: Path) -> None:
    """$SOFTPHONE_CONFIG is the default config file (a bad one proves it was read)."""
    config = tmp_path / "env-config.ini"
    config.write_text("[sip]\nsip_port=abc\n", encoding="utf-8")
    code, stderr, _ = run(
        "--bind", "127.0.0.1", "answer", "--auto", env={"SOFTPHONE_CONFIG": str(config)}
    )
    line = assert_one_line_error(code, stderr, USAGE)
    assert config.name in line and "sip_port" in line


@pytest.mark.timeout(30)
@pytest.mark.parametrize("port", ["70000", "-1", "abc"])
def test_sip_port_out_of_range(run: Any, port: str) -> None:
    code, stderr, _ = run(
        "--bind", "127.0.0.1", f"--sip-port={port}", "answer", "--auto"
    )
    assert_one_line_error(code, stderr, USAGE)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "kind", [socket.SOCK_DGRAM, socket.SOCK_STREAM], ids=["udp", "tcp"]
)
def test_port_already_in_use_is_a_network_error(run: Any, kind: int) -> None:
    with socket.socket(socket.AF_INET, kind) as busy:
        busy.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            busy.listen()
        port = busy.getsockname()[1]
        code, stderr, _ = run(
            "--bind", "127.0.0.1", "--sip-port", str(port), "answer", "--auto"
        )
    assert_one_line_error(code, stderr, NETWORK)


@pytest.mark.timeout(30)
def test_version(run: Any) -> None:
    code, stderr, process = run("--version")
    assert code == 0, stderr
    assert "Traceback" not in stderr
    printed = "\n".join(process.stdout_lines) + json.dumps(process.events)
    assert softphone_package.__version__ in printed, printed


@pytest.mark.timeout(60)
def test_demo_prints_a_timeline() -> None:
    """Without --json: human-readable lines on stdout, among them the timeline."""
    try:
        result = subprocess.run(
            [sys.executable, "-m", "softphone", "demo"],
            check=False,
            capture_output=True,
            text=True,
            timeout=45,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
        )
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed the child
        pytest.fail(f"softphone demo did not exit within 45 s: {exc.stderr!r}")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "answered" in result.stdout, result.stdout


@pytest.mark.timeout(60)
def test_demo_json_summary(run: Any) -> None:
    code, stderr, process = run("demo", timeout=45)
    assert code == 0, stderr
    assert not process.stdout_lines, (
        f"non-JSON lines on stdout with --json: {process.stdout_lines}"
    )
    summaries = [e for e in process.events if e["event"] == "summary"]
    assert len(summaries) == 1, process.events
    summary = summaries[0]
    assert process.events[-1] is summary, "the summary must be the last line"
    assert summary["result"] == "completed", summary
    assert "answered" in summary["timeline"], summary


@pytest.mark.timeout(60)
def test_the_phones_process_runs_numpy_without_a_blas_thread() -> None:
    """OpenBLAS starts a thread per further processor, and each spins for about 100 ms of CPU
    whenever it waits for work: the phone's few hundred samples are no work for them."""
    code = (
        "import contextlib, os\n"
        "from softphone import cli\n"
        "with contextlib.suppress(SystemExit):\n"
        "    cli.main(['--version'])\n"
        "import numpy\n"
        "print(len(os.listdir('/proc/self/task')))\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.endswith("_NUM_THREADS")}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "1", done.stdout
