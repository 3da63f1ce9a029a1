"""G.722 and Opus through PyAV (FFmpeg's ``g722`` codec and ``libopus``).

Each encoder and decoder owns one FFmpeg codec context for its whole life, so the
ADPCM (G.722) and predictive (Opus) state carries across frames.

Opus loss concealment runs libopus's own PLC: a payload made of a TOC byte alone
is a 0-byte Opus frame, which libopus decodes by concealing from its previous state
(RFC 6716 §3.2.1: such frames are "DTX or lost"). An empty payload cannot be used:
FFmpeg takes it as end of stream. FFmpeg does not expose libopus's FEC decoding, so
we do not ask peers for in-band FEC, and add it only for a peer that asks for it.
"""

from __future__ import annotations

import logging
import sys
from array import array
from typing import Any, Literal

import av
import numpy as np

from softphone.codecs import CodecError, parse_fmtp
from softphone.codecs.g711 import RepeatFadeConcealer, check_frame
from softphone.errors import ConfigError
from softphone.frames import AudioFrame

logger = logging.getLogger(__name__)

OPUS_RATE = 48000
OPUS_PTIMES = (10, 20, 40, 60)
OPUS_DEFAULT_BITRATE = 32000
OPUS_EXPECTED_LOSS_PERCENT = 10  # tells libopus how much FEC to spend
G722_SAMPLE_RATE = 16000
G722_CLOCK_RATE = 8000  # RFC 3551 §4.5.2
_LITTLE_ENDIAN = sys.byteorder == "little"
# RFC 6716 §3.1 TOC configurations 28-31: CELT-only, fullband, 2.5/5/10/20 ms.
# The decoder conceals in its previous mode; the TOC only sets the length.
_PLC_TOC = ((960, bytes([31 << 3])), (480, bytes([30 << 3])), (240, bytes([29 << 3])), (120, bytes([28 << 3])))


def _native(pcm: bytes) -> bytes:
    """Little-endian int16 samples in this machine's byte order (a big-endian one's)."""
    samples = array("h", pcm)
    samples.byteswap()
    return samples.tobytes()


def _create_context(names: tuple[str, ...], mode: Literal["r", "w"]) -> Any:
    for name in names:
        try:
            return av.CodecContext.create(name, mode)
        except (av.error.FFmpegError, ValueError):  # codec missing from this FFmpeg build
            continue
    what = "encoder" if mode == "w" else "decoder"
    raise ConfigError(None, None, None, f"this FFmpeg build has no {' or '.join(names)} {what}")


def _pcm(frames: list[Any]) -> bytes:
    """Decoded frames as one channel of little-endian int16 samples: a single packed s16 mono
    frame (what libopus and G.722 give) is copied out as it is, anything else is converted."""
    if len(frames) == 1 and _LITTLE_ENDIAN:
        frame = frames[0]
        if frame.format.name == "s16" and len(frame.layout.channels) == 1:
            return memoryview(frame.planes[0])[: frame.samples * 2].tobytes()
    pcm = np.concatenate([_mono_s16(f) for f in frames])
    return pcm.astype("<i2", copy=False).tobytes()


def _mono_s16(frame: Any) -> np.ndarray:
    """An av.AudioFrame as one channel of int16 samples (averaging channels if needed)."""
    array = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:
        array = array.reshape(-1, channels).T
    if np.issubdtype(array.dtype, np.floating):
        array = np.clip(np.rint(array * 32768.0), -32768, 32767)
    if channels > 1:
        array = array.astype(np.int32).mean(axis=0)
    return np.asarray(array, dtype=np.int16).reshape(-1)


