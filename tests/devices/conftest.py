"""Fixtures for the device tests: a private PulseAudio daemon for PortAudio, and signal analysis.

``pulse_audio`` starts ``pulseaudio`` (no sound card needed) with a null sink in a
temporary runtime directory, points this process at it through ``PULSE_SERVER``,
``PULSE_SINK`` and ``PULSE_SOURCE`` (the sink's monitor), so that PortAudio's ALSA host
API shows ``pulse`` and ``default`` devices; it stops the daemon by its PID afterwards.
Without ``pulseaudio`` the tests skip, unless the ``CI`` variable is set: then they fail.

Every null sink here is made with ``norewinds=1`` (see ``null_sink_arguments``): else an
idle null sink renders two seconds ahead at a time, and a stream that connects waits for
the rest of those two seconds, 0 to 2 s at random, before its first sample is played.
"""

from __future__ import annotations

import importlib.util
import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SINK_NAME = "softphone_test_sink"
START_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 5.0
DAEMON_MAX_S = 900  # the daemon ends by itself after this long, even if the test run is killed
PULSE_VARIABLES = ("PULSE_SERVER", "PULSE_SINK", "PULSE_SOURCE")


def null_sink_arguments(name: str, rate: int) -> list[str]:
    """``module-null-sink`` arguments for a mono sink that plays a new stream at once.

    PulseAudio's null sink renders up to its latency ahead of its clock: two seconds
    while no stream asks for less. A stream that connects lowers that latency, and with
    it the rewind the sink allows, to the stream's own (20 ms for PortAudio's): the sink
    cannot take back the rest of the two seconds it rendered, and pulls nothing from the
    new stream until they have passed. With ``norewinds=1`` (PulseAudio 13 and later)
    the sink's latency is 50 ms at most from the start.
    """
    return [f"sink_name={name}", f"rate={rate}", "channels=1", "norewinds=1"]


@dataclass(frozen=True)
class PulseServer:
    """A running private PulseAudio daemon."""

    pid: int
    runtime_dir: Path
    server: str  # the PULSE_SERVER value, "unix:<socket>"
    sink: str
    source: str  # the sink's monitor
    log_path: Path

    def log_tail(self, chars: int = 3000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]


def _require(what: str, ok: bool, hint: str) -> None:
    if ok:
        return
    message = f"{what} is not available: {hint}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: real audio devices are required)", pytrace=False)
    pytest.skip(message)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(STOP_TIMEOUT_S)


def _ready(sock: Path, env: dict[str, str]) -> bool:
    """The daemon answers on its socket (and, when pactl is there, has the null sink as default)."""
    if not sock.exists():
        return False
    pactl = shutil.which("pactl")
    if pactl is None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(str(sock))
            except OSError:
                return False
        return True
    result = subprocess.run([pactl, "info"], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                            timeout=5, check=False)
    return result.returncode == 0 and f"Default Sink: {SINK_NAME}" in result.stdout


@pytest.fixture(scope="module")
def pulse_audio() -> Iterator[PulseServer]:
    """A private PulseAudio daemon with a null sink; this process's PULSE_* variables point at it."""
    executable = shutil.which("pulseaudio")
    _require("pulseaudio", executable is not None,
             "install the Debian packages pulseaudio pulseaudio-utils libasound2-plugins")
    _require("PyAudio", importlib.util.find_spec("pyaudio") is not None, "pip install pyaudio")
    assert executable is not None
    runtime = Path(tempfile.mkdtemp(prefix="sp-pulse-"))  # short: a unix socket path has ~100 bytes
    home = runtime / "home"
    home.mkdir()
    sock = runtime / "pulse.sock"
    log_path = runtime / "pulse.log"
    env = {k: v for k, v in os.environ.items() if k not in PULSE_VARIABLES}
    # As root the daemon needs --system=false and a private runtime directory and HOME.
    env.update(XDG_RUNTIME_DIR=str(runtime), HOME=str(home))
    command = [
        executable, "--daemonize=no", "--system=false", "-n", "--exit-idle-time=-1", "--use-pid-file=no",
        "--log-target=stderr",
        "-L", f"module-native-protocol-unix socket={sock} auth-anonymous=1",
        "-L", " ".join(["module-null-sink", *null_sink_arguments(SINK_NAME, 48000),
                        "sink_properties=device.description=SoftphoneTestSink"]),
        "-L", "module-always-sink",
    ]
    timeout_cmd = shutil.which("timeout")
    if timeout_cmd:
        command = [timeout_cmd, str(DAEMON_MAX_S)] + command
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(command, cwd=runtime, env=env, stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=subprocess.STDOUT)
    client_env = dict(env, PULSE_SERVER=f"unix:{sock}")
    server = PulseServer(proc.pid, runtime, f"unix:{sock}", SINK_NAME, f"{SINK_NAME}.monitor", log_path)
    saved = {k: os.environ.get(k) for k in PULSE_VARIABLES}
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _ready(sock, client_env):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"pulseaudio did not start (exit {proc.poll()}); log:\n{server.log_tail()}",
                            pytrace=False)
            time.sleep(0.1)
        os.environ.update(PULSE_SERVER=server.server, PULSE_SINK=server.sink, PULSE_SOURCE=server.source)
        yield server
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _stop(proc)
        shutil.rmtree(runtime, ignore_errors=True)


