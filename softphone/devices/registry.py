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
    driver, argument = parse_device(from_linphone(spec))
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


# linphone's sound card and camera names ("<driver>: <card>", as mediastreamer2 writes
# them into a linphonerc) onto our drivers
_LINPHONE_SOUND_DRIVERS = ("alsa", "pulseaudio", "oss", "portaudio", "jack", "pipewire")
_LINPHONE_DEFAULT_CARDS = ("", "default", "default device")
_V4L2_DEVICE = re.compile(r"/dev/video([0-9]+)")


def from_linphone(spec: str) -> str:
    """Our device string for a device name linphone writes, else ``spec`` unchanged.

    ``ALSA: default device``, ``ALSA Unknown: default`` and ``PulseAudio Unknown: default``
    are the system's default sound card (``pyaudio: default``); another ALSA or PulseAudio
    card is looked up by its name (``pyaudio: HDA Intel PCH``); ``V4L2: /dev/video0`` is
    camera 0 (``opencv: 0``); ``StaticImage: Static picture`` is the test pattern.
    """
    driver, sep, card = spec.partition(":")
    if not sep:
        return spec
    words = driver.strip().lower().split()
    card = card.strip()
    if not words:
        return spec
    if words[0] in _LINPHONE_SOUND_DRIVERS:
        return "pyaudio: default" if card.lower() in _LINPHONE_DEFAULT_CARDS else f"pyaudio: {card}"
    if words == ["v4l2"]:
        match = _V4L2_DEVICE.fullmatch(card)
        return f"opencv: {match.group(1)}" if match else f"opencv: {card}"
    if words == ["staticimage"]:
        return "pattern:"
    return spec
