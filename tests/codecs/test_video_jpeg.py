"""JPEG (RFC 2435) through OpenCV: round trip, the JFIF layout RTP needs, rate steering, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from softphone.codecs import CodecError, create_video_decoder, create_video_encoder
from softphone.errors import ConfigError
from softphone.frames import VideoFrame

W, H, FPS = 640, 480, 30


def picture(i: int, width: int = W, height: int = H) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    image = np.dstack([
        ((x + 4 * i) % 256).astype(np.uint8),
        ((y + 2 * i) % 256).astype(np.uint8),
        (128 + 60 * np.sin((x + y + 3 * i) / 40.0)).astype(np.uint8),
    ])
    left = (8 * i) % (width - 80)
    image[height // 4 : height // 4 + 100, left : left + 80] = (0, 0, 255)
    return image


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def segments(data: bytes) -> dict[int, bytes]:
    """JPEG marker -> segment body, for the markers before the scan data (ITU T.81 §B.1.1)."""
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    found: dict[int, bytes] = {}
    pos = 2
    while True:
        assert data[pos] == 0xFF
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        found.setdefault(marker, data[pos + 4 : pos + 2 + length])
        pos += 2 + length
        if marker == 0xDA:  # SOS: entropy-coded data follows
            return found


def test_round_trip_quality_and_size() -> None:
    encoder = create_video_encoder("jpeg", width=W, height=H, fps=FPS, bitrate=8_000_000)
    decoder = create_video_decoder("JPEG")
    values = []
    for i in range(10):
        ((data, key),) = encoder.encode(VideoFrame(picture(i)))
        assert key
        (out,) = decoder.decode(data)
        assert out.image.shape == (H, W, 3) and out.index == i
        values.append(psnr(out.image, picture(i)))
    print(f"JPEG: mean PSNR {np.mean(values):.1f} dB")
    assert min(values) > 30.0


def test_output_is_baseline_4_2_0_jfif_with_standard_tables() -> None:
    encoder = create_video_encoder("JPEG", width=W, height=H, fps=FPS, bitrate=2_000_000)
    ((data, _key),) = encoder.encode(VideoFrame(picture(0)))
    found = segments(data)
    assert found[0xE0].startswith(b"JFIF\x00")
    assert 0xC0 in found  # SOF0, baseline DCT
    assert not {0xC1, 0xC2, 0xC3, 0xDD} & set(found)  # no extended/progressive/lossless, no restart interval
    sof = found[0xC0]
    height, width = int.from_bytes(sof[1:3], "big"), int.from_bytes(sof[3:5], "big")
    precision, components = sof[0], sof[5]
    assert (precision, width, height, components) == (8, W, H, 3)
    sampling = [sof[6 + 3 * c + 1] for c in range(3)]
    assert sampling == [0x22, 0x11, 0x11]  # 4:2:0, RFC 2435 type 1
    assert 0xC4 in found and 0xDB in found


def test_frames_of_another_size_are_scaled() -> None:
    encoder = create_video_encoder("JPEG", width=320, height=240, fps=FPS, bitrate=1_000_000)
    decoder = create_video_decoder("JPEG")
    for width, height in [(640, 480), (160, 120), (333, 201)]:
        ((data, _key),) = encoder.encode(VideoFrame(picture(0, width, height)))
        assert decoder.decode(data)[0].image.shape == (240, 320, 3)


def test_bitrate_steers_the_frame_size() -> None:
    encoder = create_video_encoder("JPEG", width=W, height=H, fps=FPS, bitrate=10_000_000)
    high = [len(encoder.encode(VideoFrame(picture(i)))[0][0]) for i in range(25)]
    encoder.set_bitrate(300_000)
    low = [len(encoder.encode(VideoFrame(picture(i)))[0][0]) for i in range(25)]
    print(f"JPEG: {np.mean(high[-5:]):.0f} -> {np.mean(low[-5:]):.0f} bytes per frame")
    assert np.mean(low[-5:]) < np.mean(high[-5:]) / 2


def test_decoder_rejects_bad_frames() -> None:
    encoder = create_video_encoder("JPEG", width=W, height=H, fps=FPS, bitrate=2_000_000)
    ((data, _key),) = encoder.encode(VideoFrame(picture(0)))
    decoder = create_video_decoder("JPEG")
    rng = np.random.default_rng(3)
    for bad in (b"", rng.bytes(500), b"\xff\xd8" + rng.bytes(500), bytes(100)):
        with pytest.raises(CodecError):
            decoder.decode(bad)
    try:
        out = decoder.decode(data[: len(data) // 2])
        assert out[0].image.shape == (H, W, 3)
    except CodecError:
        pass
    assert decoder.decode(data)[0].image.shape == (H, W, 3)


@pytest.mark.parametrize(("width", "height"), [(636, 480), (640, 484), (2048, 480), (0, 480)])
def test_sizes_rtp_cannot_carry_are_config_errors(width: int, height: int) -> None:
    with pytest.raises(ConfigError, match="multiples of 8"):
        create_video_encoder("JPEG", width=width, height=height, fps=FPS, bitrate=1_000_000)
