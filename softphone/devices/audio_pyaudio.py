"""Sound cards through PortAudio (PyAudio): ``pyaudio: default``, ``pyaudio: 3``, ``pyaudio: pulse``.

Capture and playback run in PortAudio's callback mode on PortAudio's own thread. They
meet the caller through a bounded ring buffer, so ``read()`` and ``write()`` never
wait for the device: a source returns silence until enough audio has arrived, a sink
drops its oldest audio when the device falls behind.

The stream is opened at the asked rate (PulseAudio's ALSA plugin resamples). A device
that refuses that rate is opened at its own default rate and the audio is resampled
on the ring-buffer side by linear interpolation.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pyaudio

from softphone.devices import AudioDeviceInfo
from softphone.errors import ConfigError
from softphone.frames import AudioFrame

log = logging.getLogger(__name__)

BYTES_PER_SAMPLE = 2
DEFAULT_BUFFER_MS = 200  # the most audio a ring holds before its oldest part is dropped
PREFILL_FRAMES = 1  # extra frames a ring collects before it starts (again) after running dry
LISTED_DEVICES = 10  # how many device names an error message shows

_Callback = Callable[[bytes | None, int, Any, int], tuple[bytes | None, int]]


# --------------------------------------------------------------------------- PortAudio


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Point fd 2 at /dev/null while PortAudio probes: ALSA and JACK print noise there.

    Left alone when this module logs at DEBUG level, so that the noise can be seen.
    """
    if log.isEnabledFor(logging.DEBUG):
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
        finally:
            os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _portaudio() -> pyaudio.PyAudio:
    with _quiet_stderr():
        return pyaudio.PyAudio()


def _default_index(getter: Callable[[], Any]) -> int | None:
    try:
        return int(getter()["index"])
    except (OSError, KeyError, ValueError):
        return None


def _describe(pa: pyaudio.PyAudio) -> list[AudioDeviceInfo]:
    default_in = _default_index(pa.get_default_input_device_info)
    default_out = _default_index(pa.get_default_output_device_info)
    devices: list[AudioDeviceInfo] = []
    for index in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(index)
        try:
            host_api = str(pa.get_host_api_info_by_index(info["hostApi"])["name"])
        except (OSError, KeyError):
            host_api = "?"
        devices.append({
            "index": index,
            "name": str(info["name"]),
            "host_api": host_api,
            "max_input_channels": int(info["maxInputChannels"]),
            "max_output_channels": int(info["maxOutputChannels"]),
            "default_sample_rate": float(info["defaultSampleRate"]),
            "is_default_input": index == default_in,
            "is_default_output": index == default_out,
        })
    return devices


def list_devices() -> list[AudioDeviceInfo]:
    """Every PortAudio device, or an empty list when PortAudio cannot start or finds none."""
    try:
        pa = _portaudio()
    except Exception as exc:  # listing must never take the program down
        log.warning("PortAudio did not start: %s", exc)
        return []
    try:
        return _describe(pa)
    except Exception as exc:
        log.warning("PortAudio device query failed: %s", exc)
        return []
    finally:
        pa.terminate()


def channels_for(info: AudioDeviceInfo, direction: str) -> int:
    """The device's channel count in ``direction`` (``"input"`` or ``"output"``)."""
    return info["max_input_channels"] if direction == "input" else info["max_output_channels"]


def _is_default(info: AudioDeviceInfo, direction: str) -> bool:
    return info["is_default_input"] if direction == "input" else info["is_default_output"]


