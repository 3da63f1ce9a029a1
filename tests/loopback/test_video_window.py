"""A call shown in the OpenCV window on a private Xvfb: the remote picture on screen, and
``q`` in the window ends the call."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from softphone.devices.video_pattern import read_pattern_index

WINDOW_TITLE = "softphone"


def _run(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, timeout=20, check=False).stdout


def _window(title: str, pid: int, timeout: float = 15.0) -> int:
    """The visible window named `title` that process `pid` owns (its ``_NET_WM_PID``): another
    phone on the same display may show a window of the same name."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ids = _run("xdotool", "search", "--all", "--onlyvisible", "--pid", str(pid),
                   "--name", f"^{re.escape(title)}$").split()
        if ids:
            return int(ids[-1])
        time.sleep(0.1)
    raise AssertionError(f"no visible window named {title!r} of process {pid}; {_windows()}")


def _windows() -> str:
    """What the X server shows: each visible window with its name and process, and the focus."""
    lines = []
    for window in _run("xdotool", "search", "--onlyvisible", "--name", ".").split():
        name = _run("xdotool", "getwindowname", window).strip()
        pid = _run("xdotool", "getwindowpid", window).strip()
        lines.append(f"{window} {name!r} pid {pid or '?'}")
    focus = _run("xdotool", "getwindowfocus").strip()
    return f"visible windows: {lines}; focus: {focus}"


def _geometry(window: int) -> tuple[int, int, int, int]:
    values = dict(line.split("=", 1) for line in _run("xdotool", "getwindowgeometry", "--shell", str(window)).split())
    return int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])


def _screenshot(path: Path) -> np.ndarray:
    subprocess.run(["import", "-window", "root", str(path)], check=True, timeout=20, capture_output=True)
    image = cv2.imread(str(path))
    assert image is not None, f"unreadable screenshot {path}"
    return image


def _expose(window: int) -> None:
    """Unmap and map the window again, as a window manager would on taking it over: without
    one, Qt now and then misses a window's first Expose and never paints it (black)."""
    subprocess.run(["xdotool", "windowunmap", "--sync", str(window), "windowmap", "--sync", str(window)],
                   check=True, timeout=20, capture_output=True)
    time.sleep(0.2)


def _index_in_window(window: int, path: Path) -> tuple[int | None, np.ndarray]:
    x, y, width, height = _geometry(window)
    screen = _screenshot(path)
    region = screen[max(0, y):y + height, max(0, x):x + width]
    return read_pattern_index(region), region


@pytest.mark.timeout(90)
def test_the_window_shows_the_remote_pattern_and_q_ends_the_call(softphone, xvfb, tmp_path):
    answerer = softphone("-v", "--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "answer", "--auto",
                         "--once", "--audio-source", "silence:", "--audio-sink", "null:", "--video-codec", "VP8",
                         "--video-source", "null:", "--video-sink", "opencv:")
    caller = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call",
                       f"sip:bob@127.0.0.1:{answerer.port()}", "--duration", "40", "--audio-source", "silence:",
                       "--audio-sink", "null:", "--video-codec", "VP8", "--video-source", "pattern:",
                       "--video-sink", "null:")
    answerer.wait_event("first_video_frame", timeout=20)
    window = _window(WINDOW_TITLE, answerer.pid)

    # the remote pattern is on screen, and moving: its frame counter goes up
    seen: list[int] = []
    region = None
    shots = 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(set(seen)) < 2:
        index, region = _index_in_window(window, tmp_path / f"screen{shots}.png")
        shots += 1
        if index is not None:
            seen.append(index)
        elif shots % 5 == 0:
            _expose(window)
        else:
            time.sleep(0.2)
    if region is not None:
        cv2.imwrite(str(tmp_path / "window.png"), region)
    assert len(set(seen)) >= 2, f"pattern counters read from the window: {seen} in {shots} screenshots " \
                                f"(see {tmp_path})\n{answerer.describe()}"
    assert seen == sorted(seen), seen
    assert caller.running(), caller.describe()

    # q in the window: the answerer hangs up by itself, quickly
    pressed = time.monotonic()
    subprocess.run(["xdotool", "windowfocus", "--sync", str(window), "key", "q"], check=True, timeout=20)
    try:
        end = answerer.wait_event("call_end", timeout=10)
    except AssertionError as exc:
        raise AssertionError(f"q sent to window {window}; {_windows()}\n{exc}") from None
    took = time.monotonic() - pressed
    assert took < 3.0, f"the call ended {took:.1f} s after q"
    assert answerer.wait(20) == 0, answerer.describe()
    assert caller.wait(20) == 0, caller.describe()
    assert end.get("result") == "completed" and end.get("reason") == "local hangup", end
    assert answerer.find_events("window_closed"), answerer.describe()
    # the answerer sent the BYE: the caller's call ended long before its 40 s
    assert caller.summary["timeline"]["bye"] < 30, caller.summary["timeline"]
    assert caller.summary["result"] == "completed", caller.summary
    print("seen", seen, "end", {k: end.get(k) for k in ("result", "reason", "sip_code")}, "took", round(took, 2))
