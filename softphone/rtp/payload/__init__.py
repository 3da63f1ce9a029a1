"""Video RTP payload formats: an encoded frame into RTP payloads and back.

    packets = packetizer("VP8").packetize(frame, mtu=1200)   # [(payload, marker), ...]
    frames = depacketizer("VP8").push(rtp_packet)             # frames this packet completes

VP8 (RFC 7741), H.264 (RFC 6184, packetization-mode=1), H.265 (RFC 7798) and
JPEG (RFC 2435)."""
from __future__ import annotations

from collections.abc import Callable

from .base import Depacketizer, EncodedFrame, FrameDepacketizer, Packetizer, PayloadError, split_evenly
from .h264 import H264Depacketizer, H264Packetizer
from .h265 import H265Depacketizer, H265Packetizer
from .jpeg import JpegDepacketizer, JpegPacketizer
from .vp8 import Vp8Depacketizer, Vp8Packetizer

PACKETIZERS: dict[str, Callable[[], Packetizer]] = {
    "VP8": Vp8Packetizer,
    "H264": H264Packetizer,
    "H265": H265Packetizer,
    "JPEG": JpegPacketizer,
}
DEPACKETIZERS: dict[str, Callable[[], Depacketizer]] = {
    "VP8": Vp8Depacketizer,
    "H264": H264Depacketizer,
    "H265": H265Depacketizer,
    "JPEG": JpegDepacketizer,
}


def packetizer(name: str) -> Packetizer:
    """A packetizer for the encoding name of an rtpmap ("VP8", "H264", "H265", "JPEG"), any case."""
    try:
        return PACKETIZERS[name.upper()]()
    except KeyError:
        raise ValueError(f"no RTP payload format {name!r}; available: {', '.join(PACKETIZERS)}") from None


def depacketizer(name: str) -> Depacketizer:
    """A depacketizer for the encoding name of an rtpmap ("VP8", "H264", "H265", "JPEG"), any case."""
    try:
        return DEPACKETIZERS[name.upper()]()
    except KeyError:
        raise ValueError(f"no RTP payload format {name!r}; available: {', '.join(DEPACKETIZERS)}") from None


__all__ = [
    "DEPACKETIZERS",
    "PACKETIZERS",
    "Depacketizer",
    "EncodedFrame",
    "FrameDepacketizer",
    "H264Depacketizer",
    "H264Packetizer",
    "H265Depacketizer",
    "H265Packetizer",
    "JpegDepacketizer",
    "JpegPacketizer",
    "Packetizer",
    "PayloadError",
    "Vp8Depacketizer",
    "Vp8Packetizer",
    "depacketizer",
    "packetizer",
    "split_evenly",
]
