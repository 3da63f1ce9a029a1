"""WAV files as devices: round trips through sink and source, resampling, mixing, looping, ``once``."""

from __future__ import annotations

import struct
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from softphone.devices import open_audio_sink, open_audio_source
from softphone.devices.wavfile import WavFileSource
from softphone.errors import ConfigError
from softphone.frames import AudioFrame

Analyse = Callable[[np.ndarray, int], float]


def _samples(frames: list[AudioFrame]) -> np.ndarray:
    return np.frombuffer(b"".join(f.pcm for f in frames), dtype="<i2").astype(np.float64)


def _write_wav(path: Path, data: np.ndarray, rate: int, width: int = 2) -> None:
    """``data``: float -1..1, shape (frames, channels)."""
    channels = data.shape[1]
    if width == 1:
        raw = np.clip(np.rint(data * 127 + 128), 0, 255).astype(np.uint8).tobytes()
    else:
        raw = np.clip(np.rint(data * 32767), -32768, 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(raw)


def _sine(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(int(rate * seconds)) / rate)


def test_round_trip_through_sink_and_source_at_another_rate(tmp_path: Path, dominant_frequency: Analyse) -> None:
    path = tmp_path / "tone.wav"
    tone = open_audio_source("tone: 440", sample_rate=8000, frame_samples=160)
    sink = open_audio_sink(f"file: {path}", sample_rate=8000, frame_samples=160)
    for _ in range(50):  # 1 s
        sink.write(tone.read())
    sink.close()
    with wave.open(str(path), "rb") as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()) == (8000, 1, 2, 8000)

    source = open_audio_source(f"file: {path},once", sample_rate=16000, frame_samples=320)
    frames = []
    while not source.finished:
        frames.append(source.read())
        assert len(frames) < 100
    x = _samples(frames)
    assert len(frames) == 50  # 1 s at 16 kHz in 20 ms frames
    assert abs(dominant_frequency(x[:16000], 16000) - 440) < 1.0
    assert 0.45 * 32767 < np.abs(x).max() < 0.52 * 32767


@pytest.mark.parametrize(("rate", "channels", "width"), [(44100, 2, 2), (22050, 1, 1), (8000, 2, 2), (48000, 1, 2)])
def test_any_rate_and_channels_is_resampled_and_mixed(tmp_path: Path, rate: int, channels: int, width: int,
                                                      dominant_frequency: Analyse) -> None:
    path = tmp_path / "in.wav"
    left = _sine(1000, rate, 0.5)
    data = np.stack([left] + [left * 0.5] * (channels - 1), axis=1)
    _write_wav(path, data, rate, width)
    source = open_audio_source(f"file: {path}", sample_rate=16000, frame_samples=320)
    assert isinstance(source, WavFileSource)
    assert abs(source.duration - 0.5) < 0.01
    x = _samples([source.read() for _ in range(20)])  # 0.4 s
    assert abs(dominant_frequency(x, 16000) - 1000) < 1.0
    expected_peak = 0.5 * (1 + 0.5 * (channels - 1)) / channels
    assert abs(np.abs(x).max() / 32767 - expected_peak) < 0.03


def test_downsampling_filters_out_what_cannot_be_represented(tmp_path: Path) -> None:
    path = tmp_path / "high.wav"
    _write_wav(path, _sine(6000, 48000, 0.5)[:, None], 48000)  # above 4 kHz: gone at 8 kHz, not aliased
    source = open_audio_source(f"file: {path}", sample_rate=8000, frame_samples=160)
    x = _samples([source.read() for _ in range(20)])
    assert np.abs(x[200:-200]).max() < 0.01 * 32767


def test_source_loops_by_default(tmp_path: Path) -> None:
    path = tmp_path / "ramp.wav"
    ramp = (np.arange(250) - 125) / 200.0  # 250 samples, not a multiple of the frame
    _write_wav(path, ramp[:, None], 8000)
    source = open_audio_source(f"file: {path}", sample_rate=8000, frame_samples=160)
    x = _samples([source.read() for _ in range(10)])  # 1600 samples: 6.4 loops
    expected = np.tile(np.rint(ramp * 32767), 7)[:1600]  # 16-bit samples come back exactly
    assert np.array_equal(x, expected)
    assert not source.finished