class _AvEncoder:
    """A PCM -> payload encoder around one open FFmpeg context."""

    channels = 1

    def __init__(self, name: str, sample_rate: int, rtp_clock_rate: int, ptime_ms: int, context: Any) -> None:
        self.name = name
        self.sample_rate = sample_rate
        self.rtp_clock_rate = rtp_clock_rate
        self.ptime_ms = ptime_ms
        self.frame_samples = sample_rate * ptime_ms // 1000
        self._context = context
        self._pts = 0
        # one frame whose samples each encode overwrites: the encoder is done with it when
        # encode returns (FFmpeg drops its reference once the packet is out)
        self._frame = av.AudioFrame(format="s16", layout="mono", samples=self.frame_samples)
        self._frame.sample_rate = sample_rate

    def encode(self, frame: AudioFrame) -> bytes:
        check_frame(frame, self.sample_rate, self.frame_samples)
        av_frame = self._frame
        av_frame.planes[0].update(frame.pcm if _LITTLE_ENDIAN else _native(frame.pcm))
        av_frame.pts = self._pts
        self._pts += self.frame_samples
        try:
            packets = self._context.encode(av_frame)
        except av.error.FFmpegError as exc:
            raise CodecError(f"{self.name} encoder failed: {exc}") from exc
        if len(packets) != 1:
            raise CodecError(f"{self.name} encoder returned {len(packets)} packets for one frame")
        return bytes(packets[0])


class _AvDecoder:
    """A payload -> PCM decoder around one FFmpeg context; rebuilt if FFmpeg ends the stream."""

    channels = 1

    def __init__(self, name: str, sample_rate: int, codec_names: tuple[str, ...]) -> None:
        self.name = name
        self.sample_rate = sample_rate
        self._codec_names = codec_names
        self._context = self._open()

    def _open(self) -> Any:
        context = _create_context(self._codec_names, "r")
        context.sample_rate = self.sample_rate
        context.layout = "mono"
        context.format = "s16"
        return context

    def _decode_packet(self, data: bytes) -> bytes:
        try:
            frames = self._context.decode(av.Packet(data))
        except av.error.EOFError as exc:
            self._context = self._open()
            raise CodecError(f"{self.name} decoder was reset: {exc}") from exc
        except av.error.FFmpegError as exc:
            raise CodecError(f"bad {self.name} payload ({len(data)} bytes): {exc}") from exc
        if not frames:
            raise CodecError(f"{self.name} payload of {len(data)} bytes decoded to nothing")
        return _pcm(frames)

    def decode(self, payload: bytes) -> AudioFrame:
        if not payload:
            raise CodecError(f"empty {self.name} payload")
        pcm = self._decode_packet(bytes(payload))
        self._decoded(pcm)
        return AudioFrame(pcm, self.sample_rate)

    def _decoded(self, pcm: bytes) -> None:
        """Hook: a payload decoded to ``pcm``."""


class G722Encoder(_AvEncoder):
    """16 kHz PCM -> G.722 at 64 kbit/s (160 bytes per 20 ms)."""


class G722Decoder(_AvDecoder):
    """G.722 -> 16 kHz PCM; losses repeat the last period, fading out."""

    def __init__(self) -> None:
        super().__init__("G722", G722_SAMPLE_RATE, ("g722",))
        self._concealer = RepeatFadeConcealer(G722_SAMPLE_RATE)

    def _decoded(self, pcm: bytes) -> None:
        self._concealer.remember(pcm)

    def conceal(self, samples: int) -> AudioFrame:
        return AudioFrame(self._concealer.conceal(samples), self.sample_rate)


class G722Codec:
    """G.722 (RFC 3551 §4.5.2): the registry's implementation entry."""

    @classmethod
    def encoder(cls, *, ptime_ms: int = 20, fmtp: str | None = None, bitrate: int | None = None) -> G722Encoder:
        samples = G722_SAMPLE_RATE * ptime_ms // 1000
        if G722_SAMPLE_RATE * ptime_ms % 1000 or samples % 2:
            raise ConfigError(None, None, None, f"G722 cannot use ptime {ptime_ms} ms")
        context = _create_context(("g722",), "w")
        context.sample_rate = G722_SAMPLE_RATE
        context.layout = "mono"
        context.format = "s16"
        context.options = {"frame_size": str(samples)}
        context.open()
        return G722Encoder("G722", G722_SAMPLE_RATE, G722_CLOCK_RATE, ptime_ms, context)

    @classmethod
    def decoder(cls, *, fmtp: str | None = None) -> G722Decoder:
        return G722Decoder()


