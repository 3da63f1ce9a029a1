"""A call through real PortAudio devices on both ends (a private PulseAudio with null sinks).

The test plays a tone into the "mouth" sink; the caller captures the mouth's monitor with
PyAudio and sends it; the callee plays what it receives with PyAudio into the "ear" sink;
the test records the ear's monitor and finds the tone there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.devices.conftest import null_sink_arguments

RATE = 16000


def pactl(server, *args: str) -> str:
    env = dict(os.environ, PULSE_SERVER=server.server)
    result = subprocess.run(["pactl", *args], env=env, capture_output=True, text=True, timeout=10, check=True)
    return result.stdout.strip()


def tone_wav(path: Path, hz: float, seconds: float) -> None:
    t = np.arange(int(seconds * RATE)) / RATE
    pcm = (0.5 * 32767 * np.sin(2 * np.pi * hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(pcm.tobytes())


def dominant_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(x.size)))
    k = int(np.argmax(spectrum[1:]) + 1)
    a, b, c = spectrum[k - 1], spectrum[k], spectrum[k + 1]
    d = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) else 0.0
    return float((k + d) * RATE / x.size)


@pytest.mark.timeout(90)
def test_tone_through_pyaudio_capture_and_playback(pulse_audio, softphone, tmp_path):
    for name in ("mouth", "ear"):
        pactl(pulse_audio, "load-module", "module-null-sink", *null_sink_arguments(name, RATE))
    pulse = {"PULSE_SERVER": pulse_audio.server}
    callee = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", "--once",
                       "--audio-codec", "G722", "--audio-source", "silence:", "--audio-sink", "pyaudio: default",
                       env={**pulse, "PULSE_SINK": "ear", "PULSE_SOURCE": "ear.monitor"})
    port = callee.port()
    wav = tmp_path / "mouth.wav"
    tone_wav(wav, 440.0, 30.0)
    recording = tmp_path / "ear.raw"
    env = dict(os.environ, PULSE_SERVER=pulse_audio.server)
    mouth = subprocess.Popen(["paplay", "--device=mouth", str(wav)], env=env, stdin=subprocess.DEVNULL)
    ear = subprocess.Popen(["parec", "--device=ear.monitor", "--format=s16le", f"--rate={RATE}", "--channels=1",
                            "--raw", str(recording)], env=env, stdin=subprocess.DEVNULL)
    try:
        caller = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call",
                           f"sip:ear@127.0.0.1:{port}", "--duration", "8", "--no-video", "--audio-codec", "G722",
                           "--audio-source", "pyaudio: default", "--audio-sink", "null:",
                           env={**pulse, "PULSE_SINK": "mouth", "PULSE_SOURCE": "mouth.monitor"})
        assert caller.wait(45) == 0, caller.describe()
        assert callee.wait(20) == 0, callee.describe()
    finally:
        for proc in (mouth, ear):
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
            proc.wait(10)
    audio = caller.summary["audio"]
    assert audio["source"] == "pyaudio: default" and audio["tx_packets"] > 200, audio
    assert not caller.find_events("device_error") and not callee.find_events("device_error"), callee.describe()
    samples = np.frombuffer(recording.read_bytes(), dtype="<i2").astype(np.float64)
    # PulseAudio may start the streams late: look for one second of the tone anywhere
    best = 0.0
    for start in range(0, max(1, samples.size - RATE), RATE // 2):
        window = samples[start : start + RATE]
        if window.size == RATE and np.abs(window).max() > 1000:
            best = dominant_hz(window)
            if abs(best - 440.0) < 2.0:
                break
    assert abs(best - 440.0) < 2.0, f"no 440 Hz second in {samples.size / RATE:.1f} s recorded (best {best:.1f} Hz)"


@pytest.mark.timeout(60)
def test_devices_lists_pulseaudio(pulse_audio, softphone):
    listing = softphone("devices", env={"PULSE_SERVER": pulse_audio.server})
    assert listing.wait(30) == 0, listing.describe()
    (event,) = listing.find_events("devices")
    names = [d["name"] for d in event["audio"]]
    assert "pulse" in names and "default" in names, names
    default = next(d for d in event["audio"] if d["name"] == "default")
    assert default["max_input_channels"] > 0 and default["max_output_channels"] > 0


@pytest.mark.timeout(90)
def test_ringback_is_played_while_the_peer_rings(pulse_audio, softphone, tmp_path):
    pactl(pulse_audio, "load-module", "module-null-sink", *null_sink_arguments("speaker", RATE))
    callee = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", "--once",
                       "--delay", "4", "--audio-source", "silence:", "--audio-sink", "null:")
    recording = tmp_path / "speaker.raw"
    env = dict(os.environ, PULSE_SERVER=pulse_audio.server)
    speaker = subprocess.Popen(["parec", "--device=speaker.monitor", "--format=s16le", f"--rate={RATE}",
                                "--channels=1", "--raw", str(recording)], env=env, stdin=subprocess.DEVNULL)
    try:
        caller = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call",
                           f"sip:x@127.0.0.1:{callee.port()}", "--duration", "0.5", "--no-video",
                           "--audio-source", "silence:", "--audio-sink", "pyaudio: default",
                           env={"PULSE_SERVER": pulse_audio.server, "PULSE_SINK": "speaker"})
        assert caller.wait(45) == 0, caller.describe()
    finally:
        if speaker.poll() is None:
            os.kill(speaker.pid, signal.SIGTERM)
        speaker.wait(10)
    samples = np.frombuffer(recording.read_bytes(), dtype="<i2").astype(np.float64)
    loud = samples[np.abs(samples) > 500]
    assert loud.size > RATE // 2, f"no ringback heard ({loud.size} loud samples)"
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    freqs = np.fft.rfftfreq(samples.size, 1 / RATE)
    first = int(np.argmax(spectrum))
    spectrum[np.abs(freqs - freqs[first]) < 20] = 0  # the second tone is the strongest peak elsewhere
    peaks = sorted((freqs[first], freqs[int(np.argmax(spectrum))]))
    assert abs(peaks[0] - 440) < 3 and abs(peaks[1] - 480) < 3, peaks
