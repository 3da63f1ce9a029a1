"""Audio devices by name: ``open_audio_source("tone: 440", ...)``, ``open_audio_sink("file: out.wav", ...)``.

Drivers are looked up in :mod:`softphone.devices.registry` and imported only when a
device is opened; importing this package loads neither numpy nor PortAudio.

Every driver class is constructed as ``Class(device, *, sample_rate, channels,
frame_samples)`` where ``device`` is the part of the spec after the colon.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Protocol, runtime_checkable

from softphone.devices import registry
from softphone.errors import ConfigError
from softphone.frames import AudioFrame

log = logging.getLogger(__name__)

__all__ = [
    "AudioSink",
    "AudioSource",
    "list_audio_devices",
    "open_audio_sink",
    "open_audio_source",
]


@runtime_checkable
class AudioSource(Protocol):
    """Where outgoing audio comes from: a microphone, a tone, a file."""

    sample_rate: int
    channels: int
    frame_samples: int

    def read(self) -> AudioFrame:
        """Exactly ``frame_samples`` samples; never blocks; silence when nothing is ready."""
        ...

    @property
    def finished(self) -> bool:
        """True once a source that does not loop has nothing more to give."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class AudioSink(Protocol):
    """Where incoming audio goes: a speaker, a file, nowhere."""

    sample_rate: int
    channels: int
    frame_samples: int

    def write(self, frame: AudioFrame) -> None:
        """Queue one frame; never blocks; a device that cannot keep up drops the oldest audio."""
        ...

    def close(self) -> None: ...


def open_audio_source(spec: str, *, sample_rate: int, channels: int = 1, frame_samples: int) -> AudioSource:
    """Open the audio source named by ``spec`` (``"pyaudio: default"``, ``"tone: 440"``, ``"file: in.wav"``...)."""
    device: AudioSource = _open("audio_source", spec, sample_rate, channels, frame_samples)
    return device


def open_audio_sink(spec: str, *, sample_rate: int, channels: int = 1, frame_samples: int) -> AudioSink:
    """Open the audio sink named by ``spec`` (``"pyaudio: default"``, ``"file: out.wav"``, ``"null:"``)."""
    device: AudioSink = _open("audio_sink", spec, sample_rate, channels, frame_samples)
    return device


def list_audio_devices() -> list[dict[str, Any]]:
    """The PortAudio devices (empty when PyAudio is missing or finds none); never raises for that."""
    try:
        module = importlib.import_module("softphone.devices.audio_pyaudio")
    except ImportError as exc:
        log.warning("PyAudio is unavailable: %s", exc)
        return []
    devices: list[dict[str, Any]] = module.list_devices()
    return devices


def _open(slot: str, spec: str, sample_rate: int, channels: int, frame_samples: int) -> Any:
    driver, argument, target = registry.resolve(slot, spec)
    if sample_rate <= 0 or channels <= 0 or frame_samples <= 0:
        raise ValueError(
            f"bad audio format: sample_rate={sample_rate} channels={channels} frame_samples={frame_samples}"
        )
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(None, None, None, f"audio driver {driver!r} is unavailable: {exc}") from exc
    cls = getattr(module, class_name)
    log.debug("opening %s %s: %r at %d Hz x%d, %d samples a frame",
              slot.replace("_", " "), driver, argument, sample_rate, channels, frame_samples)
    return cls(argument, sample_rate=sample_rate, channels=channels, frame_samples=frame_samples)
