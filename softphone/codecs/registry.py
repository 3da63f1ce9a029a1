"""The codec table: names, RTP parameters and where each implementation lives.

Pure data. Implementations are named by import path and loaded by the media layer
only when a call uses them.
"""

from __future__ import annotations

import functools

from softphone.errors import ConfigError
from softphone.frozen import dataclass

VIDEO_FEEDBACK = ("nack", "nack pli", "ccm fir")


@dataclass(frozen=True)
class CodecInfo:
    """One codec: how it looks in SDP and which class implements it."""

    name: str
    kind: str
    encoding: str
    rtp_clock_rate: int
    sample_rate: int
    channels: int
    static_payload_type: int | None
    default_fmtp: str | None
    implementation: str
    rtcp_fb: tuple[str, ...] = ()

    @property
    def rtpmap(self) -> str:
        suffix = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.encoding}/{self.rtp_clock_rate}{suffix}"


AUDIO_CODECS: tuple[CodecInfo, ...] = (
    CodecInfo(
        # no useinbandfec=1: it says our decoder can use in-band FEC (RFC 7587 §6.1), and
        # FFmpeg's cannot, so peers need not spend the bits and CPU on it
        "opus", "audio", "opus", 48000, 48000, 2, None, None,
        "softphone.codecs.audio_av:OpusCodec",
    ),
    # RFC 3551 §4.5.2: G.722 samples at 16 kHz but its RTP clock rate is 8000.
    CodecInfo(
        "G722", "audio", "G722", 8000, 16000, 1, 9, None,
        "softphone.codecs.audio_av:G722Codec",
    ),
    CodecInfo(
        "PCMU", "audio", "PCMU", 8000, 8000, 1, 0, None,
        "softphone.codecs.g711:PcmuCodec",
    ),
    CodecInfo(
        "PCMA", "audio", "PCMA", 8000, 8000, 1, 8, None,
        "softphone.codecs.g711:PcmaCodec",
    ),
    CodecInfo(
        "telephone-event", "audio", "telephone-event", 8000, 8000, 1, None, "0-16",
        "softphone.codecs.dtmf:TelephoneEventCodec",
    ),
)

VIDEO_CODECS: tuple[CodecInfo, ...] = (
    CodecInfo(
        "VP8", "video", "VP8", 90000, 90000, 1, None, None,
        "softphone.codecs.video_av:Vp8Codec", VIDEO_FEEDBACK,
    ),
    CodecInfo(
        "H264", "video", "H264", 90000, 90000, 1, None,
        "profile-level-id=42e01f;packetization-mode=1",
        "softphone.codecs.video_av:H264Codec", VIDEO_FEEDBACK,
    ),
    CodecInfo(
        "H265", "video", "H265", 90000, 90000, 1, None, None,
        "softphone.codecs.video_av:H265Codec", VIDEO_FEEDBACK,
    ),
    CodecInfo(
        "JPEG", "video", "JPEG", 90000, 90000, 1, 26, None,
        "softphone.codecs.jpeg:JpegCodec", VIDEO_FEEDBACK,
    ),
)

ALL_CODECS: tuple[CodecInfo, ...] = AUDIO_CODECS + VIDEO_CODECS
KINDS = ("audio", "video")


def _table(kind: str | None) -> tuple[CodecInfo, ...]:
    if kind is None:
        return ALL_CODECS
    if kind == "audio":
        return AUDIO_CODECS
    if kind == "video":
        return VIDEO_CODECS
    raise ConfigError(None, None, None, f"unknown media kind {kind!r}; available: audio, video")


def names(kind: str) -> list[str]:
    """Codec names of one kind, in default preference order."""
    return [c.name for c in _table(kind)]


@functools.lru_cache(maxsize=256)
def lookup(name: str, kind: str | None = None) -> CodecInfo:
    """A codec by name, as "pcmu", "PCMU/8000" or "opus/48000/2" (any case).

    Unknown names raise ConfigError listing what is available.
    """
    table = _table(kind)
    wanted, *rate = name.strip().split("/")
    for codec in table:
        if wanted.lower() not in (codec.name.lower(), codec.encoding.lower()):
            continue
        if _rates_match(codec, rate):
            return codec
    what = f"{kind} codec" if kind else "codec"
    available = ", ".join(c.name for c in table)
    raise ConfigError(None, None, None, f"unknown {what} {name!r}; available: {available}")


def _rates_match(codec: CodecInfo, parts: list[str]) -> bool:
    if not parts:
        return True
    if not all(p.strip().isdigit() for p in parts) or len(parts) > 2:
        return False
    if int(parts[0]) != codec.rtp_clock_rate:
        return False
    return len(parts) == 1 or int(parts[1]) == codec.channels


def find(encoding: str, clock_rate: int, channels: int = 1) -> CodecInfo | None:
    """The codec an rtpmap (encoding name, clock rate, channels) describes, if we have it."""
    for codec in ALL_CODECS:
        if (
            codec.encoding.lower() == encoding.lower()
            and codec.rtp_clock_rate == clock_rate
            and codec.channels == channels
        ):
            return codec
    return None
