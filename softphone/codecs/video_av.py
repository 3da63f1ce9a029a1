"""VP8, H.264 and H.265 through PyAV (FFmpeg's libvpx, libx264 and libx265 encoders).

Encoders take BGR :class:`VideoFrame` pictures and return ``(bitstream, keyframe)``
pairs, one per picture: a VP8 frame, or an H.264/H.265 access unit as an Annex B
byte stream whose keyframes carry the parameter sets in band. Decoders take what the
depacketizer reassembled and keep their reference pictures across calls.

Every encoder runs with real-time settings: no look-ahead, no B-frames, one picture
in gives one bitstream out. Colour conversion and scaling go through OpenCV, which is
several times faster than swscale for BGR <-> I420 (both use BT.601, limited range).
"""

from __future__ import annotations

import base64
import binascii
import fractions
import logging
from typing import Any, Literal

import av
import cv2
import numpy as np
from av.codec.context import ThreadType
from av.video.codeccontext import VideoCodecContext
from av.video.frame import PictureType

from softphone.codecs import CodecError, parse_fmtp
from softphone.errors import ConfigError
from softphone.frames import VideoFrame

logger = logging.getLogger(__name__)

KEYFRAME_INTERVAL_S = 4.0
MIN_BITRATE = 30_000
MAX_BITRATE = 20_000_000
VBV_BUFFER_S = 0.5  # rate-control buffer: how far the encoder may stray from the target
ENCODER_THREADS = 1  # two threads on a busy 2-core machine wait for each other (VP8: 45 ms instead of 3)
VP8_CPU_USED = 12  # libvpx real-time speed (4..16; higher is faster and coarser)
H264_LEVEL_MAX_MACROBLOCKS = 3600  # level 3.1 (profile-level-id 42e01f): up to 1280x720
H264_LEVEL_MAX_MB_PER_S = 108_000
START_CODE = b"\x00\x00\x01"


def annexb_nal_types(data: bytes, *, hevc: bool = False) -> list[int]:
    """NAL unit types of an Annex B byte stream, in order (H.264 or, with ``hevc``, H.265)."""
    types = []
    start = data.find(START_CODE)
    while start >= 0 and start + 3 < len(data):
        header = data[start + 3]
        types.append((header >> 1) & 0x3F if hevc else header & 0x1F)
        start = data.find(START_CODE, start + 3)
    return types


def _annexb_from_base64(values: list[str]) -> bytes:
    """Parameter sets from SDP ``sprop-*`` values (base64, comma separated) as Annex B."""
    out = b""
    for value in values:
        for item in value.split(","):
            item = item.strip()
            if not item:
                continue
            try:
                out += b"\x00\x00\x00\x01" + base64.b64decode(item, validate=True)
            except (binascii.Error, ValueError):
                logger.warning("ignoring a bad parameter set in the peer's fmtp: %r", item)
    return out


def _check_size(width: int, height: int, fps: float) -> None:
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ConfigError(None, None, None, f"video size must be positive and even, not {width}x{height}")
    if fps <= 0:
        raise ConfigError(None, None, None, f"video frame rate must be positive, not {fps}")


def _clamp_bitrate(bps: int) -> int:
    return max(MIN_BITRATE, min(int(bps), MAX_BITRATE))


def _bgr_image(frame: VideoFrame, width: int, height: int) -> np.ndarray:
    """The frame's picture as a contiguous BGR array of exactly ``width`` x ``height``."""
    image = frame.image
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
    return np.ascontiguousarray(image)


def _to_bgr(frame: av.VideoFrame) -> np.ndarray:
    """A decoded av.VideoFrame as a BGR array."""
    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        return cv2.cvtColor(frame.to_ndarray(), cv2.COLOR_YUV2BGR_I420)
    return np.asarray(frame.to_ndarray(format="bgr24"))


