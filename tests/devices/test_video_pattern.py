"""The test pattern, its bar code, the null video devices, and video devices by name."""

from __future__ import annotations

import fractions
import random
import time

import cv2
import numpy as np
import pytest

from softphone.devices import VideoSink, VideoSource, open_video_sink, open_video_source, registry
from softphone.devices.video_pattern import (
    NullVideoSink,
    NullVideoSource,
    PatternSource,
    draw_index,
    read_pattern_index,
    render_pattern,
    strip_height,
)
from softphone.errors import ConfigError
from softphone.frames import VideoFrame

EDGE_VALUES = [0, 1, 2, 0x55555555, 0xAAAAAAAA, 2**31 - 1, 2**31, 2**32 - 1]


def _random_values(n: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(2**31) for _ in range(n)]


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
    assert decoded is not None
    return decoded


# --------------------------------------------------------------------------- bar code


@pytest.mark.parametrize("size", [(640, 480), (320, 240), (352, 288), (160, 120), (1280, 720)])
@pytest.mark.parametrize("value", EDGE_VALUES)
def test_index_round_trip_on_rendered_frames(size: tuple[int, int], value: int) -> None:
    assert read_pattern_index(render_pattern(value, *size)) == value


def test_index_is_taken_modulo_32_bits() -> None:
    assert read_pattern_index(render_pattern(2**32 + 5, 640, 480)) == 5


def test_thousand_random_indexes_survive_jpeg_50_and_downscaling() -> None:
    base = render_pattern(0, 640, 480)
    for value in _random_values(1000, seed=1):
        image = base.copy()
        draw_index(image, value)
        assert read_pattern_index(image) == value
        lossy = _jpeg(image, 50)
        assert read_pattern_index(lossy) == value, "after JPEG quality 50"
        small = cv2.resize(image, (320, 240), interpolation=cv2.INTER_AREA)
        assert read_pattern_index(small) == value, "after resizing to 320x240"


@pytest.mark.parametrize("interpolation", [cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_NEAREST, cv2.INTER_CUBIC])
@pytest.mark.parametrize("size", [(320, 240), (160, 120), (176, 144), (800, 600), (1024, 768)])
def test_index_survives_any_scaling(interpolation: int, size: tuple[int, int]) -> None:
    for value in _random_values(20, seed=size[0] + interpolation):
        scaled = cv2.resize(render_pattern(value, 640, 480), size, interpolation=interpolation)
        assert read_pattern_index(_jpeg(scaled, 50)) == value


def test_index_found_inside_a_bigger_picture() -> None:
    screen = np.full((720, 1280, 3), 230, np.uint8)  # a light window background around the picture
    screen[:40] = 60  # a dark tool bar above it
    screen[40:40 + 360, 100:100 + 480] = render_pattern(123456789, 480, 360)
    assert read_pattern_index(screen) == 123456789
    assert read_pattern_index(cv2.resize(screen, (960, 540), interpolation=cv2.INTER_AREA)) == 123456789


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((480, 640, 3), np.uint8),
        np.full((480, 640, 3), 255, np.uint8),
        np.full((480, 640, 3), 128, np.uint8),
        np.random.default_rng(7).integers(0, 256, (480, 640, 3), dtype=np.uint8),
        np.zeros((10, 10, 3), np.uint8),
    ],
    ids=["black", "white", "grey", "noise", "tiny"],
)
def test_no_index_in_pictures_without_a_code(image: np.ndarray) -> None:
    assert read_pattern_index(image) is None


def test_a_damaged_code_is_refused_not_misread() -> None:
    image = render_pattern(77, 640, 480)
    image[: strip_height(480), 580:] = 128  # the stop guard is gone
    assert read_pattern_index(image) is None


def test_code_reads_from_grey_and_bgra_images() -> None:
    image = render_pattern(4242, 640, 480)
    assert read_pattern_index(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)) == 4242
    assert read_pattern_index(cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)) == 4242


