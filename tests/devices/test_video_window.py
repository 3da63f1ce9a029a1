"""The OpenCV window sink on a private Xvfb: what it shows (from a screenshot), q / Esc, closing it."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from softphone.devices import VideoSink, open_video_sink
from softphone.devices.video_opencv import WindowSink
from softphone.devices.video_pattern import read_pattern_index, render_pattern
from softphone.errors import ConfigError
from softphone.frames import VideoFrame

PREVIEW_INDEX = 4242
TIMEOUT_S = 5.0


def _run(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, timeout=20, check=False).stdout


def _window_ids(title: str) -> list[int]:
    return [int(w) for w in _run("xdotool", "search", "--onlyvisible", "--name", f"^{re.escape(title)}$").split()]


def _wait_for_window(title: str) -> int:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        ids = _window_ids(title)
        if ids:
            return ids[-1]
        time.sleep(0.05)
    raise AssertionError(f"no visible window named {title!r}")


def _geometry(window: int) -> tuple[int, int, int, int]:
    values = dict(line.split("=", 1) for line in _run("xdotool", "getwindowgeometry", "--shell", str(window)).split())
    return int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])


def _expose(window: int) -> None:
    """Unmap and map ``window`` again, as a window manager would on taking it over.

    Without a window manager, Qt now and then misses the first Expose of a window that
    replaces a destroyed one and never paints it (the X server shows black); a fresh map
    gives it a new Expose. Minimising and restoring a window does the same.
    """
    subprocess.run(["xdotool", "windowunmap", "--sync", str(window), "windowmap", "--sync", str(window)],
                   check=True, timeout=20, capture_output=True)
    time.sleep(0.2)


def _screenshot(path: Path) -> np.ndarray:
    subprocess.run(["import", "-window", "root", str(path)], check=True, timeout=20, capture_output=True)
    image = cv2.imread(str(path))
    assert image is not None
    return image


def _wait_until(condition: object, timeout: float = TIMEOUT_S) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def _send_wm_delete_window(window: int) -> None:
    """What a window manager sends when the user clicks the close button (ICCCM WM_DELETE_WINDOW)."""
    name = ctypes.util.find_library("X11")
    if name is None:
        pytest.skip("libX11 is not available")
    x11 = ctypes.CDLL(name)
    x11.XOpenDisplay.restype = ctypes.c_void_p
    x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x11.XInternAtom.restype = ctypes.c_ulong
    x11.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]

    class ClientMessage(ctypes.Structure):
        _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                    ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                    ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]

    class XEvent(ctypes.Union):
        _fields_ = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

    x11.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(XEvent)]
    x11.XFlush.argtypes = [ctypes.c_void_p]
    x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
    display = x11.XOpenDisplay(None)
    assert display
    try:
        event = XEvent()
        event.xclient.type = 33  # ClientMessage
        event.xclient.window = window
        event.xclient.message_type = x11.XInternAtom(display, b"WM_PROTOCOLS", 0)
        event.xclient.format = 32
        event.xclient.data[0] = x11.XInternAtom(display, b"WM_DELETE_WINDOW", 0)
        x11.XSendEvent(display, window, 0, 0, ctypes.byref(event))
        x11.XFlush(display)
    finally:
        x11.XCloseDisplay(display)


@pytest.fixture
def sinks(xvfb: object) -> Iterator[list[VideoSink]]:
    """Window sinks opened by a test, closed afterwards whatever happens."""
    opened: list[VideoSink] = []
    yield opened
    for sink in opened:
        sink.close()


def _open(sinks: list[VideoSink], title: str, width: int = 640, height: int = 480) -> VideoSink:
    sink = open_video_sink("opencv:", width=width, height=height, fps=30, title=title)
    sinks.append(sink)
    return sink


def test_the_window_shows_the_remote_picture_with_the_preview_inset(
        sinks: list[VideoSink], tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    sink = _open(sinks, "softphone remote")
    assert isinstance(sink, WindowSink) and isinstance(sink, VideoSink)
    slowest = 0.0
    last = 0
    for i in range(30):
        last = 1000 + i
        remote = VideoFrame(render_pattern(last, 640, 480), pts=i / 30, index=i)
        local = VideoFrame(render_pattern(PREVIEW_INDEX, 320, 240), pts=i / 30, index=i)
        t0 = time.perf_counter()
        sink.write(remote)
        sink.preview(local)
        slowest = max(slowest, time.perf_counter() - t0)
        time.sleep(1 / 30)
    assert slowest < 0.02, f"write()+preview() took {slowest * 1000:.1f} ms"
    window = _wait_for_window("softphone remote")
    _expose(window)
    assert not sink.closed, "an unmapped (minimised) window is not a closed one"
    x, y, width, height = _geometry(window)
    assert (width, height) == (640, 480)
    screen = _screenshot(tmp_path / "screen.png")
    assert read_pattern_index(screen) == last
    picture = screen[y:y + height, x:x + width]
    assert read_pattern_index(picture) == last
    assert read_pattern_index(picture[height // 2:, width // 2:]) == PREVIEW_INDEX, "preview inset bottom-right"
    assert read_pattern_index(picture[height // 2:, : width // 2]) is None, "and nowhere else"
    assert not sink.closed
    t0 = time.monotonic()
    sink.close()
    assert time.monotonic() - t0 < 2.0
    assert _wait_until(lambda: not _window_ids("softphone remote"), 2.0), "close() removes the window"
    sink.close()
    if os.path.isdir(os.environ.get("QT_QPA_FONTDIR", "")):
        assert "QFontDatabase" not in capfd.readouterr().err


@pytest.mark.parametrize("key", ["q", "Escape"])
def test_q_or_escape_sets_closed(sinks: list[VideoSink], key: str) -> None:
    title = f"softphone key {key}"
    sink = _open(sinks, title, 320, 240)
    sink.write(VideoFrame(render_pattern(1, 320, 240)))
    window = _wait_for_window(title)
    time.sleep(0.2)
    assert not sink.closed
    subprocess.run(["xdotool", "windowfocus", "--sync", str(window), "key", key], check=True, timeout=20)
    assert _wait_until(lambda: sink.closed), f"pressing {key} should set closed"
    sink.close()
    assert not _window_ids(title)


def test_closing_the_window_sets_closed(sinks: list[VideoSink]) -> None:
    sink = _open(sinks, "softphone close button", 320, 240)
    sink.write(VideoFrame(render_pattern(2, 320, 240)))
    window = _wait_for_window("softphone close button")
    time.sleep(0.2)
    _send_wm_delete_window(window)
    assert _wait_until(lambda: sink.closed), "closing the window should set closed"
    time.sleep(0.2)
    assert not _window_ids("softphone close button"), "writing more frames must not bring the window back"
    sink.write(VideoFrame(render_pattern(3, 320, 240)))
    time.sleep(0.2)
    assert not _window_ids("softphone close button")
    sink.close()


def test_two_windows_at_once_and_one_after_another(sinks: list[VideoSink], tmp_path: Path) -> None:
    first = _open(sinks, "softphone twin", 320, 240)
    second = _open(sinks, "softphone twin", 320, 240)
    assert isinstance(first, WindowSink) and isinstance(second, WindowSink)
    assert (first.title, second.title) == ("softphone twin", "softphone twin (2)")
    first.write(VideoFrame(render_pattern(11, 320, 240)))
    second.write(VideoFrame(render_pattern(22, 320, 240)))
    _wait_for_window("softphone twin")
    _wait_for_window("softphone twin (2)")
    first.close()
    second.close()
    third = _open(sinks, "softphone twin", 320, 240)
    third.write(VideoFrame(render_pattern(33, 320, 240)))
    window = _wait_for_window("softphone twin")
    _expose(window)
    x, y, width, height = _geometry(window)
    assert read_pattern_index(_screenshot(tmp_path / "third.png")[y:y + height, x:x + width]) == 33


def test_waiting_screen_before_the_first_frame(sinks: list[VideoSink], tmp_path: Path) -> None:
    _open(sinks, "softphone waiting", 320, 240)
    window = _wait_for_window("softphone waiting")
    _expose(window)
    x, y, width, height = _geometry(window)
    picture = _screenshot(tmp_path / "waiting.png")[y:y + height, x:x + width]
    assert picture.max() > 100 and np.median(picture) < 20, "dark screen with a message"


def test_without_a_display_the_window_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(ConfigError, match="needs a display"):
        open_video_sink("opencv:", width=320, height=240, fps=30)


_ORDER_SCRIPT = """
import sys, time
if sys.argv[1] == "av-first":
    import av
import softphone.devices as devices
import av
from softphone.errors import ConfigError
start = time.monotonic()
try:
    sink = devices.open_video_sink("opencv:", width=320, height=240, fps=30, title="softphone order")
except ConfigError as exc:
    print("refused", round(time.monotonic() - start, 1), exc)
else:
    sink.close()
    print("opened", round(time.monotonic() - start, 1), av.codec.Codec("libx264", "w").name)
"""


@pytest.mark.parametrize(("order", "expected"), [("devices-first", "opened"), ("av-first", "refused")])
def test_window_and_pyav_in_one_process(xvfb: object, order: str, expected: str) -> None:
    """PyAV and OpenCV bundle clashing libxcb copies: devices first works, PyAV first is refused, never a hang."""
    result = subprocess.run([sys.executable, "-c", _ORDER_SCRIPT, order], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    words = result.stdout.split()
    assert words[0] == expected, result.stdout + result.stderr[-2000:]
    assert float(words[1]) < 5.0
    if expected == "refused":
        assert "libxcb" in result.stdout