def _create_context(codec_name: str, mode: Literal["r", "w"]) -> VideoCodecContext:
    """An FFmpeg video encoder (``"w"``) or decoder (``"r"``) context; ConfigError when the build lacks it."""
    what = "encoder" if mode == "w" else "decoder"
    try:
        context = av.CodecContext.create(codec_name, mode)
    except (av.error.FFmpegError, ValueError) as exc:
        raise ConfigError(None, None, None, f"this FFmpeg build has no {codec_name} {what}") from exc
    if not isinstance(context, VideoCodecContext):
        raise ConfigError(None, None, None, f"{codec_name} is not a video {what}")
    return context


class AvVideoEncoder:
    """BGR pictures -> bitstream around one FFmpeg encoder context.

    ``set_bitrate`` changes the rate live where FFmpeg passes the change on to the
    library (libx264's ABR target); otherwise the encoder is re-opened with the new
    rate at the next keyframe, which is at most one keyframe interval away (or at
    once, when the caller asks for a keyframe).
    """

    name = ""
    codec_name = ""
    live_bitrate = False

    def __init__(self, *, width: int, height: int, fps: float, bitrate: int, fmtp: str | None = None) -> None:
        _check_size(width, height, fps)
        self.width = width
        self.height = height
        self.fps = float(fps)
        self.bitrate = _clamp_bitrate(bitrate)
        self.fmtp = parse_fmtp(fmtp)
        self.keyframe_interval = max(1, round(KEYFRAME_INTERVAL_S * self.fps))
        self._pending_bitrate: int | None = None
        self._frames_since_keyframe = 0
        self._pts = 0
        self._context = self._open(self.bitrate)

    # -- per codec ---------------------------------------------------------------

    def _options(self, bitrate: int) -> dict[str, str]:
        raise NotImplementedError

    # -- common ------------------------------------------------------------------

    def _open(self, bitrate: int) -> VideoCodecContext:
        context = _create_context(self.codec_name, "w")
        context.width = self.width
        context.height = self.height
        context.pix_fmt = "yuv420p"
        rate = fractions.Fraction(self.fps).limit_denominator(1001)
        context.framerate = rate
        context.time_base = 1 / rate
        context.bit_rate = bitrate
        context.gop_size = self.keyframe_interval
        context.max_b_frames = 0
        context.thread_count = ENCODER_THREADS
        context.options = self._options(bitrate)
        try:
            context.open()
        except av.error.FFmpegError as exc:
            raise ConfigError(None, None, None, f"cannot open the {self.name} encoder: {exc}") from exc
        return context

    def set_bitrate(self, bps: int) -> None:
        """Aim for ``bps`` bits per second from the next frame (or the next keyframe)."""
        bps = _clamp_bitrate(bps)
        if bps == self.bitrate:
            self._pending_bitrate = None
        elif self._can_change_live(bps):
            self._context.bit_rate = bps
            self.bitrate = bps
            self._pending_bitrate = None
        else:
            self._pending_bitrate = bps

    def _can_change_live(self, bps: int) -> bool:
        return self.live_bitrate

    def encode(self, frame: VideoFrame, *, keyframe: bool = False) -> list[tuple[bytes, bool]]:
        """One picture -> ``[(bitstream, is_keyframe)]``; ``keyframe`` forces one on this picture."""
        image = _bgr_image(frame, self.width, self.height)
        keyframe_due = keyframe or self._frames_since_keyframe + 1 >= self.keyframe_interval
        if self._pending_bitrate is not None and keyframe_due:
            self._reopen(self._pending_bitrate)
        yuv = np.asarray(cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420), dtype=np.uint8)
        av_frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
        av_frame.pts = self._pts
        self._pts += 1
        if keyframe:
            av_frame.pict_type = PictureType.I
        try:
            packets = self._context.encode(av_frame)
        except av.error.FFmpegError as exc:
            raise CodecError(f"{self.name} encoder failed: {exc}") from exc
        out = [(bytes(packet), bool(packet.is_keyframe)) for packet in packets]
        if any(key for _data, key in out):
            self._frames_since_keyframe = 0
        else:
            self._frames_since_keyframe += 1
        return out

    def _reopen(self, bps: int) -> None:
        logger.debug("%s: re-opening the encoder at %d bit/s", self.name, bps)
        self._context = self._open(bps)
        self.bitrate = bps
        self._pending_bitrate = None
        self._pts = 0


