"""Command-line habits: global options anywhere, one error line plus usage, -q, --log-file,
an account given on the command line, cameras in ``devices``, plain ``softphone``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from softphone.devices import list_cameras
from tests.conftest import SOFTPHONE_CMD

QUIET_RC = "[sound]\ncapture_dev_id=silence:\nplayback_dev_id=null:\n[video]\nenabled=0\n"


@pytest.fixture
def silent_port() -> Any:
    """A UDP port that takes the INVITE and never answers (a closed one refuses it at once)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _run(*args: str, timeout: float = 30, env: dict[str, str] | None = None, cwd: Path | None = None) -> Any:
    return subprocess.run([*SOFTPHONE_CMD, *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=env, cwd=cwd)


@pytest.mark.timeout(60)
def test_global_options_after_the_subcommand(tmp_path: Path, silent_port: int) -> None:
    rc = tmp_path / "rc"
    rc.write_text(QUIET_RC)
    # nobody answers there: the call times out; what matters is that the options were taken
    done = _run("call", f"sip:nobody@127.0.0.1:{silent_port}", "--json", "-vv", "-c", str(rc), "--bind", "127.0.0.1",
                "--sip-port", "0", "--timeout", "0.5", "--t1-ms", "50")
    events = [json.loads(line) for line in done.stdout.splitlines()]
    assert events[0]["event"] == "listening" and events[0]["host"] == "127.0.0.1", done.stdout
    assert events[-1]["event"] == "summary" and events[-1]["result"] == "cancelled", done.stdout
    # -vv after the subcommand
    assert f"softphone.wire DEBUG >>> 127.0.0.1:{silent_port}/udp" in done.stderr, done.stderr


@pytest.mark.timeout(30)
def test_a_mistake_in_the_arguments_prints_one_error_and_the_usage_line() -> None:
    done = _run("call")
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "softphone: the following arguments are required: uri",
        "usage: softphone call [options] uri; see 'softphone call --help'",
    ], done.stderr


@pytest.mark.timeout(30)
def test_plain_softphone_without_a_terminal_asks_for_a_command() -> None:
    done = _run()
    assert done.returncode == 2 and done.stderr.startswith("softphone: a command is needed"), done.stderr
    assert len(done.stderr.splitlines()) == 1


@pytest.mark.timeout(60)
def test_quiet_and_log_file(tmp_path: Path, silent_port: int) -> None:
    rc = tmp_path / "rc"
    rc.write_text(QUIET_RC)
    log = tmp_path / "phone.log"
    args = ("-c", str(rc), "--bind", "127.0.0.1", "--sip-port", "0", "--t1-ms", "50", "call",
            f"sip:nobody@127.0.0.1:{silent_port}", "--timeout", "0.5")
    loud = _run(*args, "-vv", "--log-file", str(log))
    assert "listening on udp 127.0.0.1" in loud.stdout and loud.stderr == "", loud.stderr
    assert f"softphone.wire DEBUG >>> 127.0.0.1:{silent_port}/udp" in log.read_text()
    quiet = _run(*args, "-q")
    assert quiet.stdout == "" and quiet.stderr == "" and quiet.returncode == 0, (quiet.stdout, quiet.stderr)
    unwritable = _run(*args, "--log-file", str(tmp_path / "no" / "such" / "dir.log"))
    assert unwritable.returncode == 2 and unwritable.stderr.startswith("softphone: cannot write the log file")


def test_cameras_are_listed_from_video4linux(tmp_path: Path) -> None:
    for index, name in ((0, "Integrated Camera"), (2, "USB Webcam"), (10, "Loopback")):
        (tmp_path / f"video{index}").mkdir()
        (tmp_path / f"video{index}" / "name").write_text(name + "\n")
    (tmp_path / "v4l-subdev0").mkdir()
    cameras = list_cameras(str(tmp_path))
    assert [(c["spec"], c["name"], c["path"]) for c in cameras] == [
        ("opencv: 0", "Integrated Camera", "/dev/video0"),
        ("opencv: 2", "USB Webcam", "/dev/video2"),
        ("opencv: 10", "Loopback", "/dev/video10"),
    ]
    assert list_cameras(str(tmp_path / "missing")) == []


@pytest.mark.timeout(30)
def test_devices_lists_cameras_too() -> None:
    done = _run("devices", "--json")
    (event,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert event["event"] == "devices" and "video" in event and "audio" in event, done.stdout
    text = _run("devices").stdout
    assert "camera" in text, text


@pytest.mark.timeout(60)
def test_a_missing_camera_is_one_warning_line_not_opencv_noise(tmp_path: Path) -> None:
    if Path("/dev/video7").exists():
        pytest.skip("this machine has a /dev/video7")
    rc = tmp_path / "rc"
    rc.write_text("[sound]\ncapture_dev_id=silence:\nplayback_dev_id=null:\n")
    answerer = subprocess.Popen([*SOFTPHONE_CMD, "-c", str(rc), "--bind", "127.0.0.1", "--sip-port", "0", "--json",
                                 "answer", "--auto", "--once", "--video-sink", "null:"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        assert answerer.stdout is not None
        port = json.loads(answerer.stdout.readline())["port"]
        done = _run("-c", str(rc), "--bind", "127.0.0.1", "--sip-port", "0", "call", f"sip:a@127.0.0.1:{port}",
                    "--duration", "0.5", "--video-source", "opencv: 7", "--video-sink", "null:")
    finally:
        answerer.terminate()
        answerer.wait(10)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "cannot open camera 7: there is no /dev/video7" in lines[0], done.stderr
    assert sys.platform.startswith("linux")


@pytest.mark.timeout(60)
def test_demo_on_a_terminal_shows_the_live_line_and_the_summary(tmp_path: Path) -> None:
    import pexpect

    child = pexpect.spawn(SOFTPHONE_CMD[0], [*SOFTPHONE_CMD[1:], "demo"], encoding="utf-8", timeout=30,
                          # a 200-column terminal: the status line is cut at the terminal's width, and
                          # an inherited COLUMNS (pytest-xdist workers have one) would narrow it
                          env={**os.environ, "HOME": str(tmp_path), "DISPLAY": "", "COLUMNS": "200"},
                          dimensions=(40, 200))
    try:
        # tone and test-pattern video both ways, with their figures each second
        child.expect(r"\d\d:\d\d \| audio PCMU tx [\d.]+ rx [\d.]+ kbit/s .* \| video VP8 tx [\d.]+ rx [\d.]+")
        child.expect(r"call ended: completed 200")
        child.expect(r"audio PCMU .* MOS \d\.\d\d")
        child.expect(r"video VP8 .* fps")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
