"""Synthetic devices: tones (frequency, amplitude, continuity, dual tones), silence, the null sink."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from softphone.devices import open_audio_sink, open_audio_source
from softphone.devices.synthetic import NullSink
from softphone.errors import ConfigError
from softphone.frames import AudioFrame

Analyse = Callable[[np.ndarray, int], float]


def _samples(frames: list[AudioFrame]) -> np.ndarray:
    return np.frombuffer(b"".join(f.pcm for f in frames), dtype="<i2").astype(np.float64)


def _read(spec: str, rate: int, frame: int, count: int, channels: int = 1) -> list[AudioFrame]:
    source = open_audio_source(spec, sample_rate=rate, channels=channels, frame_samples=frame)
    frames = [source.read() for _ in range(count)]
    assert not source.finished
    source.close()
    return frames


@pytest.mark.parametrize(("freq", "rate", "frame"), [(440.0, 8000, 160), (1000.0, 16000, 320), (697.0, 48000, 960)])
def test_tone_frequency(freq: float, rate: int, frame: int, dominant_frequency: Analyse) -> None:
    frames = _read(f"tone: {freq:g}", rate, frame, 50)  # 1 s
    assert all(f.samples == frame and f.sample_rate == rate and f.channels == 1 for f in frames)
    assert abs(dominant_frequency(_samples(frames), rate) - freq) < 1.0


def test_tone_default_and_given_amplitude() -> None:
    half = _samples(_read("tone: 440", 8000, 160, 10))
    assert 0.49 * 32767 <= np.abs(half).max() <= 0.5 * 32767 + 1
    quiet = _samples(_read("tone: 440,0.1", 8000, 160, 10))
    assert 0.09 * 32767 <= np.abs(quiet).max() <= 0.1 * 32767 + 1
    full = _samples(_read("tone: 440,1", 8000, 160, 10))
    assert np.abs(full).max() >= 32000


def test_tone_is_continuous_across_frame_boundaries() -> None:
    # An odd frame length and a frequency that does not divide the rate: any phase
    # reset at a frame boundary would show as a jump far larger than a sample step.
    rate, frame, freq, amplitude = 8000, 157, 443.0, 0.5
    x = _samples(_read(f"tone: {freq:g}", rate, frame, 40))
    expected = np.rint(amplitude * 32767 * np.sin(2 * np.pi * freq * np.arange(len(x)) / rate))
    assert np.max(np.abs(x - expected)) <= 2
    max_step = amplitude * 32767 * 2 * np.pi * freq / rate
    boundaries = np.arange(frame, len(x), frame)
    assert np.max(np.abs(x[boundaries] - x[boundaries - 1])) <= max_step + 2


def test_dual_tone_has_both_peaks() -> None:
    rate = 8000
    x = _samples(_read("tone: 350+440", rate, 160, 50))
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / rate)
    top_two = sorted(freqs[np.argsort(spectrum)[-2:]])
    assert top_two == [350.0, 440.0]
    at = {f: spectrum[int(f)] for f in (350, 440)}
    assert abs(at[350] - at[440]) / at[440] < 0.05  # equal levels
    assert np.abs(x).max() <= 0.5 * 32767 + 1  # the amplitude is the peak of the sum


def test_stereo_tone_repeats_the_samples_per_channel(dominant_frequency: Analyse) -> None:
    frames = _read("tone: 440", 8000, 160, 25, channels=2)
    assert frames[0].channels == 2 and frames[0].samples == 160
    pairs = _samples(frames).reshape(-1, 2)
    assert np.array_equal(pairs[:, 0], pairs[:, 1])
    assert abs(dominant_frequency(pairs[:, 0], 8000) - 440) < 1.0


@pytest.mark.parametrize("spec", ["tone:", "tone: abc", "tone: 440,x", "tone: 0", "tone: 4000", "tone: 440,1.5",
                                  "tone: 440,-0.1", "tone: 350+", "tone: nan"])
def test_bad_tones_are_config_errors(spec: str) -> None:
    with pytest.raises(ConfigError):
        open_audio_source(spec, sample_rate=8000, frame_samples=160)


@pytest.mark.parametrize("spec", ["silence:", "null:"])
def test_silence_is_zeros(spec: str) -> None:
    frames = _read(spec, 16000, 320, 5, channels=2)
    for f in frames:
        assert (f.samples, f.channels, f.sample_rate) == (320, 2, 16000)
        assert f.pcm == bytes(len(f.pcm))


def test_silence_takes_no_device() -> None:
    with pytest.raises(ConfigError):
        open_audio_source("silence: loud", sample_rate=8000, frame_samples=160)


def test_null_sink_discards_and_counts() -> None:
    sink = open_audio_sink("null:", sample_rate=8000, frame_samples=160)
    for _ in range(3):
        sink.write(AudioFrame.silence(160, 8000))
    assert isinstance(sink, NullSink)
    assert sink.frames_written == 3
    assert sink.samples_written == 480
    sink.close()
