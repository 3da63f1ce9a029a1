"""Motion JPEG for RTP (RFC 2435) through OpenCV's libjpeg.

Every frame is a complete baseline JFIF file (SOF0, 4:2:0 sampling, the standard
Huffman tables, no restart markers): exactly what RFC 2435 type 1 carries, so the
payload format can strip the headers and rebuild them on the far side. Every frame
is a keyframe.

There is no bitrate knob in JPEG, so the encoder steers the quality factor after each
frame towards the byte budget ``bitrate / 8 / fps``.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

from softphone.codecs import CodecError
from softphone.errors import ConfigError
from softphone.frames import VideoFrame

logger = logging.getLogger(__name__)

# RFC 2435 §3.1.5/§3.1.6: width and height are sent in 8-pixel units, one byte each.
MAX_DIMENSION = 2040
BLOCK = 8
QUALITY_MIN = 10
QUALITY_MAX = 95
QUALITY_START = 75
QUALITY_STEP = 3


def _bgr_image(frame: VideoFrame, width: int, height: int) -> np.ndarray:
    image: np.ndarray = frame.image  # checked below: frames carry whatever the source gave
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise CodecError(f"a video frame must be a uint8 numpy array, not {type(image).__name__}")
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    elif image.ndim != 3 or image.shape[2] != 3:
        raise CodecError(f"a video frame must be height x width x 3 (BGR), not {image.shape}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise CodecError("empty video frame")
    if image.shape[:2] != (height, width):
        shrinking = image.shape[0] * image.shape[1] > width * height
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return image


class JpegEncoder:
    """BGR pictures -> baseline 4:2:0 JFIF files, quality steered towards the bitrate."""

    name = "JPEG"

    def __init__(self, *, width: int, height: int, fps: float, bitrate: int) -> None:
        if not (0 < width <= MAX_DIMENSION and 0 < height <= MAX_DIMENSION) or width % BLOCK or height % BLOCK:
            raise ConfigError(
                None, None, None,
                f"JPEG over RTP needs a size in multiples of {BLOCK} up to {MAX_DIMENSION}, not {width}x{height}",
            )
        if fps <= 0:
            raise ConfigError(None, None, None, f"video frame rate must be positive, not {fps}")
        self.width = width
        self.height = height
        self.fps = float(fps)
        self.bitrate = max(1, int(bitrate))
        self.quality = QUALITY_START

    def set_bitrate(self, bps: int) -> None:
        """The next frames aim at ``bps``; the quality moves a step per frame."""
        self.bitrate = max(1, int(bps))

    def encode(self, frame: VideoFrame, *, keyframe: bool = False) -> list[tuple[bytes, bool]]:
        image = _bgr_image(frame, self.width, self.height)
        params = [
            cv2.IMWRITE_JPEG_QUALITY, self.quality,
            cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420,
            cv2.IMWRITE_JPEG_OPTIMIZE, 0,  # standard Huffman tables: RFC 2435 has no way to send others
            cv2.IMWRITE_JPEG_PROGRESSIVE, 0,
            cv2.IMWRITE_JPEG_RST_INTERVAL, 0,
        ]
        ok, buffer = cv2.imencode(".jpg", image, params)
        if not ok:
            raise CodecError("the JPEG encoder failed")
        data = buffer.tobytes()
        self._steer(len(data))
        return [(data, True)]

    def _steer(self, size: int) -> None:
        budget = self.bitrate / 8 / self.fps
        if size > budget * 1.1:
            self.quality = max(QUALITY_MIN, self.quality - QUALITY_STEP)
        elif size < budget * 0.8:
            self.quality = min(QUALITY_MAX, self.quality + QUALITY_STEP)


class JpegDecoder:
    """JFIF files (as the RFC 2435 depacketizer rebuilds them) -> BGR pictures."""

    name = "JPEG"

    def __init__(self) -> None:
        self._count = 0

    def decode(self, data: bytes) -> list[VideoFrame]:
        if not data:
            raise CodecError("empty JPEG frame")
        try:
            image = cv2.imdecode(np.frombuffer(bytes(data), dtype=np.uint8), cv2.IMREAD_COLOR)
        except cv2.error as exc:
            raise CodecError(f"bad JPEG frame ({len(data)} bytes): {exc}") from exc
        if image is None or image.ndim != 3:
            raise CodecError(f"bad JPEG frame ({len(data)} bytes)")
        frame = VideoFrame(image, index=self._count)
        self._count += 1
        return [frame]


class JpegCodec:
    """JPEG (RFC 2435, static payload type 26): the registry's implementation entry."""

    @classmethod
    def encoder(cls, *, width: int, height: int, fps: float, bitrate: int, fmtp: str | None = None) -> JpegEncoder:
        return JpegEncoder(width=width, height=height, fps=fps, bitrate=bitrate)

    @classmethod
    def decoder(cls, *, fmtp: str | None = None) -> JpegDecoder:
        return JpegDecoder()