class OpusEncoder(_AvEncoder):
    """48 kHz mono PCM -> Opus (RFC 7587), VoIP mode, in-band FEC unless the peer refuses it."""

    def __init__(self, ptime_ms: int, context: Any, bitrate: int, fec: bool) -> None:
        super().__init__("opus", OPUS_RATE, OPUS_RATE, ptime_ms, context)
        self.bitrate = bitrate
        self.fec = fec


class OpusDecoder(_AvDecoder):
    """Opus -> 48 kHz mono PCM (stereo streams are downmixed by libopus); PLC by libopus."""

    def __init__(self) -> None:
        super().__init__("opus", OPUS_RATE, ("libopus", "opus"))

    def conceal(self, samples: int) -> AudioFrame:
        if samples <= 0:
            return AudioFrame(b"", OPUS_RATE)
        chunks: list[bytes] = []
        produced = 0
        while produced < samples:
            remaining = samples - produced
            toc = next((t for size, t in _PLC_TOC if size <= remaining), _PLC_TOC[-1][1])
            try:
                pcm = self._decode_packet(toc)
            except CodecError as exc:
                logger.debug("opus concealment failed: %s", exc)
                break
            chunks.append(pcm)
            produced += len(pcm) // 2
        pcm = b"".join(chunks)[: samples * 2]
        return AudioFrame(pcm + bytes(samples * 2 - len(pcm)), OPUS_RATE)


class OpusCodec:
    """Opus (RFC 7587): the registry's implementation entry.

    ``fmtp`` is the peer's: ``maxaveragebitrate`` caps the bitrate, ``useinbandfec=1``
    (its decoder can use in-band FEC; RFC 7587 §6.1: "If no value is specified,
    useinbandfec is assumed to be 0") turns FEC on, ``cbr=1`` asks for constant
    bitrate. We always send mono (``stereo=0`` semantics), which every Opus decoder
    accepts.
    """

    @classmethod
    def encoder(cls, *, ptime_ms: int = 20, fmtp: str | None = None, bitrate: int | None = None) -> OpusEncoder:
        if ptime_ms not in OPUS_PTIMES:
            raise ConfigError(
                None, None, None, f"opus cannot use ptime {ptime_ms} ms; use one of {', '.join(map(str, OPUS_PTIMES))}"
            )
        params = parse_fmtp(fmtp)
        rate = bitrate or OPUS_DEFAULT_BITRATE
        if params.get("maxaveragebitrate", "").isdigit():
            rate = min(rate, int(params["maxaveragebitrate"]))
        rate = max(6000, min(rate, 510000))
        fec = params.get("useinbandfec") == "1"
        context = _create_context(("libopus",), "w")
        context.sample_rate = OPUS_RATE
        context.layout = "mono"
        context.format = "s16"
        context.bit_rate = rate
        context.options = {
            "application": "voip",
            "frame_duration": str(ptime_ms),
            "fec": "1" if fec else "0",
            "packet_loss": str(OPUS_EXPECTED_LOSS_PERCENT if fec else 0),
            # constrained VBR, libopus's own default (and baresip's and PJSIP's): FFmpeg's "on"
            # is unconstrained, which sent a steady tone at 45 kbit/s when asked for 32
            "vbr": "off" if params.get("cbr") == "1" else "constrained",
        }
        context.open()
        return OpusEncoder(ptime_ms, context, rate, fec)

    @classmethod
    def decoder(cls, *, fmtp: str | None = None) -> OpusDecoder:
        return OpusDecoder()