def _codec_round_trip(encoder: str, decoder: str, width: int, height: int, values: list[int]) -> list[int | None]:
    av = pytest.importorskip("av")
    enc = av.CodecContext.create(encoder, "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base = fractions.Fraction(1, 30)
    enc.framerate = fractions.Fraction(30, 1)
    enc.bit_rate = 500_000
    enc.gop_size = 120
    if encoder == "libx264":
        enc.options = {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline"}
    else:
        enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    dec = av.CodecContext.create(decoder, "r")
    decoded: list[np.ndarray] = []
    for i, value in enumerate([*values, None]):
        if value is None:
            packets = enc.encode(None)
        else:
            frame = av.VideoFrame.from_ndarray(render_pattern(value, width, height), format="bgr24")
            frame = frame.reformat(format="yuv420p")
            frame.pts = i
            packets = enc.encode(frame)
        for packet in packets:
            decoded.extend(f.to_ndarray(format="bgr24") for f in dec.decode(packet))
    assert len(decoded) == len(values)
    return [read_pattern_index(image) for image in decoded]


@pytest.mark.parametrize(("encoder", "decoder"), [("libvpx", "vp8"), ("libx264", "h264")])
@pytest.mark.parametrize("size", [(640, 480), (320, 240)])
def test_index_survives_video_coding_at_500_kbits(encoder: str, decoder: str, size: tuple[int, int]) -> None:
    values = _random_values(60, seed=size[0])
    assert _codec_round_trip(encoder, decoder, *size, values) == values


# --------------------------------------------------------------------------- pattern source


def test_pattern_frames_have_the_requested_format_and_move() -> None:
    source = PatternSource("", width=320, height=240, fps=200)
    frames: list[VideoFrame] = []
    deadline = time.monotonic() + 2
    while len(frames) < 5 and time.monotonic() < deadline:
        frame = source.read()
        if frame is not None:
            frames.append(frame)
        time.sleep(0.002)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    strip = strip_height(240)
    for a, b in zip(frames, frames[1:], strict=False):
        assert a.image.shape == (240, 320, 3) and a.image.dtype == np.uint8
        assert b.pts > a.pts
        moved = np.abs(a.image[strip:].astype(int) - b.image[strip:].astype(int)).sum(axis=2) > 60
        assert moved.sum() > 200, "the picture below the bar code should change from frame to frame"
        assert read_pattern_index(b.image) == b.index


def test_pattern_source_is_paced_and_read_never_blocks() -> None:
    fps = 25.0
    source = PatternSource("", width=640, height=480, fps=fps)
    frames = 0
    slowest_none = slowest_frame = 0.0
    start = time.monotonic()
    while time.monotonic() - start < 2.0:
        t0 = time.perf_counter()
        frame = source.read()
        spent = time.perf_counter() - t0
        if frame is None:
            slowest_none = max(slowest_none, spent)
        else:
            frames += 1
            slowest_frame = max(slowest_frame, spent)
        time.sleep(0.001)
    source.close()
    assert abs(frames - 2.0 * fps) <= 0.1 * 2.0 * fps, frames
    assert slowest_none < 0.005, slowest_none
    assert slowest_frame < 0.05, slowest_frame
    assert source.read() is None and not source.finished


def test_a_late_caller_gets_one_frame_not_a_burst() -> None:
    source = PatternSource("", width=160, height=120, fps=50)
    assert source.read() is not None
    time.sleep(0.3)  # 15 frame periods
    assert source.read() is not None
    assert source.read() is None


def test_pattern_argument_may_set_size_and_rate() -> None:
    source = PatternSource("320x240@15", width=640, height=480, fps=30)
    assert (source.width, source.height, source.fps) == (320, 240, 15.0)
    frame = source.read()
    assert frame is not None and frame.image.shape == (240, 320, 3)


@pytest.mark.parametrize("argument", ["big", "100x100", "640x480@0", "640x480@x"])
def test_bad_pattern_arguments_are_config_errors(argument: str) -> None:
    with pytest.raises(ConfigError):
        PatternSource(argument, width=640, height=480, fps=30)


def test_null_devices() -> None:
    source = NullVideoSource("", width=640, height=480, fps=30)
    assert source.read() is None and not source.finished
    source.close()
    sink = NullVideoSink("", width=640, height=480, fps=30)
    frame = VideoFrame(render_pattern(1, 160, 120))
    sink.write(frame)
    sink.preview(frame)
    assert (sink.frames_written, sink.frames_previewed, sink.closed) == (1, 1, False)
    sink.close()


# --------------------------------------------------------------------------- by name


def test_video_slots_in_the_registry() -> None:
    assert registry.drivers("video_source") == ["null", "opencv", "pattern"]
    assert registry.drivers("video_sink") == ["file", "null", "opencv"]
    assert registry.resolve("video_source", "opencv: clip.mp4") == (
        "opencv", "clip.mp4", "softphone.devices.video_opencv:OpenCVSource")
    assert registry.resolve("video_sink", "file: out.mp4")[2] == "softphone.devices.video_file:VideoFileSink"


def test_unknown_video_drivers_list_the_available_ones() -> None:
    with pytest.raises(ConfigError) as err:
        open_video_source("tone: 440", width=640, height=480, fps=30)
    assert str(err.value) == "unknown video source driver 'tone'; available: null, opencv, pattern"
    with pytest.raises(ConfigError, match="unknown video sink driver 'pattern'; available: file, null, opencv"):
        open_video_sink("pattern:", width=640, height=480, fps=30)


def test_opened_video_devices_follow_the_protocols() -> None:
    source = open_video_source("pattern:", width=320, height=240, fps=30)
    sink = open_video_sink("null:", width=320, height=240, fps=30)
    assert isinstance(source, VideoSource) and isinstance(sink, VideoSink)
    assert isinstance(open_video_source("null:", width=320, height=240, fps=30), VideoSource)
    frame = source.read()
    assert frame is not None
    sink.write(frame)
    sink.preview(frame)
    assert not sink.closed
    source.close()
    sink.close()


def test_bad_video_format_is_refused() -> None:
    with pytest.raises(ValueError):
        open_video_source("pattern:", width=640, height=0, fps=30)
    with pytest.raises(ValueError):
        open_video_sink("null:", width=640, height=480, fps=0)
