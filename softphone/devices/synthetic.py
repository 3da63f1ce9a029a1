"""Synthetic audio devices: ``tone: 440``, ``silence:``, ``null:`` (source and sink).

Product features on the same code path as real devices, not mocks: a tone is a
handy test signal on a call, ``null:`` plays nothing and records nothing.
"""

from __future__ import annotations

import logging
import math

import numpy as np

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

    The amplitude is the peak of the sum: each of ``n`` tones gets ``amplitude / n``.
    """

    def __init__(self, argument: str, *, sample_rate: int, channels: int = 1, frame_samples: int) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame_samples = frame_samples
        self.frequencies, self.amplitude = parse_tone(argument, sample_rate)
        self._steps = np.array([2 * math.pi * f / sample_rate for f in self.frequencies])
        self._phases = np.zeros(len(self.frequencies))
        self._ramp = np.arange(frame_samples, dtype=np.float64)
        self._scale = self.amplitude * FULL_SCALE / len(self.frequencies)

    @property
    def finished(self) -> bool:
        return False

    def read(self) -> AudioFrame:
        angles = self._phases[:, None] + self._steps[:, None] * self._ramp[None, :]
        mono = np.rint(np.sin(angles).sum(axis=0) * self._scale).astype("<i2")
        # Keep the accumulated phase small so precision does not drift over long calls.
        self._phases = np.mod(self._phases + self._steps * self.frame_samples, 2 * math.pi)
        if self.channels > 1:
            mono = np.repeat(mono, self.channels)
        return AudioFrame(mono.tobytes(), self.sample_rate, self.channels)

    def close(self) -> None:
        pass


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