def test_once_plays_to_the_end_then_silence_and_finished(tmp_path: Path) -> None:
    path = tmp_path / "short.wav"
    _write_wav(path, np.full((250, 1), 0.25), 8000)
    source = open_audio_source(f"file: {path}, once", sample_rate=8000, frame_samples=160)
    first = source.read()
    assert not source.finished
    second = source.read()
    assert source.finished
    x = _samples([first, second])
    assert np.all(x[:250] == np.rint(0.25 * 32767)) and np.all(x[250:] == 0)
    assert source.read().pcm == bytes(320)
    assert source.finished


def test_source_gives_the_asked_channel_count(tmp_path: Path) -> None:
    path = tmp_path / "mono.wav"
    _write_wav(path, _sine(440, 8000, 0.1)[:, None], 8000)
    frame = open_audio_source(f"file: {path}", sample_rate=8000, channels=2, frame_samples=160).read()
    pairs = np.frombuffer(frame.pcm, dtype="<i2").reshape(-1, 2)
    assert frame.channels == 2 and frame.samples == 160 and np.array_equal(pairs[:, 0], pairs[:, 1])


def test_float_wav_is_read(tmp_path: Path, dominant_frequency: Analyse) -> None:
    # IEEE float (format tag 3), which the stdlib wave module refuses before Python 3.12.
    path = tmp_path / "float.wav"
    pcm = _sine(500, 16000, 0.5).astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 16000 * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(pcm)) + pcm
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    source = open_audio_source(f"file: {path}", sample_rate=16000, frame_samples=320)
    x = _samples([source.read() for _ in range(20)])
    assert abs(dominant_frequency(x, 16000) - 500) < 1.0


def test_missing_or_bad_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.wav"):
        open_audio_source(f"file: {tmp_path / 'nope.wav'}", sample_rate=8000, frame_samples=160)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not a wav file at all")
    with pytest.raises(ConfigError):
        open_audio_source(f"file: {junk}", sample_rate=8000, frame_samples=160)
    with pytest.raises(ConfigError):
        open_audio_source("file:", sample_rate=8000, frame_samples=160)
    with pytest.raises(ConfigError):
        open_audio_sink(f"file: {tmp_path / 'no' / 'such' / 'dir.wav'}", sample_rate=8000, frame_samples=160)


def test_sink_file_is_valid_before_close(tmp_path: Path) -> None:
    # As if the process died: the header already counts every frame written.
    path = tmp_path / "live.wav"
    sink = open_audio_sink(f"file: {path}", sample_rate=16000, frame_samples=320)
    with wave.open(str(path), "rb") as w:
        assert w.getnframes() == 0 and w.getframerate() == 16000
    for i in range(3):
        sink.write(AudioFrame(np.full(320, i + 1, dtype="<i2").tobytes(), 16000))
    with wave.open(str(path), "rb") as w:
        assert w.getnframes() == 960
        data = np.frombuffer(w.readframes(960), dtype="<i2")
    assert list(data[::320]) == [1, 2, 3]
    sink.close()
    sink.close()  # twice is harmless
    sink.write(AudioFrame.silence(320, 16000))  # after close: ignored
    with wave.open(str(path), "rb") as w:
        assert w.getnframes() == 960


def test_sink_converts_frames_of_another_format(tmp_path: Path) -> None:
    path = tmp_path / "conv.wav"
    sink = open_audio_sink(f"file: {path}", sample_rate=8000, frame_samples=160)
    stereo = np.repeat(np.full(320, 1000, dtype="<i2"), 2)  # 20 ms at 16 kHz, stereo
    sink.write(AudioFrame(stereo.tobytes(), 16000, 2))
    sink.close()
    with wave.open(str(path), "rb") as w:
        assert w.getnchannels() == 1 and w.getframerate() == 8000
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    assert len(data) == 160 and np.all(data == 1000)
