"""The call's figures drawn over the remote picture of the OpenCV window (drawing only, no display)."""

from __future__ import annotations

import numpy as np

from softphone.devices.video_opencv import OVERLAY_SHADE, compose, draw_overlay
from softphone.frames import VideoFrame

LINES = ("00:42", "audio PCMU tx 64 rx 64 kbit/s loss 0.0%", "      jitter 1.2 ms rtt 3 ms MOS 4.38",
         "video VP8 tx 800 rx 790 kbit/s loss 0.0%", "      jitter 0.3 ms rtt 3 ms 30 fps 640x480")


def _grey(width: int = 640, height: int = 480, level: int = 200) -> VideoFrame:
    return VideoFrame(np.full((height, width, 3), level, np.uint8), pts=0.0, index=0)


def test_the_overlay_darkens_the_bottom_left_and_writes_in_white() -> None:
    plain = compose(_grey(), None, 640, 480)
    shown = compose(_grey(), None, 640, 480, LINES)
    changed = np.argwhere((plain != shown).any(axis=2))
    top, left = changed.min(axis=0)
    bottom, right = changed.max(axis=0)
    assert left < 20 and bottom > 460 and top > 240, (top, left, bottom, right)  # bottom-left
    assert right < 640 * 3 // 4, right  # left of the preview inset
    box = shown[top:bottom + 1, left:right + 1]
    shade = round(200 * OVERLAY_SHADE)
    assert (np.abs(box.astype(int) - shade) <= 1).all(axis=2).mean() > 0.6  # mostly the darkened picture
    assert (box >= 250).all(axis=2).sum() > 500  # and white text
    assert (shown[:top] == plain[:top]).all()  # the rest untouched


def test_the_overlay_scales_down_to_fit_a_small_picture() -> None:
    small = np.full((120, 160, 3), 200, np.uint8)
    draw_overlay(small, LINES, 120)
    changed = np.argwhere((small != 200).any(axis=2))
    assert changed[:, 1].max() < 120


def test_no_overlay_lines_no_change() -> None:
    assert (compose(_grey(), None, 640, 480, ()) == compose(_grey(), None, 640, 480)).all()
