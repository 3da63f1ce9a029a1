"""Speech through two softphones, scored with PESQ: on loopback and over an impaired link.

The caller and the callee both send the same speech file (looped) and record
what they receive.  The recording is aligned with the speech by
cross-correlation and scored with PESQ (narrow-band at 8 kHz for G.711,
wide-band at 16 kHz for G.722 and Opus).  The floors are real floors, not
benchmarks: they catch broken audio (wrong rate, byte order, gaps, noise), not
small losses of quality.
"""
from __future__ import annotations

import time
import warnings

import pytest

from tests.conftest import read_wav
from tests.media.conftest import align, longest_dropout_ms, pesq_score, resample

CODECS = [("PCMU", 8000), ("PCMA", 8000), ("G722", 16000), ("opus", 16000)]
IDS = [c for c, _ in CODECS]
CALL_S = 7
CLEAN_FLOOR = 2.5
# 5 % random loss scores 1.3-3.1 depending on which syllables the losses hit (G.722 lowest);
# below 1.1 the audio is broken, not merely degraded: dropouts are checked on their own
IMPAIRED_FLOOR = 1.1
MAX_DROPOUT_MS = 200
# a call that takes this much longer than CALL_S to end has waited on a timer somewhere (a lost
# BYE's Timer F is 32 s): it passes, but both sides' event lines go in pytest's warnings summary
SLOW_S = 10


def media_args(codec, speech, sink):
    return ["--no-video", "--audio-codec", codec, "--audio-source", f"file:{speech}",
            "--audio-sink", f"file:{sink}"]


def run_call(softphone, tmp_path, codec, speech, *, caller_ip="127.0.0.1", callee_ip="127.0.0.1",
             caller_ns=None, callee_ns=None):
    to_callee, to_caller = tmp_path / "callee_rx.wav", tmp_path / "caller_rx.wav"
    callee = softphone("--bind", callee_ip, "--sip-port", "0", "--rtp-port", "0",
                       "answer", "--auto", "--once", *media_args(codec, speech, to_callee),
                       netns=callee_ns)
    uri = f"sip:alice@{callee_ip}:{callee.port('udp')}"
    caller = softphone("--bind", caller_ip, "--sip-port", "0", "--rtp-port", "0",
                       "call", uri, "--duration", str(CALL_S), "--timeout", "20",
                       *media_args(codec, speech, to_caller), netns=caller_ns)
    rc_caller = caller.wait(CALL_S + 40)
    rc_callee = callee.wait(20)
    took = time.monotonic() - caller.started_at
    where = f"caller:\n{caller.describe()}\ncallee:\n{callee.describe()}"
    assert rc_caller == 0 and rc_callee == 0, where
    if took > CALL_S + SLOW_S:
        warnings.warn(f"{codec}: the caller ended {took:.1f} s after it started ({CALL_S} s in call)\n{where}",
                      stacklevel=1)
    return caller, callee, {"caller_to_callee": to_callee, "callee_to_caller": to_caller}, where


def check_call_lasted(caller, codec, where):
    s = caller.summary
    assert s is not None and s.get("result") == "completed", where
    assert str(s["audio"]["codec"]).split("/")[0].upper() == codec.upper(), where
    t = s.get("timeline", {})
    if "answered" in t and "bye" in t:
        assert t["bye"] - t["answered"] >= CALL_S - 1, f"{t}\n{where}"
    return s


def score(speech, wav, rate, label, record_property):
    mos = pesq_score(speech, wav, rate)
    print(f"PESQ {label}: {mos:.2f} ({'nb' if rate == 8000 else 'wb'})")
    record_property(f"pesq_{label}", round(mos, 3))
    return mos


def dropout_ms(speech, wav, skip_s=0.5):
    """Longest piece of speech lost, after the first `skip_s` (call set-up)."""
    ref, ref_rate = read_wav(speech)
    deg, deg_rate = read_wav(wav)
    deg = resample(deg, deg_rate, ref_rate)[int(skip_s * ref_rate):]
    ref, deg, _ = align(ref, deg)
    return longest_dropout_ms(ref, deg, ref_rate)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("codec, rate", CODECS, ids=IDS)
def test_speech_quality_clean(softphone, speech_wav, tmp_path, record_property, codec, rate):
    caller, _callee, wavs, where = run_call(softphone, tmp_path, codec, speech_wav)
    check_call_lasted(caller, codec, where)
    for direction, wav in wavs.items():
        mos = score(speech_wav, wav, rate, f"{codec}_{direction}", record_property)
        assert mos > CLEAN_FLOOR, f"{direction}: PESQ {mos:.2f} <= {CLEAN_FLOOR}\n{where}"
        gap = dropout_ms(speech_wav, wav)
        assert gap <= 60, f"{direction}: {gap:.0f} ms of speech lost in one piece\n{where}"


@pytest.mark.netns
@pytest.mark.timeout(120)
@pytest.mark.impairment(delay_ms=40, jitter_ms=20, loss_pct=5)
@pytest.mark.parametrize("codec, rate", CODECS, ids=IDS)
def test_speech_quality_impaired(softphone, impaired_namespaces, speech_wav, tmp_path, record_property,
                                 codec, rate):
    link = impaired_namespaces
    caller, _callee, wavs, where = run_call(
        softphone, tmp_path, codec, speech_wav, caller_ip=link.ip_a, callee_ip=link.ip_b,
        caller_ns=link.ns_a, callee_ns=link.ns_b)
    stats = link.stop_impairers()
    where += f"\nimpairers: {stats}"
    s = check_call_lasted(caller, codec, where)
    audio = s["audio"]
    expected = CALL_S * 1000 / 20
    # 5 % lost on the way, a few more late: most packets still arrive
    assert audio.get("rx_packets", 0) >= 0.75 * expected, f"{audio}\n{where}"
    print(f"{codec} caller audio: {audio}")
    for direction, wav in wavs.items():
        mos = score(speech_wav, wav, rate, f"{codec}_{direction}_impaired", record_property)
        assert mos > IMPAIRED_FLOOR, f"{direction}: PESQ {mos:.2f} <= {IMPAIRED_FLOOR}\n{where}"
        gap = dropout_ms(speech_wav, wav)
        record_property(f"dropout_ms_{codec}_{direction}", gap)
        assert gap <= MAX_DROPOUT_MS, f"{direction}: {gap:.0f} ms of speech lost in one piece\n{where}"