class Vp8Encoder(AvVideoEncoder):
    """VP8 (RFC 7741) through libvpx: real-time deadline, CBR, error resilient."""

    name = "VP8"
    codec_name = "libvpx"

    def _options(self, bitrate: int) -> dict[str, str]:
        return {
            "deadline": "realtime",
            "cpu-used": str(VP8_CPU_USED),
            "lag-in-frames": "0",
            "error-resilient": "default",
            "auto-alt-ref": "0",
            # minrate == maxrate == bit_rate selects libvpx's CBR mode.
            "minrate": str(bitrate),
            "maxrate": str(bitrate),
            "bufsize": str(int(bitrate * VBV_BUFFER_S)),
            "max-intra-rate": "300",  # a keyframe may cost at most 3 average frames
            "undershoot-pct": "95",
            "overshoot-pct": "15",
        }


class H264Encoder(AvVideoEncoder):
    """H.264 constrained baseline (profile-level-id 42e01f) through libx264, Annex B.

    x264 repeats SPS and PPS before every IDR picture. A peer that offers
    packetization-mode=0 gets slices that fit one RTP packet each.
    """

    name = "H264"
    codec_name = "libx264"
    live_bitrate = True
    max_slice_bytes = 1188  # 1200-byte RTP payloads minus a little headroom

    def __init__(self, **kwargs: Any) -> None:
        self._vbv_max = 0
        super().__init__(**kwargs)

    def _can_change_live(self, bps: int) -> bool:
        # FFmpeg passes a new ABR target on to x264; the VBV ceiling set at open stays.
        return bps <= self._vbv_max

    def _options(self, bitrate: int) -> dict[str, str]:
        self._vbv_max = bitrate
        options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "profile": "baseline",
            "forced-idr": "1",
            "maxrate": str(bitrate),
            "bufsize": str(int(bitrate * VBV_BUFFER_S)),
        }
        macroblocks = ((self.width + 15) // 16) * ((self.height + 15) // 16)
        if macroblocks <= H264_LEVEL_MAX_MACROBLOCKS and macroblocks * self.fps <= H264_LEVEL_MAX_MB_PER_S:
            options["level"] = "3.1"
        if self.fmtp and self.fmtp.get("packetization-mode", "0") == "0":
            options["x264-params"] = f"slice-max-size={self.max_slice_bytes}"
        return options


class H265Encoder(AvVideoEncoder):
    """H.265 Main (RFC 7798) through libx265, Annex B with VPS/SPS/PPS on every IRAP picture."""

    name = "H265"
    codec_name = "libx265"

    def _options(self, bitrate: int) -> dict[str, str]:
        kbps = bitrate // 1000
        params = f"log-level=error:repeat-headers=1:vbv-maxrate={kbps}:vbv-bufsize={int(kbps * VBV_BUFFER_S)}"
        return {"preset": "ultrafast", "tune": "zerolatency", "forced-idr": "1", "x265-params": params}


class AvVideoDecoder:
    """Reassembled bitstream -> BGR pictures around one FFmpeg decoder context.

    Slice threading only: frame threading would hold pictures back by a frame per
    thread. FFmpeg conceals missing references itself, so after a loss the decoder
    returns degraded pictures or raises :class:`CodecError` until the next keyframe
    resynchronises it.
    """

    name = ""
    codec_name = ""

    def __init__(self, parameter_sets: bytes = b"") -> None:
        self._parameter_sets = parameter_sets  # from the SDP, sent ahead until the first picture
        self._count = 0
        self._context = self._open()

    def _open(self) -> VideoCodecContext:
        context = _create_context(self.codec_name, "r")
        context.thread_type = ThreadType.SLICE
        return context

    def _has_picture(self, data: bytes) -> bool:
        """Whether ``data`` holds coded picture data (not parameter sets alone)."""
        return True

    def decode(self, data: bytes) -> list[VideoFrame]:
        """One reassembled frame -> the pictures it completes (usually one)."""
        if not data:
            raise CodecError(f"empty {self.name} frame")
        data = bytes(data)
        if self._parameter_sets and not self._count:
            data = self._parameter_sets + data
        try:
            frames = self._context.decode(av.Packet(data))
        except av.error.EOFError as exc:
            self._context = self._open()
            raise CodecError(f"{self.name} decoder was reset: {exc}") from exc
        except av.error.FFmpegError as exc:
            raise CodecError(f"bad {self.name} frame ({len(data)} bytes): {exc}") from exc
        if not frames:
            if self._context.has_b_frames == 0 and self._has_picture(data):
                raise CodecError(f"{self.name} frame of {len(data)} bytes decoded to no picture")
            return []
        out = []
        for frame in frames:
            try:
                image = _to_bgr(frame)
            except (av.error.FFmpegError, ValueError, cv2.error) as exc:
                raise CodecError(f"cannot convert a decoded {self.name} picture: {exc}") from exc
            out.append(VideoFrame(image, index=self._count))
            self._count += 1
        return out


class Vp8Decoder(AvVideoDecoder):
    name = "VP8"
    codec_name = "vp8"


class H264Decoder(AvVideoDecoder):
    name = "H264"
    codec_name = "h264"

    def _has_picture(self, data: bytes) -> bool:
        return any(1 <= t <= 5 for t in annexb_nal_types(data))


class H265Decoder(AvVideoDecoder):
    name = "H265"
    codec_name = "hevc"

    def _has_picture(self, data: bytes) -> bool:
        return any(t < 32 for t in annexb_nal_types(data, hevc=True))


class Vp8Codec:
    """VP8: the registry's implementation entry."""

    @classmethod
    def encoder(cls, *, width: int, height: int, fps: float, bitrate: int, fmtp: str | None = None) -> Vp8Encoder:
        return Vp8Encoder(width=width, height=height, fps=fps, bitrate=bitrate, fmtp=fmtp)

    @classmethod
    def decoder(cls, *, fmtp: str | None = None) -> Vp8Decoder:
        return Vp8Decoder()


class H264Codec:
    """H.264 (RFC 6184): the registry's implementation entry; ``sprop-parameter-sets`` primes the decoder."""

    @classmethod
    def encoder(cls, *, width: int, height: int, fps: float, bitrate: int, fmtp: str | None = None) -> H264Encoder:
        return H264Encoder(width=width, height=height, fps=fps, bitrate=bitrate, fmtp=fmtp)

    @classmethod
    def decoder(cls, *, fmtp: str | None = None) -> H264Decoder:
        params = parse_fmtp(fmtp)
        return H264Decoder(_annexb_from_base64([params.get("sprop-parameter-sets", "")]))


class H265Codec:
    """H.265 (RFC 7798): the registry's implementation entry; ``sprop-vps/sps/pps`` prime the decoder."""

    @classmethod
    def encoder(cls, *, width: int, height: int, fps: float, bitrate: int, fmtp: str | None = None) -> H265Encoder:
        return H265Encoder(width=width, height=height, fps=fps, bitrate=bitrate, fmtp=fmtp)

    @classmethod
    def decoder(cls, *, fmtp: str | None = None) -> H265Decoder:
        params = parse_fmtp(fmtp)
        sets = [params.get(key, "") for key in ("sprop-vps", "sprop-sps", "sprop-pps")]
        return H265Decoder(_annexb_from_base64(sets))
