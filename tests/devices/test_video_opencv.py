"""A video file as the camera through cv2.VideoCapture: pacing, looping, never blocking."""

from __future__ import annotations

import fractions
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from softphone.devices import VideoSource, open_video_source
from softphone.devices.video_opencv import OpenCVSource, compose, fit
from softphone.devices.video_pattern import read_pattern_index, render_pattern
from softphone.errors import ConfigError
from softphone.frames import VideoFrame


def _clip_avi(path: Path, frames: int, fps: float, width: int = 320, height: int = 240) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (width, height))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(render_pattern(i, width, height))
    writer.release()
    return path


def _clip_mp4(path: Path, frames: int, fps: int, width: int = 320, height: int = 240) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(render_pattern(i, width, height), format="bgr24")
            frame.pts = i
            frame.time_base = fractions.Fraction(1, fps)
            container.mux(stream.encode(frame.reformat(format="yuv420p")))
        container.mux(stream.encode(None))
    return path


def _collect(source: OpenCVSource, seconds: float) -> tuple[list[VideoFrame], float]:
    """Poll ``source`` for ``seconds``; the frames and the slowest ``read()``."""
    frames: list[VideoFrame] = []
    slowest = 0.0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        frame = source.read()
        slowest = max(slowest, time.perf_counter() - t0)
        if frame is not None:
            frames.append(frame)
        time.sleep(0.002)
    return frames, slowest


@pytest.fixture
def source_closer() -> list[OpenCVSource]:
    opened: list[OpenCVSource] = []
    yield opened
    for source in opened:
        source.close()


@pytest.mark.parametrize("fps", [10.0, 20.0, 30.0])
def test_a_file_plays_at_its_own_rate_and_loops(tmp_path: Path, fps: float, source_closer: list) -> None:
    frames_in_clip = int(fps * 0.75)
    clip = _clip_avi(tmp_path / "clip.avi", frames_in_clip, fps)
    source = OpenCVSource(str(clip), width=320, height=240, fps=99)
    source_closer.append(source)
    assert source.fps == pytest.approx(fps)
    frames, slowest = _collect(source, 2.0)
    assert abs(len(frames) - 2.0 * fps) <= 0.1 * 2.0 * fps, len(frames)
    assert slowest < 0.02, f"read() took {slowest * 1000:.1f} ms"
    assert [f.index for f in frames] == list(range(len(frames)))
    patterns = [read_pattern_index(f.image) for f in frames]
    assert patterns == [i % frames_in_clip for i in range(len(frames))], "the clip loops from its first frame"
    assert not source.finished


def test_once_plays_the_file_once_then_finishes(tmp_path: Path, source_closer: list) -> None:
    clip = _clip_avi(tmp_path / "clip.avi", 10, 25)
    source = OpenCVSource(f"{clip},once", width=320, height=240, fps=25)
    source_closer.append(source)
    frames, _ = _collect(source, 0.8)
    assert [read_pattern_index(f.image) for f in frames] == list(range(10))
    assert source.finished
    assert source.read() is None


def test_an_h264_file_by_name_scaled_to_the_requested_size(tmp_path: Path, source_closer: list) -> None:
    clip = _clip_mp4(tmp_path / "clip.mp4", 25, 25)
    source = open_video_source(f"opencv: {clip}", width=640, height=480, fps=30)
    assert isinstance(source, OpenCVSource) and isinstance(source, VideoSource)
    source_closer.append(source)
    assert source.fps == pytest.approx(25)
    frames, _ = _collect(source, 0.5)
    assert frames
    for frame in frames:
        assert frame.image.shape == (480, 640, 3)
    assert [read_pattern_index(f.image) for f in frames] == list(range(len(frames)))


def test_a_slow_reader_gets_the_newest_frame(tmp_path: Path, source_closer: list) -> None:
    clip = _clip_avi(tmp_path / "clip.avi", 100, 50)
    source = OpenCVSource(str(clip), width=320, height=240, fps=50)
    source_closer.append(source)
    time.sleep(0.5)
    frame = source.read()
    assert frame is not None and frame.index >= 20
    assert source.read() is None, "only the newest frame is kept"
    assert source.frames_dropped >= 15


def test_close_stops_the_capture_thread(tmp_path: Path) -> None:
    clip = _clip_avi(tmp_path / "clip.avi", 10, 25)
    source = OpenCVSource(str(clip), width=320, height=240, fps=25)
    t0 = time.monotonic()
    source.close()
    assert time.monotonic() - t0 < 1.0
    assert not source._thread.is_alive()
    source.close()


def test_missing_or_bad_sources_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        OpenCVSource(str(tmp_path / "nothing.mp4"), width=320, height=240, fps=25)
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(ConfigError, match="cannot read"):
        OpenCVSource(str(junk), width=320, height=240, fps=25)
    with pytest.raises(ConfigError, match="camera number or a video file"):
        OpenCVSource("", width=320, height=240, fps=25)


def test_a_missing_camera_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot open camera 9"):
        open_video_source("opencv: 9", width=320, height=240, fps=25)


def test_fit_crops_to_the_aspect_ratio_then_scales() -> None:
    wide = np.zeros((180, 320, 3), np.uint8)
    wide[:, 40:280] = 255  # the middle 4:3 part
    out = fit(wide, 160, 120)
    assert out.shape == (120, 160, 3) and out.min() == 255
    assert fit(wide, 320, 180) is wide


def test_compose_puts_the_preview_bottom_right() -> None:
    remote = VideoFrame(np.zeros((480, 640, 3), np.uint8))
    local = VideoFrame(np.full((240, 320, 3), 200, np.uint8))
    picture = compose(remote, local, 640, 480)
    assert picture.shape == (480, 640, 3)
    assert picture[460, 620].tolist() == [200, 200, 200]
    assert picture[20, 20].tolist() == [0, 0, 0] and picture[460, 20].tolist() == [0, 0, 0]
    assert remote.image.max() == 0, "the remote frame is not drawn on"
    waiting = compose(None, None, 320, 240)
    assert waiting.shape == (240, 320, 3) and waiting.max() > 0