def _dominant_frequency(samples: np.ndarray, sample_rate: int) -> float:
    """The strongest frequency in ``samples``, refined between FFT bins by a parabola on the log spectrum."""
    x = np.asarray(samples, dtype=np.float64)
    x = x - x.mean()
    size = 1 << int(np.ceil(np.log2(len(x) * 4)))
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), size)) + 1e-12
    k = int(np.argmax(spectrum[1:-1])) + 1
    a, b, c = np.log(spectrum[k - 1:k + 2])
    shift = 0.5 * (a - c) / (a - 2 * b + c)
    return float((k + shift) * sample_rate / size)


@pytest.fixture
def dominant_frequency() -> Callable[[np.ndarray, int], float]:
    """``dominant_frequency(samples, sample_rate) -> Hz``."""
    return _dominant_frequency


# --------------------------------------------------------------------------- X server for window tests

XVFB_SCREEN = (1280, 720)
XVFB_MAX_S = 900  # the server ends by itself after this long, even if the test run is killed
X11_SOCKET_DIR = Path("/tmp/.X11-unix")


@dataclass(frozen=True)
class XServer:
    """A running private Xvfb; ``DISPLAY`` points at it while the fixture is active."""

    pid: int
    display: str  # ":N"
    width: int
    height: int
    log_path: Path

    def log_tail(self, chars: int = 3000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]


def _require_x(what: str, ok: bool, hint: str) -> None:
    if ok:
        return
    message = f"{what} is not available: {hint}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: the window tests must run)", pytrace=False)
    pytest.skip(message)


def _read_display_number(fd: int, proc: subprocess.Popen[bytes], deadline: float) -> int | None:
    """The display number Xvfb writes to ``-displayfd`` once it is ready for clients."""
    data = b""
    while time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            chunk = os.read(fd, 64)
            if not chunk:
                break
            data += chunk
            if data.endswith(b"\n"):
                break
    text = data.decode(errors="replace").strip()
    return int(text) if text.isdigit() else None


@pytest.fixture(scope="session")
def xvfb() -> Iterator[XServer]:
    """A private Xvfb on a display number it picks itself (``-displayfd``); ``DISPLAY`` points at it.

    Also requires ImageMagick's ``import`` (screenshots) and ``xdotool`` (keys). One
    server for the whole session: OpenCV's Qt windows stay bound to the first X display
    this process used. Stopped by its PID at the end. Without Xvfb the tests
    skip, unless the ``CI`` variable is set: then they fail.
    """
    executable = shutil.which("Xvfb")
    hint = "install the Debian packages xvfb imagemagick xdotool"
    _require_x("Xvfb", executable is not None, hint)
    missing = [tool for tool in ("import", "xdotool") if shutil.which(tool) is None]
    _require_x(" and ".join(missing), not missing, hint)
    assert executable is not None
    runtime = Path(tempfile.mkdtemp(prefix="sp-xvfb-"))
    log_path = runtime / "xvfb.log"
    read_fd, write_fd = os.pipe()
    width, height = XVFB_SCREEN
    command = [executable, "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24",
               "-nolisten", "tcp", "-noreset"]
    timeout_cmd = shutil.which("timeout")
    if timeout_cmd:
        command = [timeout_cmd, str(XVFB_MAX_S)] + command
    try:
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(command, cwd=runtime, stdin=subprocess.DEVNULL, stdout=log_file,
                                    stderr=subprocess.STDOUT, pass_fds=(write_fd,))
    finally:
        os.close(write_fd)
    saved = os.environ.get("DISPLAY")
    try:
        number = _read_display_number(read_fd, proc, time.monotonic() + START_TIMEOUT_S)
        socket_path = X11_SOCKET_DIR / f"X{number}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while number is not None and not socket_path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        if number is None or not socket_path.exists():
            log_text = log_path.read_text(errors="replace")[-3000:] if log_path.exists() else ""
            pytest.fail(f"Xvfb did not start (exit {proc.poll()}); log:\n{log_text}", pytrace=False)
        server = XServer(proc.pid, f":{number}", width, height, log_path)
        os.environ["DISPLAY"] = server.display
        yield server
    finally:
        os.close(read_fd)
        if saved is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = saved
        _stop(proc)
        shutil.rmtree(runtime, ignore_errors=True)
