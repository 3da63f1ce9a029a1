"""Device drivers by name, per slot, as linphone names them: ``driver: device``.

Pure data and string handling. Implementations are named by import path
(``"module:Class"``) and loaded only when a device is opened, so that importing the
package loads neither numpy nor PortAudio.
"""

from __future__ import annotations

import re

from softphone.errors import ConfigError

AUDIO_SOURCES: dict[str, str] = {
    "pyaudio": "softphone.devices.audio_pyaudio:PyAudioSource",
    "tone": "softphone.devices.synthetic:ToneSource",
    "silence": "softphone.devices.synthetic:SilenceSource",
    "null": "softphone.devices.synthetic:SilenceSource",
    "file": "softphone.devices.wavfile:WavFileSource",
}

AUDIO_SINKS: dict[str, str] = {
    "pyaudio": "softphone.devices.audio_pyaudio:PyAudioSink",
    "file": "softphone.devices.wavfile:WavFileSink",
    "null": "softphone.devices.synthetic:NullSink",
}

VIDEO_SOURCES: dict[str, str] = {
    "opencv": "softphone.devices.video_opencv:OpenCVSource",
    "pattern": "softphone.devices.video_pattern:PatternSource",
    "null": "softphone.devices.video_pattern:NullVideoSource",
}

VIDEO_SINKS: dict[str, str] = {
    "opencv": "softphone.devices.video_opencv:WindowSink",
    "file": "softphone.devices.video_file:VideoFileSink",
    "null": "softphone.devices.video_pattern:NullVideoSink",
}

# slot -> (words used in messages, driver table)
SLOTS: dict[str, tuple[str, dict[str, str]]] = {
    "audio_source": ("audio source", AUDIO_SOURCES),
    "audio_sink": ("audio sink", AUDIO_SINKS),
    "video_source": ("video source", VIDEO_SOURCES),
    "video_sink": ("video sink", VIDEO_SINKS),
}

_DRIVER = re.compile(r"[a-z][a-z0-9_-]*")


def parse_device(spec: str) -> tuple[str, str]:
    """Split ``"driver: device"`` into ``(driver, device)``, both stripped.

    Only the first colon separates, so the device part may hold colons of its own
    (``file: C:/in.wav``). A bare word is a driver without a device (``null``).
    The driver name is case-insensitive and returned in lower case.
    """
    text = spec.strip()
    if not text:
        raise ConfigError(None, None, None, "empty device; expected 'driver: device', e.g. 'tone: 440'")
    driver, sep, argument = text.partition(":")
    driver = driver.strip().lower()
    if not sep and not _DRIVER.fullmatch(driver):
        raise ConfigError(None, None, None, f"device {spec!r} is not of the form 'driver: device'")
    if not _DRIVER.fullmatch(driver):
        raise ConfigError(None, None, None, f"bad device driver name {driver!r} in {spec!r}")
    return driver, argument.strip()


def drivers(slot: str) -> list[str]:
    """The driver names available for ``slot``, sorted."""
    return sorted(_table(slot)[1])


def resolve(slot: str, spec: str) -> tuple[str, str, str]:
    """``(driver, device, "module:Class")`` for ``spec`` in ``slot``; ConfigError if unknown."""
    words, table = _table(slot)
    driver, argument = parse_device(spec)
    target = table.get(driver)
    if target is None:
        available = ", ".join(sorted(table))
        raise ConfigError(None, None, None, f"unknown {words} driver {driver!r}; available: {available}")
    return driver, argument, target


def _table(slot: str) -> tuple[str, dict[str, str]]:
    try:
        return SLOTS[slot]
    except KeyError:
        raise ValueError(f"unknown device slot {slot!r}; slots: {', '.join(sorted(SLOTS))}") from None
