"""softphone calls softphone with real RTP audio: every codec, both directions, DTMF, counters."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

CODECS = ["PCMU", "PCMA", "G722", "opus"]


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        if w.getnchannels() > 1:
            data = data.reshape(-1, w.getnchannels()).mean(axis=1)
    return data, rate


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft((x - x.mean()) * np.hanning(x.size)))
    k = int(np.argmax(spectrum[1:]) + 1)
    a, b, c = spectrum[k - 1], spectrum[k], spectrum[k + 1]
    d = 0.5 * (a - c) / (a - 2 * b + c) if (a - 2 * b + c) else 0.0
    return float((k + d) * rate / x.size)


def longest_gap_ms(x: np.ndarray, rate: int, threshold: float = 200.0) -> float:
    """The longest run of near-silent samples (a sine crosses zero, so use 1 ms windows)."""
    window = max(1, rate // 1000)
    frames = x[: x.size // window * window].reshape(-1, window)
    quiet = np.abs(frames).max(axis=1) < threshold
    longest = run = 0
    for q in quiet:
        run = run + 1 if q else 0
        longest = max(longest, run)
    return float(longest)


def tone_call(softphone, tmp_path: Path, codec: str, *extra_call: str):
    answerer_wav, caller_wav = tmp_path / "answerer.wav", tmp_path / "caller.wav"
    answerer = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", "--once",
                         "--audio-codec", codec, "--audio-source", "tone: 880", "--audio-sink", f"file: {answerer_wav}")
    caller = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call",
                       f"sip:bob@127.0.0.1:{answerer.port()}", "--duration", "3", "--no-video",
                       "--audio-codec", codec, "--audio-source", "tone: 440", "--audio-sink", f"file: {caller_wav}",
                       *extra_call)
    assert caller.wait(30) == 0, caller.describe()
    assert answerer.wait(15) == 0, answerer.describe()
    return caller, answerer, caller_wav, answerer_wav


@pytest.mark.timeout(60)
@pytest.mark.parametrize("codec", CODECS)
def test_tone_both_ways(softphone, tmp_path, codec):
    caller, answerer, caller_wav, answerer_wav = tone_call(softphone, tmp_path, codec)
    for wav, expected in ((answerer_wav, 440.0), (caller_wav, 880.0)):
        x, rate = read_wav(wav)
        assert x.size > rate, f"{wav.name}: only {x.size} samples"
        body = x[int(0.3 * rate) : x.size - int(0.2 * rate)]  # skip buffering and the hang-up
        # the median over half-second windows: one concealed packet on a loaded machine
        # must not move the estimate of a whole recording
        half = rate // 2
        estimates = [dominant_hz(body[i : i + half], rate) for i in range(0, body.size - half + 1, half // 2)]
        assert abs(float(np.median(estimates)) - expected) < 2.0, (wav.name, estimates)
        # on clean loopback no gap longer than one packet (20 ms)
        assert longest_gap_ms(body, rate) <= 20.0, wav.name
    audio = caller.summary["audio"]
    assert audio["codec"].lower() == codec.lower() and audio["media"] == "rtp"
    assert audio["tx_packets"] >= 90 and audio["rx_packets"] >= 90, audio
    assert audio["lost"] == 0, audio
    # audio arrived while the call was up (how soon after the answer is host load: a benchmark's)
    timeline = caller.summary["timeline"]
    assert timeline["answered"] <= timeline["first_audio_rx"] < timeline["bye"], timeline


@pytest.mark.timeout(60)
def test_dtmf_between_softphones(softphone, tmp_path):
    caller, answerer, _, _ = tone_call(softphone, tmp_path, "PCMU", "--dtmf", "123#")
    digits = "".join(e["digit"] for e in answerer.find_events("dtmf"))
    assert digits == "123#", answerer.describe()
    (end,) = answerer.summary["calls"]
    assert end["audio"]["dtmf_received"] == "123#"


@pytest.mark.timeout(60)
def test_rtcp_reports_round_trip_time(softphone, tmp_path):
    # RTCP reports start 1.25-3.75 s into the call and follow every 2.5-7.5 s (RFC 3550 §6.2):
    # in 10 s at least one side has had an answer to one of its sender reports
    answerer = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", "--once",
                         "--audio-codec", "PCMA", "--audio-source", "tone: 880", "--audio-sink", "null:")
    caller = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call",
                       f"sip:bob@127.0.0.1:{answerer.port()}", "--duration", "10", "--no-video",
                       "--audio-source", "tone: 440", "--audio-sink", "null:")
    assert caller.wait(30) == 0, caller.describe()
    assert answerer.wait(10) == 0, answerer.describe()
    ends = [caller.summary["audio"], answerer.summary["calls"][0]["audio"]]
    rtts = [audio["rtt_ms"] for audio in ends if audio["rtt_ms"] is not None]
    assert rtts and all(0 <= rtt < 50 for rtt in rtts), ends
    assert all(audio["jitter_ms"] < 20 for audio in ends), ends


@pytest.mark.timeout(60)
def test_codec_order_and_enabling_from_config_sections(softphone, tmp_path):
    # like linphonerc: [audio_codec_N] in preference order; a disabled codec is not offered
    answerer_rc = tmp_path / "answerer.rc"
    answerer_rc.write_text(
        "[audio_codec_0]\nmime=G722\nrate=8000\nenabled=1\n"
        "[audio_codec_1]\nmime=PCMA\nrate=8000\nenabled=1\n"
    )
    caller_rc = tmp_path / "caller.rc"
    caller_rc.write_text(
        "[audio_codec_0]\nmime=PCMU\nrate=8000\nenabled=1\n"
        "[audio_codec_1]\nmime=G722\nrate=8000\nenabled=0\n"
        "[audio_codec_2]\nmime=PCMA\nrate=8000\nenabled=1\n"
    )
    answerer = softphone("-c", answerer_rc, "--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "-vv",
                         "answer", "--auto", "--once", "--audio-source", "tone: 880", "--audio-sink", "null:")
    caller = softphone("-c", caller_rc, "--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call",
                       f"sip:bob@127.0.0.1:{answerer.port()}", "--duration", "1", "--no-video",
                       "--audio-source", "tone: 440", "--audio-sink", "null:")
    assert caller.wait(30) == 0, caller.describe()
    assert answerer.wait(15) == 0, answerer.describe()
    # G722 is disabled at the caller, so the answerer's next preference (PCMA) wins over PCMU
    assert caller.summary["audio"]["codec"] == "PCMA", caller.summary
    offer = answerer.stderr.split("m=audio", 1)[1].splitlines()[0]
    assert offer.split()[2:] == ["0", "8", "96"], offer  # PCMU, PCMA, telephone-event
