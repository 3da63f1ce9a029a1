"""Synthetic audio devices: ``tone: 440``, ``silence:``, ``null:`` (source and sink).

Product features on the same code path as real devices, not mocks: a tone is a
handy test signal on a call, ``null:`` plays nothing and records nothing.
"""

from __future__ import annotations

import functools
import logging
import math
import sys
from array import array

from softphone.errors import ConfigError
from softphone.frames import AudioFrame

log = logging.getLogger(__name__)

DEFAULT_AMPLITUDE = 0.5
FULL_SCALE = 32767


def parse_tone(argument: str, sample_rate: int) -> tuple[tuple[float, ...], float]:
    """``"440"``, ``"440,0.3"``, ``"350+440"`` -> (frequencies in Hz, amplitude 0..1 of full scale)."""
    text = argument.strip()
    if not text:
        raise ConfigError(None, None, None, "tone needs a frequency, e.g. 'tone: 440' or 'tone: 350+440,0.3'")
    freq_text, sep, amp_text = text.partition(",")
    try:
        freqs = tuple(float(f) for f in freq_text.split("+"))
        amplitude = float(amp_text) if sep else DEFAULT_AMPLITUDE
    except ValueError:
        message = f"bad tone {argument!r}; expected e.g. '440', '440,0.3' or '350+440'"
        raise ConfigError(None, None, None, message) from None
    nyquist = sample_rate / 2
    for f in freqs:
        if not (math.isfinite(f) and 0 < f < nyquist):
            raise ConfigError(None, None, None, f"tone frequency {f:g} Hz must be above 0 and below {nyquist:g} Hz")
    if not (math.isfinite(amplitude) and 0 <= amplitude <= 1):
        raise ConfigError(None, None, None, f"tone amplitude {amplitude:g} must be between 0 and 1")
    return freqs, amplitude


class ToneSource:
    """Sine tones, phase-continuous from one read to the next.

    The amplitude is the peak of the sum: each of ``n`` tones gets ``amplitude / n``. Tones of
    whole hertz repeat after ``rate / gcd(rate, f1, f2...)`` samples (200 for 440 Hz at 8 kHz):
    that period is computed once in plain Python, shared by every source of the same tone,
    and read as a ring. Other tones are computed frame by frame with numpy.
    """

    def __init__(self, argument: str, *, sample_rate: int, channels: int = 1, frame_samples: int) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame_samples = frame_samples
        self.frequencies, self.amplitude = parse_tone(argument, sample_rate)
        self._ring = _tone_ring(self.frequencies, self.amplitude, sample_rate, channels, frame_samples)
        self._position = 0  # in the ring, in bytes
        self._computed = None if self._ring is not None else _ComputedTone(self)

    @property
    def finished(self) -> bool:
        return False

    def read(self) -> AudioFrame:
        if self._ring is None:
            assert self._computed is not None
            return self._computed.read()
        data, period = self._ring
        size = self.frame_samples * self.channels * 2
        start = self._position
        self._position = (start + size) % period
        return AudioFrame(data[start:start + size], self.sample_rate, self.channels)

    def close(self) -> None:
        pass


class _ComputedTone:
    """A tone that does not repeat soon: each frame computed with numpy."""

    def __init__(self, tone: ToneSource) -> None:
        import numpy as np

        self._np = np
        self.tone = tone
        self._steps = np.array([2 * math.pi * f / tone.sample_rate for f in tone.frequencies])
        self._phases = np.zeros(len(tone.frequencies))
        self._ramp = np.arange(tone.frame_samples, dtype=np.float64)
        self._scale = tone.amplitude * FULL_SCALE / len(tone.frequencies)

    def read(self) -> AudioFrame:
        np, tone = self._np, self.tone
        angles = self._phases[:, None] + self._steps[:, None] * self._ramp[None, :]
        mono = np.rint(np.sin(angles).sum(axis=0) * self._scale).astype("<i2")
        # Keep the accumulated phase small so precision does not drift over long calls.
        self._phases = np.mod(self._phases + self._steps * tone.frame_samples, 2 * math.pi)
        if tone.channels > 1:
            mono = np.repeat(mono, tone.channels)
        return AudioFrame(mono.tobytes(), tone.sample_rate, tone.channels)


MAX_RING_SECONDS = 2  # a longer period is computed frame by frame


@functools.lru_cache(maxsize=32)
def _tone_ring(frequencies: tuple[float, ...], amplitude: float, rate: int, channels: int,
               frame_samples: int) -> tuple[bytes, int] | None:
    """One period of the tone as 16-bit little-endian PCM, followed by a frame more (so that any
    frame is one slice), and the period's length in bytes; None when the tone does not repeat
    soon enough."""
    if not all(f == int(f) for f in frequencies):
        return None
    period = rate // math.gcd(rate, *(int(f) for f in frequencies))
    if period > MAX_RING_SECONDS * rate:
        return None
    scale = amplitude * FULL_SCALE / len(frequencies)
    steps = [2 * math.pi * f / rate for f in frequencies]
    mono = [round(sum(math.sin(step * n) for step in steps) * scale) for n in range(period + frame_samples)]
    samples = array("h", (value for value in mono for _ in range(channels)))
    if sys.byteorder != "little":
        samples.byteswap()
    return samples.tobytes(), period * channels * 2


class SilenceSource:
    """Digital silence: ``silence:`` (also ``null:`` as a source)."""

    def __init__(self, argument: str, *, sample_rate: int, channels: int = 1, frame_samples: int) -> None:
        if argument.strip():
            raise ConfigError(None, None, None, f"the silence source takes no device, got {argument!r}")
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame_samples = frame_samples
        self._frame = AudioFrame.silence(frame_samples, sample_rate, channels)

    @property
    def finished(self) -> bool:
        return False

    def read(self) -> AudioFrame:
        return self._frame

    def close(self) -> None:
        pass


class NullSink:
    """Discards what is written (``null:``), counting it."""

    def __init__(self, argument: str, *, sample_rate: int, channels: int = 1, frame_samples: int) -> None:
        if argument.strip():
            raise ConfigError(None, None, None, f"the null sink takes no device, got {argument!r}")
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame_samples = frame_samples
        self.frames_written = 0
        self.samples_written = 0

    def write(self, frame: AudioFrame) -> None:
        self.frames_written += 1
        self.samples_written += frame.samples

    def close(self) -> None:
        pass