def choose_device(devices: list[AudioDeviceInfo], device: str, direction: str) -> AudioDeviceInfo:
    """The device for ``device`` (``default``/empty, an index, or a name or part of one) in ``direction``.

    ``direction`` is ``"input"`` or ``"output"``; only devices with channels that way count.
    """
    usable = [d for d in devices if channels_for(d, direction) > 0]
    if not usable:
        raise ConfigError(None, None, None, f"no PyAudio {direction} device found (no sound card or sound server?)")
    wanted = device.strip()
    if wanted.lower() in ("", "default"):
        for d in usable:
            if _is_default(d, direction):
                return d
        named = [d for d in usable if d["name"].lower() == "default"]
        return named[0] if named else usable[0]
    if wanted.isdigit():
        for d in usable:
            if d["index"] == int(wanted):
                return d
    else:
        folded = wanted.lower()
        exact = [d for d in usable if d["name"].lower() == folded]
        partial = [d for d in usable if folded in d["name"].lower()]
        if exact or partial:
            return (exact or partial)[0]
    names = ", ".join(f"{d['index']} {d['name']!r}" for d in usable[:LISTED_DEVICES])
    more = f" and {len(usable) - LISTED_DEVICES} more" if len(usable) > LISTED_DEVICES else ""
    raise ConfigError(None, None, None, f"unknown PyAudio {direction} device {wanted!r}; available: {names}{more}")


# --------------------------------------------------------------------------- ring buffer and resampler


class RingBuffer:
    """A bounded byte FIFO shared by PortAudio's thread and the caller.

    When a push overflows ``capacity`` bytes, the oldest bytes are dropped down to
    ``keep`` bytes, so that a backlog (a device that started late, clocks that drift)
    costs one skip instead of a lasting delay. Sizes are whole samples (``align``).
    The readers also trim the backlog when they (re)start after running dry.
    The lock is held only to copy bytes.
    """

    def __init__(self, capacity: int, keep: int, align: int) -> None:
        self.capacity = max(capacity, align)
        self.keep = min(max(keep, 0), self.capacity)
        self.align = align
        self.dropped = 0  # bytes
        self._buf = bytearray()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buf)

    def push(self, data: bytes) -> None:
        with self._lock:
            self._buf += data
            if len(self._buf) > self.capacity:
                drop = len(self._buf) - self.keep
                drop += (-drop) % self.align
                del self._buf[:drop]
                self.dropped += drop

    def pop(self, size: int) -> bytes:
        """Up to ``size`` bytes, oldest first (fewer, maybe none, when the ring holds less)."""
        with self._lock:
            out = bytes(self._buf[:size])
            del self._buf[:size]
        return out

    def trim(self, keep: int) -> None:
        """Drop the oldest bytes so that at most ``keep`` remain (whole samples)."""
        with self._lock:
            drop = len(self._buf) - keep
            if drop > 0:
                drop += (-drop) % self.align
                del self._buf[:drop]
                self.dropped += drop


class StreamResampler:
    """Linear-interpolation resampling of int16 PCM that arrives in pieces, seamless across them."""

    def __init__(self, from_rate: int, to_rate: int, channels: int = 1) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self.channels = channels
        self._step = from_rate / to_rate
        self._pos = 0.0  # where the next output sample lies, in input samples from _tail[0]
        self._tail: npt.NDArray[np.float64] = np.zeros((0, channels))

    def convert(self, pcm: bytes) -> bytes:
        x: npt.NDArray[np.float64] = np.frombuffer(pcm, dtype="<i2").reshape(-1, self.channels).astype(np.float64)
        if len(self._tail):
            x = np.concatenate([self._tail, x])
        last = len(x) - 1
        if last < 1:
            self._tail = x
            return b""
        # Output samples at positions pos, pos + step, ... strictly before x[last]; the rest next time.
        count = max(0, int(np.ceil((last - self._pos) / self._step)))
        positions = self._pos + self._step * np.arange(count, dtype=np.float64)
        grid = np.arange(len(x))
        out = np.stack([np.interp(positions, grid, x[:, c]) for c in range(self.channels)], axis=1)
        self._pos += count * self._step - last
        self._tail = x[-1:]
        return np.clip(np.rint(out), -32768, 32767).astype("<i2").tobytes()


def convert_channels(pcm: bytes, from_channels: int, to_channels: int) -> bytes:
    """Mix interleaved int16 PCM down to mono, then copy it to ``to_channels`` channels."""
    if from_channels == to_channels:
        return pcm
    x = np.frombuffer(pcm, dtype="<i2").reshape(-1, from_channels)
    mono = x.mean(axis=1) if from_channels > 1 else x[:, 0]
    out = np.repeat(np.rint(mono).astype("<i2"), to_channels)
    return out.tobytes()


