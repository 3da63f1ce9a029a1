"""Audio and video codecs: encoders and decoders chosen by registry name.

This package stays light: the implementations (numpy, PyAV, OpenCV) are imported only
when a ``create_*`` function builds one, through the ``"module:Class"`` path in
:mod:`softphone.codecs.registry`. Each audio implementation class offers
``encoder(*, ptime_ms, fmtp, bitrate)`` and ``decoder(*, fmtp)`` class methods; each
video one ``encoder(*, width, height, fps, bitrate, fmtp)`` and ``decoder(*, fmtp)``.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from softphone.codecs import registry
from softphone.errors import ConfigError
from softphone.frames import AudioFrame, VideoFrame
from softphone.sdp.model import parse_fmtp  # the implementations read the peer's a=fmtp with it

__all__ = [
    "AudioCodec",
    "AudioDecoder",
    "AudioEncoder",
    "CodecError",
    "VideoCodec",
    "VideoDecoder",
    "VideoEncoder",
    "audio_codec_names",
    "create_decoder",
    "create_encoder",
    "create_video_decoder",
    "create_video_encoder",
    "parse_fmtp",
    "video_codec_names",
]

# Payload formats in the audio table that carry no audio (RFC 4733 events).
NON_AUDIO = frozenset({"telephone-event"})


class CodecError(ValueError):
    """A payload or frame the codec cannot handle; callers count it and drop the packet."""


class AudioEncoder(Protocol):
    """Turns one ptime of PCM into one RTP payload, keeping its state across frames."""

    name: str
    sample_rate: int
    channels: int
    rtp_clock_rate: int

    def encode(self, frame: AudioFrame) -> bytes: ...


class AudioDecoder(Protocol):
    """Turns RTP payloads back into PCM and conceals missing ones."""

    name: str
    sample_rate: int
    channels: int

    def decode(self, payload: bytes) -> AudioFrame: ...

    def conceal(self, samples: int) -> AudioFrame: ...


class VideoEncoder(Protocol):
    """Turns pictures into bitstream frames, keeping its reference pictures across frames.

    ``encode`` returns ``[(data, keyframe)]``, normally one entry per picture: a VP8
    frame, an H.264/H.265 access unit in Annex B (parameter sets before each keyframe)
    or a complete JFIF file. Pictures of another size are scaled to ``width`` x
    ``height``; ``keyframe=True`` makes this very picture a keyframe.
    """

    name: str
    width: int
    height: int

    def encode(self, frame: VideoFrame, *, keyframe: bool = False) -> list[tuple[bytes, bool]]: ...

    def set_bitrate(self, bps: int) -> None:
        """Takes effect at the next frame, or at the next keyframe where the codec cannot change live."""


class VideoDecoder(Protocol):
    """Turns reassembled bitstream frames back into BGR pictures.

    ``decode`` raises :class:`CodecError` on a frame it cannot use and never takes the
    process down; after losses it resynchronises on the next keyframe.
    """

    name: str

    def decode(self, data: bytes) -> list[VideoFrame]: ...


class AudioCodec(Protocol):
    """An audio implementation entry of the registry (a class whose class methods build the coders)."""

    def encoder(self, *, ptime_ms: int, fmtp: str | None, bitrate: int | None) -> AudioEncoder: ...

    def decoder(self, *, fmtp: str | None) -> AudioDecoder: ...


class VideoCodec(Protocol):
    """A video implementation entry of the registry (a class whose class methods build the coders)."""

    def encoder(self, *, width: int, height: int, fps: float, bitrate: int, fmtp: str | None) -> VideoEncoder: ...

    def decoder(self, *, fmtp: str | None) -> VideoDecoder: ...


def audio_codec_names() -> list[str]:
    """Names that :func:`create_encoder` and :func:`create_decoder` accept, in preference order."""
    return [name for name in registry.names("audio") if name not in NON_AUDIO]


def _implementation(name: str) -> tuple[registry.CodecInfo, AudioCodec]:
    available = ", ".join(audio_codec_names())
    try:
        info = registry.lookup(name, "audio")
    except ConfigError:
        raise ConfigError(None, None, None, f"unknown audio codec {name!r}; available: {available}") from None
    if info.name in NON_AUDIO:
        raise ConfigError(
            None, None, None,
            f"{info.name!r} is not an audio codec (DTMF events: softphone.codecs.dtmf); available: {available}",
        )
    module_name, _, class_name = info.implementation.partition(":")
    module = importlib.import_module(module_name)
    implementation: AudioCodec = getattr(module, class_name)
    return info, implementation


def create_encoder(
    name: str, *, ptime_ms: int = 20, fmtp: str | None = None, bitrate: int | None = None
) -> AudioEncoder:
    """An encoder for the registry codec ``name`` (any case, or an rtpmap form like ``PCMU/8000``).

    ``fmtp`` is the peer's format parameters for that payload type. Unknown names raise
    ConfigError listing the available audio codecs; a ptime the codec cannot frame raises
    ConfigError too.
    """
    info, cls = _implementation(name)
    if ptime_ms <= 0:
        raise ConfigError(None, None, None, f"ptime must be positive, not {ptime_ms}")
    return cls.encoder(ptime_ms=ptime_ms, fmtp=fmtp, bitrate=bitrate)


def create_decoder(name: str, *, fmtp: str | None = None) -> AudioDecoder:
    """A decoder for the registry codec ``name``; same naming rules as :func:`create_encoder`."""
    _info, cls = _implementation(name)
    return cls.decoder(fmtp=fmtp)


def video_codec_names() -> list[str]:
    """Names that :func:`create_video_encoder` and :func:`create_video_decoder` accept, in preference order."""
    return registry.names("video")


def _video_implementation(name: str) -> VideoCodec:
    try:
        info = registry.lookup(name, "video")
    except ConfigError:
        available = ", ".join(video_codec_names())
        raise ConfigError(None, None, None, f"unknown video codec {name!r}; available: {available}") from None
    module_name, _, class_name = info.implementation.partition(":")
    module = importlib.import_module(module_name)
    implementation: VideoCodec = getattr(module, class_name)
    return implementation


def create_video_encoder(
    name: str, *, width: int, height: int, fps: float, bitrate: int, fmtp: str | None = None
) -> VideoEncoder:
    """An encoder for the registry video codec ``name`` (any case, or ``VP8/90000``).

    ``fmtp`` is the peer's format parameters for that payload type. Unknown names raise
    ConfigError listing the available video codecs; so does a size the codec cannot use.
    """
    cls = _video_implementation(name)
    return cls.encoder(width=width, height=height, fps=fps, bitrate=bitrate, fmtp=fmtp)


def create_video_decoder(name: str, *, fmtp: str | None = None) -> VideoDecoder:
    """A decoder for the registry video codec ``name``; same naming rules as :func:`create_video_encoder`."""
    cls = _video_implementation(name)
    return cls.decoder(fmtp=fmtp)
