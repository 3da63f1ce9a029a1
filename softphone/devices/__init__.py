"""Audio and video devices by name: ``open_audio_source("tone: 440", ...)``,
``open_audio_sink("file: out.wav", ...)``, ``open_video_source("pattern:", ...)``,
``open_video_sink("opencv:", ...)``.

Drivers are looked up in :mod:`softphone.devices.registry` and imported only when a
device is opened; importing this package loads neither numpy, OpenCV, PyAV nor PortAudio.

Every audio driver class is constructed as ``Class(device, *, sample_rate, channels,
frame_samples)``, every video source as ``Class(device, *, width, height, fps)`` and
every video sink as ``Class(device, *, width, height, fps, title)``, where ``device`` is
the part of the spec after the colon.

Importing the package also calls :func:`preload_window_libraries` (see there): the
OpenCV window only works when this package is imported before PyAV.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import logging
import os
import sys
from pathlib import Path
from typing import Any, Protocol, TypedDict, runtime_checkable

from softphone.devices import registry
from softphone.errors import ConfigError
from softphone.frames import AudioFrame, VideoFrame

log = logging.getLogger(__name__)

_XCB = "libxcb"  # the libraries whose duplicates hang OpenCV's Qt windows

__all__ = [
    "AudioDeviceInfo",
    "AudioSink",
    "AudioSource",
    "VideoSink",
    "VideoSource",
    "list_audio_devices",
    "open_audio_sink",
    "open_audio_source",
    "open_video_sink",
    "open_video_source",
    "preload_window_libraries",
    "shared_window_libraries",
]


class AudioDeviceInfo(TypedDict):
    """One PortAudio device as ``softphone devices`` lists it."""

    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_sample_rate: float
    is_default_input: bool
    is_default_output: bool


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


@runtime_checkable
class VideoSource(Protocol):
    """Where outgoing video comes from: a camera, a file, a test pattern."""

    width: int
    height: int
    fps: float

    def read(self) -> VideoFrame | None:
        """The newest frame not yet read, or None; never blocks."""
        ...

    @property
    def finished(self) -> bool:
        """True once a source that does not loop has nothing more to give."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class VideoSink(Protocol):
    """Where incoming video goes: a window, a file, nowhere."""

    def write(self, frame: VideoFrame) -> None:
        """Hand over the remote picture; never blocks; a sink that cannot keep up drops the oldest."""
        ...

    def preview(self, frame: VideoFrame) -> None:
        """Hand over the local picture (the window shows it inset; other sinks ignore it)."""
        ...

    @property
    def closed(self) -> bool:
        """True once the user closed the window (or pressed q / Esc): the call should hang up."""
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


def open_video_source(spec: str, *, width: int, height: int, fps: float) -> VideoSource:
    """Open the video source named by ``spec``: ``"opencv: 0"``, ``"opencv: clip.mp4"``, ``"pattern:"``, ``"null:"``."""
    _check_video_format(width, height, fps)
    argument, cls = _driver_class("video_source", spec)
    device: VideoSource = cls(argument, width=width, height=height, fps=fps)
    return device


def open_video_sink(spec: str, *, width: int, height: int, fps: float, title: str = "softphone") -> VideoSink:
    """Open the video sink named by ``spec`` (``"opencv:"`` a window, ``"file: out.mp4"``, ``"null:"``)."""
    _check_video_format(width, height, fps)
    argument, cls = _driver_class("video_sink", spec)
    device: VideoSink = cls(argument, width=width, height=height, fps=fps, title=title)
    return device


def _check_video_format(width: int, height: int, fps: float) -> None:
    if width <= 0 or height <= 0 or not fps > 0:
        raise ValueError(f"bad video format: {width}x{height} at {fps} fps")


def _driver_class(slot: str, spec: str) -> tuple[str, Any]:
    """``(device argument, driver class)`` for ``spec`` in ``slot``, importing the driver's module."""
    driver, argument, target = registry.resolve(slot, spec)
    words = slot.replace("_", " ")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(None, None, None, f"{words} driver {driver!r} is unavailable: {exc}") from exc
    log.debug("opening %s %s: %r", words, driver, argument)
    return argument, getattr(module, class_name)


def shared_window_libraries() -> dict[str, tuple[Path, Path]]:
    """X (``libxcb*``) libraries bundled under the same file name by both the OpenCV and the PyAV wheels.

    ``{name: (OpenCV's copy, PyAV's copy)}``; empty when either is missing. Found without
    importing either package.
    """
    folders = []
    for package, folder in (("cv2", "opencv_python.libs"), ("av", "av.libs")):
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            return {}
        if spec is None or not spec.origin:
            return {}
        path = Path(spec.origin).parent.parent / folder
        if not path.is_dir():
            return {}
        folders.append(path)
    opencv, pyav = folders
    names = {p.name for p in opencv.iterdir() if p.name.startswith(_XCB)} & {p.name for p in pyav.iterdir()}
    return {name: (opencv / name, pyav / name) for name in sorted(names)}


def preload_window_libraries() -> list[str]:
    """Load OpenCV's copies of the X libraries that PyAV bundles too, before PyAV does.

    Both wheels ship e.g. ``libxcb-shm-<hash>.so`` under one file name, linked against
    different ``libxcb`` builds. The dynamic loader keeps the first one loaded, so when
    PyAV comes first, OpenCV's Qt window code gets PyAV's copy and ``namedWindow`` hangs
    for ever. Loaded first, OpenCV's copies serve both (PyAV uses them only for screen
    grabbing, which the softphone does not do). Returns the names loaded; does nothing
    once PyAV is imported or off Linux. Loading these is cheap and imports no Python module.
    """
    if not sys.platform.startswith("linux") or "av" in sys.modules:
        return []
    loaded = []
    for name, (opencv_copy, _) in shared_window_libraries().items():
        try:
            ctypes.CDLL(str(opencv_copy))
        except OSError as exc:  # e.g. no system libxcb: then there is no window either
            log.debug("cannot preload %s: %s", opencv_copy, exc)
            continue
        loaded.append(name)
    return loaded


def list_audio_devices() -> list[AudioDeviceInfo]:
    """The PortAudio devices (empty when PyAudio is missing or finds none); never raises for that."""
    try:
        module = importlib.import_module("softphone.devices.audio_pyaudio")
    except ImportError as exc:
        log.warning("PyAudio is unavailable: %s", exc)
        return []
    devices: list[AudioDeviceInfo] = module.list_devices()
    return devices


def list_cameras(root: str = "/sys/class/video4linux") -> list[dict[str, str]]:
    """The cameras the system lists (V4L2 on Linux), as ``opencv: N`` specs; no camera is opened,
    so listing prints none of OpenCV's probing noise."""
    cameras = []
    try:
        entries = sorted(os.listdir(root), key=lambda n: (len(n), n))
    except OSError:
        return []
    for entry in entries:
        if not entry.startswith("video") or not entry[5:].isdigit():
            continue
        try:
            with open(os.path.join(root, entry, "name"), encoding="utf-8", errors="replace") as file:
                name = file.read().strip()
        except OSError:
            name = entry
        cameras.append({"spec": f"opencv: {entry[5:]}", "name": name, "path": f"/dev/{entry}"})
    return cameras


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


preload_window_libraries()
