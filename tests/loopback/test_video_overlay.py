"""The call's figures over the remote picture in the OpenCV window, on a private Xvfb: present
during a call (duration, bitrates, loss, jitter, RTT, MOS, fps), hidden and shown again with ``s``."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.loopback.test_video_window import WINDOW_TITLE, _expose, _geometry, _screenshot, _window


def _overlay_region(window: int, path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The window as on screen, and its bottom-left corner where the figures are drawn."""
    x, y, width, height = _geometry(window)
    shot = _screenshot(path)[max(0, y):y + height, max(0, x):x + width]
    h, w = shot.shape[:2]
    return shot, shot[int(h * 0.78):int(h * 0.95), int(w * 0.03):int(w * 0.35)]


def _overlay_shown(region: np.ndarray) -> bool | None:
    """True: the darkened box with white text; False: the pattern's bright colour bars; None: neither
    (the window not painted yet)."""
    grey = cv2.cvtColor(region, cv2.COLOR_BGR2GRAY)
    median = float(np.median(grey))
    if median < 110 and int((grey > 200).sum()) > 50:
        return True
    if median > 150:
        return False
    return None


def _wait_for(window: int, wanted: bool, tmp_path: Path, label: str,
              timeout: float = 10.0) -> np.ndarray:
    deadline = time.monotonic() + timeout
    seen: list[bool | None] = []
    shot = None
    while time.monotonic() < deadline:
        shot, region = _overlay_region(window, tmp_path / f"{label}{len(seen)}.png")
        state = _overlay_shown(region)
        seen.append(state)
        if state is wanted:
            return shot
        if state is None and len(seen) % 5 == 0:
            _expose(window)
        time.sleep(0.3)
    if shot is not None:
        cv2.imwrite(str(tmp_path / f"{label}-last.png"), shot)
    raise AssertionError(f"overlay {'shown' if wanted else 'hidden'} never seen: {seen} (see {tmp_path})")


def _key(window: int, key: str) -> None:
    subprocess.run(["xdotool", "windowfocus", "--sync", str(window), "key", key], check=True, timeout=20)


@pytest.mark.timeout(100)
def test_figures_over_the_picture_and_s_toggles_them(softphone: Callable[..., object], xvfb: object,
                                                      tmp_path: Path) -> None:
    answerer = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", "--once",
                         "--audio-source", "tone: 440", "--audio-sink", "null:", "--audio-codec", "PCMU",
                         "--video-codec", "VP8", "--video-source", "pattern:", "--video-sink", "opencv:")
    caller = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call",
                       f"sip:bob@127.0.0.1:{answerer.port()}", "--duration", "60", "--audio-source", "tone: 330",
                       "--audio-sink", "null:", "--audio-codec", "PCMU", "--video-codec", "VP8",
                       "--video-source", "pattern:", "--video-sink", "null:")
    answerer.wait_event("first_video_frame", timeout=20)
    window = _window(WINDOW_TITLE, answerer.pid)
    time.sleep(4)  # a few seconds of figures, the round trip measured by RTCP

    shown = _wait_for(window, True, tmp_path, "shown")
    cv2.imwrite(str(tmp_path / "video-window.png"), shown)
    _key(window, "s")
    _wait_for(window, False, tmp_path, "hidden")
    _key(window, "s")
    _wait_for(window, True, tmp_path, "again")

    _key(window, "q")
    assert answerer.wait(20) == 0, answerer.describe()
    assert caller.wait(20) == 0, caller.describe()