# --------------------------------------------------------------------------- devices


class _PyAudioDevice:
    """What capture and playback share: choosing the device, opening the stream, the ring."""

    direction = ""
    _ring: RingBuffer
    _resampler: StreamResampler | None

    def __init__(
        self,
        device: str,
        *,
        sample_rate: int,
        channels: int = 1,
        frame_samples: int,
        buffer_ms: int = DEFAULT_BUFFER_MS,
        device_rate: int | None = None,
    ) -> None:
        """``buffer_ms`` bounds the ring; ``device_rate`` opens the device at that rate (resampling)."""
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame_samples = frame_samples
        self.underruns = 0  # times the ring ran dry
        self.status_errors = 0  # callbacks where PortAudio flagged an overflow or underflow
        self._buffer_ms = buffer_ms
        self._frame_bytes = frame_samples * channels * BYTES_PER_SAMPLE
        self._device_frame_bytes = self._frame_bytes
        self._silence = AudioFrame.silence(frame_samples, sample_rate, channels)
        self._primed = False
        self._closed = False
        self._callback_failed = False
        try:
            self._pa = _portaudio()
        except OSError as exc:
            raise ConfigError(None, None, None, f"PortAudio did not start: {exc}") from exc
        try:
            info = choose_device(_describe(self._pa), device, self.direction)
            if channels_for(info, self.direction) < channels:
                raise ConfigError(None, None, None, f"PyAudio device {info['name']!r} has fewer than "
                                                    f"{channels} {self.direction} channels")
            self.device_index: int = info["index"]
            self.device_name: str = info["name"]
            self._stream, self.device_rate = self._open_stream(info, device_rate)
        except BaseException:
            self._pa.terminate()
            raise
        log.info("PyAudio %s %d %r open at %d Hz (asked %d Hz), %d samples a frame", self.direction,
                 self.device_index, self.device_name, self.device_rate, sample_rate, frame_samples)

    @property
    def dropped_samples(self) -> int:
        """Samples dropped because the ring overflowed."""
        return self._ring.dropped // (self.channels * BYTES_PER_SAMPLE)

    def _open_stream(self, info: AudioDeviceInfo, forced: int | None) -> tuple[Any, int]:
        rates = [forced or self.sample_rate]
        native = int(info["default_sample_rate"])
        if native > 0 and native not in rates:
            rates.append(native)
        errors = []
        for rate in rates:
            frames = max(1, round(self.frame_samples * rate / self.sample_rate))
            kwargs: dict[str, Any] = {
                "format": pyaudio.paInt16,
                "channels": self.channels,
                "rate": rate,
                "frames_per_buffer": frames,
                "start": False,
                "stream_callback": self._make_callback(),
                self.direction: True,
                f"{self.direction}_device_index": info["index"],
            }
            try:
                stream = self._pa.open(**kwargs)
            except (OSError, ValueError) as exc:
                errors.append(f"{rate} Hz: {exc}")
                log.debug("PyAudio %s %r refused %d Hz: %s", self.direction, info["name"], rate, exc)
                continue
            self._prepare(rate, frames * self.channels * BYTES_PER_SAMPLE)
            stream.start_stream()
            return stream, rate
        raise ConfigError(None, None, None, f"cannot open PyAudio {self.direction} device {info['name']!r}: "
                                            + "; ".join(errors))

    def _prepare(self, device_rate: int, device_frame_bytes: int) -> None:
        """Set up the ring (and a resampler when the device runs at another rate) before the stream starts."""
        self._device_frame_bytes = device_frame_bytes
        if device_rate == self.sample_rate:
            self._resampler = None
        elif self.direction == "input":
            self._resampler = StreamResampler(device_rate, self.sample_rate, self.channels)
        else:
            self._resampler = StreamResampler(self.sample_rate, device_rate, self.channels)
        # The ring holds audio at the caller's rate for capture and at the device's rate for playback.
        ring_rate, frame_bytes = ((self.sample_rate, self._frame_bytes) if self.direction == "input"
                                  else (device_rate, device_frame_bytes))
        capacity = ring_rate * self._buffer_ms // 1000 * self.channels * BYTES_PER_SAMPLE
        capacity = max(capacity, frame_bytes * (PREFILL_FRAMES + 3))
        self._ring = RingBuffer(capacity, frame_bytes * (PREFILL_FRAMES + 1), self.channels * BYTES_PER_SAMPLE)

    def _make_callback(self) -> _Callback:
        raise NotImplementedError

    def _callback_error(self) -> None:
        if not self._callback_failed:
            self._callback_failed = True
            log.exception("PyAudio %s callback failed", self.direction)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._stream.close()  # Pa_CloseStream discards the pending buffers of a running stream
        except OSError as exc:
            log.debug("closing PyAudio stream: %s", exc)
        finally:
            self._pa.terminate()


