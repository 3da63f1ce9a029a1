"""The PortAudio devices on real PortAudio streams, through a private PulseAudio daemon with a null sink.

A tone written to a PyAudioSink plays into the null sink; a PyAudioSource records the
sink's monitor. A new stream may be slow to move on a busy machine, so the loops below
run until enough tone has come back, within a generous deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from softphone.devices import list_audio_devices, open_audio_sink, open_audio_source
from softphone.devices.audio_pyaudio import PyAudioSink, PyAudioSource, RingBuffer, StreamResampler, choose_device
from softphone.devices.synthetic import ToneSource
from softphone.errors import ConfigError
from softphone.frames import AudioFrame

Analyse = Callable[[np.ndarray, int], float]

PTIME = 0.02
LOUD = 1000  # a frame whose peak passes this carries the tone
DEADLINE_S = 12.0  # PulseAudio may be slow to start a stream and run below real time
WANTED_TONE_S = 1.0
MAX_CALL_S = 0.05  # read()/write() must return at once; this leaves room for a busy machine


def _pcm(frame: AudioFrame) -> np.ndarray:
    return np.frombuffer(frame.pcm, dtype="<i2").astype(np.float64)


def _longest_loud_run(frames: list[AudioFrame]) -> list[AudioFrame]:
    best: list[AudioFrame] = []
    run: list[AudioFrame] = []
    for frame in frames:
        if np.abs(_pcm(frame)).max() > LOUD:
            run.append(frame)
            if len(run) > len(best):
                best = list(run)
        else:
            run = []
    return best


def _play_and_record(sink: Any, source: Any, tone: ToneSource) -> tuple[list[AudioFrame], float]:
    """Write the tone and read the monitor every ptime until a long enough run of tone is back."""
    frames: list[AudioFrame] = []
    slowest = 0.0
    wanted = int(WANTED_TONE_S / PTIME)
    start = next_tick = time.monotonic()
    while time.monotonic() - start < DEADLINE_S:
        frame = tone.read()
        t0 = time.monotonic()
        sink.write(frame)
        captured = source.read()
        slowest = max(slowest, time.monotonic() - t0)
        assert captured.samples == source.frame_samples and captured.sample_rate == source.sample_rate
        frames.append(captured)
        if len(frames) % 10 == 0 and len(_longest_loud_run(frames)) >= wanted:
            break
        next_tick += PTIME
        time.sleep(max(0.0, next_tick - time.monotonic()))
    return frames, slowest


def _check_tone(frames: list[AudioFrame], rate: int, freq: float, slowest: float, analyse: Analyse) -> None:
    run = _longest_loud_run(frames)
    loud_total = sum(1 for f in frames if np.abs(_pcm(f)).max() > LOUD)
    assert len(run) * PTIME >= WANTED_TONE_S, (
        f"only {len(run) * PTIME:.2f} s of continuous tone came back in {len(frames) * PTIME:.1f} s "
        f"({loud_total} loud frames in all)")
    x = np.concatenate([_pcm(f) for f in run])
    assert abs(analyse(x, rate) - freq) <= 2.0
    assert 0.3 * 32767 < np.abs(x).max() < 0.6 * 32767  # the tone's amplitude, 0.5, survives the trip
    assert slowest < MAX_CALL_S


def test_lists_the_pulse_devices(pulse_audio: Any) -> None:
    devices = list_audio_devices()
    names = [d["name"] for d in devices]
    assert "pulse" in names and "default" in names, f"PortAudio devices: {devices}"
    for d in devices:
        assert set(d) >= {"index", "name", "host_api", "max_input_channels", "max_output_channels",
                          "default_sample_rate", "is_default_input", "is_default_output"}
    pulse = devices[names.index("pulse")]
    assert pulse["max_input_channels"] > 0 and pulse["max_output_channels"] > 0
    assert sum(d["is_default_input"] for d in devices) == 1
    assert sum(d["is_default_output"] for d in devices) == 1


def test_tone_played_into_the_null_sink_is_recorded_from_its_monitor(
    pulse_audio: Any, dominant_frequency: Analyse
) -> None:
    rate, frame = 16000, 320
    sink = open_audio_sink("pyaudio: default", sample_rate=rate, frame_samples=frame)
    source = open_audio_source("pyaudio: default", sample_rate=rate, frame_samples=frame)
    try:
        frames, slowest = _play_and_record(sink, source, ToneSource("440", sample_rate=rate, frame_samples=frame))
    finally:
        source.close()
        sink.close()
    _check_tone(frames, rate, 440.0, slowest, dominant_frequency)


def test_devices_opened_at_another_rate_resample(pulse_audio: Any, dominant_frequency: Analyse) -> None:
    # As when a device refuses the asked rate: the stream runs at the device rate and
    # the ring buffers' side converts, both ways.
    rate, frame = 8000, 160
    sink = PyAudioSink("pulse", sample_rate=rate, frame_samples=frame, device_rate=44100)
    source = PyAudioSource("pulse", sample_rate=rate, frame_samples=frame, device_rate=48000)
    try:
        assert (sink.device_rate, source.device_rate) == (44100, 48000)
        assert sink.device_name == source.device_name == "pulse"
        frames, slowest = _play_and_record(sink, source, ToneSource("1000", sample_rate=rate, frame_samples=frame))
    finally:
        source.close()
        sink.close()
    _check_tone(frames, rate, 1000.0, slowest, dominant_frequency)


def test_read_gives_silence_at_once_when_nothing_was_captured(pulse_audio: Any) -> None:
    source = PyAudioSource("default", sample_rate=8000, frame_samples=160)
    try:
        for _ in range(5):  # straight after opening nothing has arrived yet
            t0 = time.monotonic()
            frame = source.read()
            assert time.monotonic() - t0 < MAX_CALL_S
            assert frame.pcm == bytes(320) and frame.sample_rate == 8000
        source._stream.stop_stream()  # the device stops delivering: reads drain the ring, then silence
        for _ in range(30):
            t0 = time.monotonic()
            frame = source.read()
            assert time.monotonic() - t0 < MAX_CALL_S
            assert frame.samples == 160
        assert frame.pcm == bytes(320)
    finally:
        source.close()
    assert source.read().pcm == bytes(320)  # and after close


def test_unknown_device_names_the_available_ones(pulse_audio: Any) -> None:
    for opener in (open_audio_source, open_audio_sink):
        with pytest.raises(ConfigError) as err:
            opener("pyaudio: no such card", sample_rate=8000, frame_samples=160)
        message = str(err.value)
        assert "'no such card'" in message and "'pulse'" in message and "'default'" in message
    with pytest.raises(ConfigError, match="available"):
        open_audio_source("pyaudio: 99", sample_rate=8000, frame_samples=160)


def test_device_by_index_and_by_part_of_its_name(pulse_audio: Any) -> None:
    devices = list_audio_devices()
    pulse = next(d for d in devices if d["name"] == "pulse")
    by_index = PyAudioSink(str(pulse["index"]), sample_rate=8000, frame_samples=160)
    by_part = PyAudioSource("PUL", sample_rate=8000, frame_samples=160)
    try:
        assert by_index.device_name == "pulse" and by_part.device_name == "pulse"
    finally:
        by_index.close()
        by_part.close()


# --------------------------------------------------------------------------- without a sound server


def test_no_devices_is_an_empty_list_and_quiet(monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
                                               capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/nobody-listens")
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    devices = list_audio_devices()
    assert isinstance(devices, list)
    err = capfd.readouterr().err
    assert "ALSA lib" not in err and "jack" not in err.lower()  # PortAudio's probing noise is kept off stderr
    if not any(d["max_input_channels"] for d in devices):
        with pytest.raises(ConfigError, match="no PyAudio input device"):
            open_audio_source("pyaudio: default", sample_rate=8000, frame_samples=160)


def test_choose_device_rules() -> None:
    def dev(index: int, name: str, ins: int, outs: int, default: bool = False) -> dict[str, Any]:
        return {"index": index, "name": name, "max_input_channels": ins, "max_output_channels": outs,
                "is_default_input": default and ins > 0, "is_default_output": default and outs > 0}

    devices = [dev(0, "HDA Intel: ALC (hw:0,0)", 2, 2), dev(1, "USB Mic", 1, 0), dev(2, "pulse", 32, 32),
               dev(3, "default", 32, 32, default=True)]
    assert choose_device(devices, "default", "input")["index"] == 3
    assert choose_device(devices, "", "output")["index"] == 3
    assert choose_device(devices, "usb", "input")["index"] == 1
    assert choose_device(devices, "Pulse", "output")["index"] == 2  # an exact name wins over a part
    assert choose_device(devices, "0", "output")["index"] == 0
    with pytest.raises(ConfigError, match="unknown PyAudio output device 'usb'"):
        choose_device(devices, "usb", "output")  # the mic has no output channels
    with pytest.raises(ConfigError, match="unknown PyAudio input device '7'"):
        choose_device(devices, "7", "input")
    many = [dev(i, f"card{i}", 1, 1) for i in range(25)]
    with pytest.raises(ConfigError) as err:
        choose_device(many, "x", "input")
    assert "'card9'" in str(err.value) and "'card10'" not in str(err.value) and "15 more" in str(err.value)
    with pytest.raises(ConfigError, match="no PyAudio output device"):
        choose_device([dev(0, "mic", 1, 0)], "default", "output")


def test_ring_buffer_drops_the_oldest_whole_samples() -> None:
    ring = RingBuffer(capacity=10, keep=4, align=2)
    ring.push(b"abcdefgh")
    assert len(ring) == 8 and ring.dropped == 0
    ring.push(b"ijkl")  # 12 > 10: keep the newest 4
    assert ring.pop(100) == b"ijkl" and ring.dropped == 8
    ring.push(b"mnopqr")
    ring.trim(3)  # rounds up to whole samples: 2 bytes stay
    assert ring.pop(100) == b"qr"
    assert ring.pop(4) == b""


def test_stream_resampler_is_seamless_across_pieces() -> None:
    rate_in, rate_out = 48000, 8000
    x = np.rint(10000 * np.sin(2 * np.pi * 440 * np.arange(48000) / rate_in)).astype("<i2")
    whole = np.frombuffer(StreamResampler(rate_in, rate_out).convert(x.tobytes()), dtype="<i2")
    chunked = StreamResampler(rate_in, rate_out)
    pieces, pos = [], 0
    for size in [1, 2, 7, 441, 960, 1000, 3] * 40:
        pieces.append(chunked.convert(x[pos:pos + size].tobytes()))
        pos += size
    pieces.append(chunked.convert(x[pos:].tobytes()))
    joined = np.frombuffer(b"".join(pieces), dtype="<i2")
    assert len(joined) == len(whole) and abs(len(whole) - 8000) <= 1
    assert np.array_equal(joined, whole)
    expected = np.rint(10000 * np.sin(2 * np.pi * 440 * np.arange(len(whole)) / rate_out))
    assert np.max(np.abs(whole - expected)) <= 2


def test_stream_resampler_upsamples_stereo() -> None:
    left = np.arange(0, 1000, 10, dtype="<i2")
    pcm = np.stack([left, -left], axis=1).reshape(-1).tobytes()
    out = np.frombuffer(StreamResampler(8000, 16000, channels=2).convert(pcm), dtype="<i2").reshape(-1, 2)
    assert len(out) == 2 * len(left) - 2
    assert np.array_equal(out[:, 0], -out[:, 1])
    assert list(out[:5, 0]) == [0, 5, 10, 15, 20]
