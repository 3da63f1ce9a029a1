"""Recording video to files: write pattern frames, read the file back, find the frames again."""

from __future__ import annotations

import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from softphone.devices import open_video_sink
from softphone.devices.video_file import VideoFileSink
from softphone.devices.video_pattern import read_pattern_index, render_pattern
from softphone.errors import ConfigError
from softphone.frames import VideoFrame

FPS = 25.0


def _write_paced(sink: VideoFileSink, count: int, width: int, height: int, fps: float = FPS) -> list[np.ndarray]:
    """Write ``count`` pattern frames at ``fps``; the pictures written."""
    start = time.monotonic()
    images = []
    for i in range(count):
        images.append(render_pattern(i, width, height))
        sink.write(VideoFrame(images[-1], pts=i / fps, index=i))
        delay = start + (i + 1) / fps - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    return images


def _read_with_pyav(path: Path) -> tuple[str, list[np.ndarray], list[float]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        images, times = [], []
        for frame in container.decode(stream):
            images.append(frame.to_ndarray(format="bgr24"))
            times.append(float(frame.time))
        return stream.codec_context.name, images, times


def _read_with_opencv(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened()
    images = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        images.append(image)
    capture.release()
    return images


@pytest.mark.parametrize(
    ("name", "codec"),
    [("out.mp4", "h264"), ("out.mkv", "ffv1"), ("out.webm", "vp8"), ("out.avi", "mjpeg")],
)
def test_round_trip(tmp_path: Path, name: str, codec: str) -> None:
    path = tmp_path / name
    sink = VideoFileSink(str(path), width=320, height=240, fps=FPS)
    written = _write_paced(sink, 40, 320, 240)
    sink.close()
    assert sink.error is None
    assert sink.frames_written + sink.frames_dropped == 40
    assert sink.frames_written >= 36, "a 320x240 recording at 25 fps should keep up"
    found_codec, images, times = _read_with_pyav(path)
    assert found_codec == codec
    assert len(images) == sink.frames_written
    assert all(image.shape == (240, 320, 3) for image in images)
    indexes = [read_pattern_index(image) for image in images]
    assert None not in indexes
    assert indexes == sorted(set(indexes)) and indexes[0] == 0 and indexes[-1] == 39
    if codec == "ffv1":  # lossless: the very pictures
        for index, image in zip(indexes, images, strict=True):
            assert np.array_equal(image, written[index])
    if codec != "mjpeg":  # PyAV files keep the arrival times
        assert times == sorted(times)
        assert times[-1] - times[0] == pytest.approx(39 / FPS, abs=0.25)
    if name.endswith((".mp4", ".avi")):  # also what OpenCV players see
        assert [read_pattern_index(image) for image in _read_with_opencv(path)] == indexes


def test_frames_of_another_size_are_scaled_to_the_first(tmp_path: Path) -> None:
    path = tmp_path / "sizes.mp4"
    sink = open_video_sink(f"file: {path}", width=640, height=480, fps=FPS)
    sink.write(VideoFrame(render_pattern(0, 320, 240)))
    time.sleep(0.1)
    sink.write(VideoFrame(render_pattern(1, 640, 480)))
    time.sleep(0.1)
    sink.write(VideoFrame(render_pattern(2, 161, 121)))  # odd sizes too
    sink.close()
    _, images, _ = _read_with_pyav(path)
    assert [image.shape for image in images] == [(240, 320, 3)] * 3
    assert [read_pattern_index(image) for image in images] == [0, 1, 2]


def test_write_never_blocks_and_drops_the_oldest(tmp_path: Path) -> None:
    path = tmp_path / "burst.webm"
    sink = VideoFileSink(str(path), width=640, height=480, fps=30)
    frames = [VideoFrame(render_pattern(i, 640, 480), index=i) for i in range(60)]
    slowest = 0.0
    for frame in frames:
        t0 = time.perf_counter()
        sink.write(frame)
        slowest = max(slowest, time.perf_counter() - t0)
    assert slowest < 0.02, slowest
    sink.close()
    assert sink.frames_dropped > 0, "a burst faster than VP8 can encode should drop frames"
    assert sink.frames_written + sink.frames_dropped == 60
    _, images, _ = _read_with_pyav(path)
    indexes = [read_pattern_index(image) for image in images]
    assert len(indexes) == sink.frames_written and indexes[-1] == 59, "the newest frame is never dropped"
    assert indexes == sorted(indexes)


def test_close_twice_and_write_after_close(tmp_path: Path) -> None:
    path = tmp_path / "twice.avi"
    sink = VideoFileSink(str(path), width=320, height=240, fps=FPS)
    sink.write(VideoFrame(render_pattern(5, 320, 240)))
    sink.close()
    sink.write(VideoFrame(render_pattern(6, 320, 240)))
    sink.close()
    assert [read_pattern_index(image) for image in _read_with_opencv(path)] == [5]
    assert not sink.closed


@pytest.mark.parametrize("argument", ["", "out.gif", "no/such/folder/out.mp4"])
def test_bad_file_names_are_config_errors(tmp_path: Path, argument: str) -> None:
    with pytest.raises(ConfigError):
        VideoFileSink(str(tmp_path / argument) if argument else "", width=320, height=240, fps=FPS)