class PyAudioSource(_PyAudioDevice):
    """Capture: ``read()`` gives the oldest complete frame captured, or silence."""

    direction = "input"

    def _make_callback(self) -> _Callback:
        def callback(in_data: bytes | None, frame_count: int, time_info: Any, status: int) -> tuple[None, int]:
            try:
                if status:
                    self.status_errors += 1
                if in_data:
                    self._ring.push(self._resampler.convert(in_data) if self._resampler else in_data)
            except Exception:
                self._callback_error()
            return None, pyaudio.paContinue

        return callback

    @property
    def finished(self) -> bool:
        return False

    def read(self) -> AudioFrame:
        if self._closed:
            return self._silence
        if not self._primed:
            start = self._frame_bytes * (1 + PREFILL_FRAMES)
            if len(self._ring) < start:
                return self._silence
            self._ring.trim(start)  # a backlog from a late start would be a lasting delay
            self._primed = True
        if len(self._ring) < self._frame_bytes:
            self._primed = False
            self.underruns += 1
            return self._silence
        return AudioFrame(self._ring.pop(self._frame_bytes), self.sample_rate, self.channels)


class PyAudioSink(_PyAudioDevice):
    """Playback: ``write()`` queues a frame for PortAudio's callback to play."""

    direction = "output"
    _adapter: StreamResampler | None = None

    def _make_callback(self) -> _Callback:
        def callback(in_data: bytes | None, frame_count: int, time_info: Any, status: int) -> tuple[bytes, int]:
            need = frame_count * self.channels * BYTES_PER_SAMPLE
            try:
                if status:
                    self.status_errors += 1
                data = self._take(need)
            except Exception:
                self._callback_error()
                data = b""
            if len(data) < need:
                data += bytes(need - len(data))
            return data, pyaudio.paContinue

        return callback

    def _take(self, need: int) -> bytes:
        if not self._primed:
            start = need + self._device_frame_bytes * PREFILL_FRAMES
            if len(self._ring) < start:
                return b""
            self._ring.trim(start)  # PulseAudio may start pulling a second after the writes began
            self._primed = True
        data = self._ring.pop(need)
        if len(data) < need:
            self._primed = False
            self.underruns += 1
        return data

    def write(self, frame: AudioFrame) -> None:
        if self._closed:
            return
        pcm = frame.pcm
        if frame.channels != self.channels:
            pcm = convert_channels(pcm, frame.channels, self.channels)
        if frame.sample_rate != self.sample_rate:
            # Not what the phone does (it opens the sink at the decoder's rate), but harmless.
            if self._adapter is None or self._adapter.from_rate != frame.sample_rate:
                log.warning("PyAudio sink at %d Hz got a frame at %d Hz; resampling", self.sample_rate,
                            frame.sample_rate)
                self._adapter = StreamResampler(frame.sample_rate, self.sample_rate, self.channels)
            pcm = self._adapter.convert(pcm)
        self._ring.push(self._resampler.convert(pcm) if self._resampler else pcm)
