"""Audio with real peers: tones both ways, checked on the audio each side received.

Each side sends a different sine; each side records what it receives; the test
finds the dominant frequency of each recording (within 2 Hz) and, on clean
loopback, checks that the tone has no hole longer than one packet (20 ms) once
the first 0.3 s are past.  The first tests check the peers alone, so that a
broken peer set-up is told apart from a softphone fault.
"""
from __future__ import annotations

import time

import pytest

from tests.interop.conftest import dominant_frequency, longest_gap_ms, read_wav

pytestmark = pytest.mark.interop

PTIME_MS = 20
SKIP_S = 0.3
SOFTPHONE_HZ = 440
PEER_HZ = 880
CALL_S = 2.5


def assert_tone(wav, hz, where, *, skip_s=SKIP_S, max_gap_ms=PTIME_MS + 1):
    """The recording holds `hz` (+-2 Hz) with no hole longer than `max_gap_ms`."""
    x, rate = read_wav(wav)
    assert x.size > rate * (skip_s + 1.0), f"{wav}: only {x.size / rate:.2f} s recorded\n{where}"
    f = dominant_frequency(x, rate, skip_s=skip_s)
    assert abs(f - hz) <= 2, f"{wav}: dominant {f:.1f} Hz, expected {hz} Hz\n{where}"
    gap = longest_gap_ms(x, rate, skip_s=skip_s)
    if max_gap_ms is not None:
        assert gap <= max_gap_ms, f"{wav}: a {gap:.1f} ms hole in the {hz} Hz tone\n{where}"
    return f, gap


def codec_name(value: object) -> str | None:
    if isinstance(value, dict):
        value = value.get("codec")
    return str(value).split("/")[0].upper() if value else None


def media_args(codec: str, sink) -> list[str]:
    return ["--no-video", "--audio-codec", codec, "--audio-source", f"tone:{SOFTPHONE_HZ}",
            "--audio-sink", f"file:{sink}"]


def answer_softphone(softphone, codec, sink, *extra):
    sp = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0",
                   "answer", "--auto", "--once", *media_args(codec, sink), *extra)
    return sp, f"sip:softphone@127.0.0.1:{sp.port('udp')}"


def call_softphone(softphone, uri, codec, sink, *extra, duration=CALL_S):
    return softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0",
                     "call", uri, "--duration", str(duration), "--timeout", "15",
                     *media_args(codec, sink), *extra)


def check_softphone_summary(sp, codec, where):
    s = sp.summary
    assert s is not None, where
    calls = s.get("calls")
    if calls:  # answer mode: one summary per call
        s = calls[0]
    assert codec_name(s.get("audio")) == codec.upper(), f"{s.get('audio')}\n{where}"
    audio = s["audio"]
    expected = CALL_S * 1000 / PTIME_MS
    assert audio.get("rx_packets", 0) >= 0.7 * expected, f"{audio}\n{where}"
    assert audio.get("tx_packets", 0) >= 0.7 * expected, f"{audio}\n{where}"
    return s


def dtmf_digits(sp) -> str:
    return "".join(str(e.get("digit", "")) for e in sp.find_events("dtmf"))


def wait_until(cond, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not cond():
        time.sleep(0.05)
    return cond()


# =========================================================================== the peers alone


@pytest.mark.timeout(60)
@pytest.mark.parametrize("codec", ["opus", "G722", "PCMU", "PCMA"])
def test_peers_baresip_to_baresip(baresip_peer, codec):
    callee = baresip_peer("answer", codecs=[codec], tone_hz=PEER_HZ)
    caller = baresip_peer("call", user="alice", dial=callee.uri, codecs=[codec],
                          tone_hz=SOFTPHONE_HZ, hangup_after=3)
    caller.wait_event("CALL_ESTABLISHED", 10)
    caller.wait(20)
    callee.stop()
    where = f"caller:\n{caller.log()}\ncallee:\n{callee.log()}"
    assert caller.codec() == callee.codec() == codec, where
    assert_tone(caller.received_wav(), PEER_HZ, where)
    assert_tone(callee.received_wav(), SOFTPHONE_HZ, where)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("codec", ["opus", "PCMU", "G722"])
def test_peers_baresip_to_linphonec(linphonec_peer, baresip_peer, codec):
    lp = linphonec_peer(codecs=[codec], tone_hz=PEER_HZ)
    bs = baresip_peer("call", user="alice", dial=lp.uri, codecs=[codec], tone_hz=SOFTPHONE_HZ,
                      hangup_after=3)
    bs.wait_event("CALL_ESTABLISHED", 10)
    bs.wait(20)
    lp.wait_ended(5)
    lp.stop()
    where = f"baresip:\n{bs.log()}\nlinphonec:\n{lp.output()}"
    assert bs.codec() == codec and lp.codec() == codec, where
    assert_tone(bs.received_wav(), PEER_HZ, where)
    assert_tone(lp.received_wav(), SOFTPHONE_HZ, where)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("codec", ["PCMU/8000", "G722/16000"])
def test_peers_pjsua2_to_baresip_with_dtmf(pjsua2_peer, baresip_peer, tmp_path, codec):
    bs = baresip_peer("answer", codecs=[codec.split("/")[0]], tone_hz=PEER_HZ)
    rec = tmp_path / "pjsua2.wav"
    peer = pjsua2_peer("call", call_uri=bs.uri, codec=codec, duration=3, max_time=20,
                       extra=["--tone", str(SOFTPHONE_HZ), "--record", str(rec), "--dtmf", "123#"])
    res = peer.wait(30)
    bs.wait_event("CALL_CLOSED", 5)
    bs.stop()
    where = f"baresip:\n{bs.log()}\npjsua2:\n{peer.stderr[-3000:]}\n{res}"
    assert res["calls"][0]["codec"] == codec, where
    assert bs.codec() == codec.split("/")[0], where
    assert bs.dtmf_digits() == "123#", where
    assert_tone(bs.received_wav(), SOFTPHONE_HZ, where)
    assert_tone(rec, PEER_HZ, where)


# =========================================================================== softphone <-> pjsua2

PJSUA2_CODECS = [("PCMU", "PCMU/8000"), ("PCMA", "PCMA/8000"), ("G722", "G722/16000")]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("codec, pj_codec", PJSUA2_CODECS, ids=[c for c, _ in PJSUA2_CODECS])
def test_softphone_calls_pjsua2_tone(softphone, pjsua2_peer, tmp_path, codec, pj_codec):
    rec, out = tmp_path / "pjsua2.wav", tmp_path / "softphone.wav"
    peer = pjsua2_peer("answer", codec=pj_codec, calls=1, max_time=30,
                       extra=["--tone", str(PEER_HZ), "--record", str(rec)])
    sp = call_softphone(softphone, f"sip:peer@127.0.0.1:{peer.port}", codec, out)
    rc = sp.wait(30)
    res = peer.wait(20)
    where = f"pjsua2:\n{peer.stderr[-3000:]}\n{res}\n{sp.describe()}"
    assert rc == 0, where
    assert res["calls"][0]["codec"] == pj_codec, where
    check_softphone_summary(sp, codec, where)
    assert_tone(out, PEER_HZ, where)
    assert_tone(rec, SOFTPHONE_HZ, where)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("codec, pj_codec", PJSUA2_CODECS, ids=[c for c, _ in PJSUA2_CODECS])
def test_pjsua2_calls_softphone_tone(softphone, pjsua2_peer, tmp_path, codec, pj_codec):
    rec, out = tmp_path / "pjsua2.wav", tmp_path / "softphone.wav"
    sp, uri = answer_softphone(softphone, codec, out)
    peer = pjsua2_peer("call", call_uri=uri, codec=pj_codec, duration=CALL_S, max_time=30,
                       extra=["--tone", str(PEER_HZ), "--record", str(rec)])
    res = peer.wait(35)
    rc = sp.wait(15)
    where = f"pjsua2:\n{peer.stderr[-3000:]}\n{res}\n{sp.describe()}"
    assert rc == 0, where
    assert res["calls"][0]["codec"] == pj_codec, where
    check_softphone_summary(sp, codec, where)
    assert_tone(out, PEER_HZ, where)
    assert_tone(rec, SOFTPHONE_HZ, where)


# =========================================================================== softphone <-> baresip


@pytest.mark.timeout(60)
@pytest.mark.parametrize("codec", ["opus", "PCMU"])
def test_softphone_calls_baresip_tone(softphone, baresip_peer, tmp_path, codec):
    out = tmp_path / "softphone.wav"
    bs = baresip_peer("answer", codecs=[codec], tone_hz=PEER_HZ)
    sp = call_softphone(softphone, bs.uri, codec, out)
    rc = sp.wait(30)
    bs.wait_event("CALL_CLOSED", 5)
    bs.stop()
    where = f"baresip:\n{bs.log()}\n{sp.describe()}"
    assert rc == 0, where
    assert bs.codec() == codec, where
    check_softphone_summary(sp, codec, where)
    assert_tone(out, PEER_HZ, where)
    assert_tone(bs.received_wav(), SOFTPHONE_HZ, where)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("codec", ["opus", "PCMU"])
def test_baresip_calls_softphone_tone(softphone, baresip_peer, tmp_path, codec):
    out = tmp_path / "softphone.wav"
    sp, uri = answer_softphone(softphone, codec, out)
    bs = baresip_peer("call", user="alice", dial=uri, codecs=[codec], tone_hz=PEER_HZ,
                      hangup_after=CALL_S)
    bs.wait_event("CALL_ESTABLISHED", 10)
    bs.wait(CALL_S + 15)
    rc = sp.wait(15)
    where = f"baresip:\n{bs.log()}\n{sp.describe()}"
    assert rc == 0, where
    assert bs.codec() == codec, where
    check_softphone_summary(sp, codec, where)
    assert_tone(out, PEER_HZ, where)
    assert_tone(bs.received_wav(), SOFTPHONE_HZ, where)


# =========================================================================== softphone <-> linphonec


@pytest.mark.timeout(60)
@pytest.mark.parametrize("codec", ["PCMU", "opus"])
def test_softphone_calls_linphonec_tone(softphone, linphonec_peer, tmp_path, codec):
    out = tmp_path / "softphone.wav"
    lp = linphonec_peer(codecs=[codec], tone_hz=PEER_HZ)
    sp = call_softphone(softphone, lp.uri, codec, out)
    rc = sp.wait(30)
    lp.wait_ended(5)
    lp.stop()
    where = f"linphonec:\n{lp.output()[-3000:]}\n{sp.describe()}"
    assert rc == 0, where
    assert lp.codec() == codec, where
    check_softphone_summary(sp, codec, where)
    assert_tone(out, PEER_HZ, where)
    assert_tone(lp.received_wav(), SOFTPHONE_HZ, where)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("codec", ["PCMU", "opus"])
def test_linphonec_calls_softphone_tone(softphone, linphonec_peer, tmp_path, codec):
    out = tmp_path / "softphone.wav"
    sp, uri = answer_softphone(softphone, codec, out)
    lp = linphonec_peer(codecs=[codec], tone_hz=PEER_HZ)
    lp.call(uri)
    lp.wait_connected(10)
    time.sleep(CALL_S)
    lp.terminate()
    lp.wait_ended(5)
    rc = sp.wait(15)
    lp.stop()
    where = f"linphonec:\n{lp.output()[-3000:]}\n{sp.describe()}"
    assert rc == 0, where
    assert lp.codec() == codec, where
    check_softphone_summary(sp, codec, where)
    assert_tone(out, PEER_HZ, where)
    assert_tone(lp.received_wav(), SOFTPHONE_HZ, where)


# =========================================================================== DTMF (RFC 4733)


@pytest.mark.timeout(60)
def test_softphone_sends_dtmf_to_baresip(softphone, baresip_peer, tmp_path):
    bs = baresip_peer("answer", codecs=["PCMU"], tone_hz=PEER_HZ)
    sp = call_softphone(softphone, bs.uri, "PCMU", tmp_path / "softphone.wav", "--dtmf", "123#")
    rc = sp.wait(30)
    bs.wait_event("CALL_CLOSED", 5)
    where = f"baresip:\n{bs.log()}\n{sp.describe()}"
    assert rc == 0, where
    assert bs.dtmf_digits() == "123#", f"{[e for e in bs.events if 'DTMF' in str(e.get('type'))]}\n{where}"


@pytest.mark.timeout(60)
def test_softphone_sends_dtmf_to_pjsua2(softphone, pjsua2_peer, tmp_path):
    peer = pjsua2_peer("answer", codec="PCMU/8000", calls=1, max_time=30, extra=["--tone", str(PEER_HZ)])
    sp = call_softphone(softphone, f"sip:peer@127.0.0.1:{peer.port}", "PCMU", tmp_path / "softphone.wav",
                        "--dtmf", "*90A")
    rc = sp.wait(30)
    res = peer.wait(20)
    where = f"pjsua2:\n{peer.stderr[-3000:]}\n{res}\n{sp.describe()}"
    assert rc == 0, where
    assert res["calls"][0]["dtmf_rx"] == "*90A", where


@pytest.mark.timeout(60)
@pytest.mark.parametrize("codec, pj_codec", [("PCMU", "PCMU/8000"), ("G722", "G722/16000")], ids=["PCMU", "G722"])
def test_pjsua2_dtmf_reaches_softphone(softphone, pjsua2_peer, tmp_path, codec, pj_codec):
    sp, uri = answer_softphone(softphone, codec, tmp_path / "softphone.wav")
    peer = pjsua2_peer("call", call_uri=uri, codec=pj_codec, duration=CALL_S, max_time=30,
                       extra=["--tone", str(PEER_HZ), "--dtmf", "47*#", "--dtmf-delay", "0.5"])
    res = peer.wait(35)
    rc = sp.wait(15)
    where = f"pjsua2:\n{peer.stderr[-3000:]}\n{res}\n{sp.describe()}"
    assert rc == 0, where
    assert res["calls"][0]["dtmf_sent"] == "47*#", where
    assert dtmf_digits(sp) == "47*#", where
    call_ids = {e.get("call_id") for e in sp.find_events("dtmf")}
    assert call_ids == {res["calls"][0]["call_id"]}, where


@pytest.mark.timeout(60)
def test_linphonec_dtmf_reaches_softphone(softphone, linphonec_peer, tmp_path):
    sp, uri = answer_softphone(softphone, "PCMU", tmp_path / "softphone.wav")
    lp = linphonec_peer(codecs=["PCMU"], tone_hz=PEER_HZ)
    lp.call(uri)
    lp.wait_connected(10)
    time.sleep(0.5)
    lp.dtmf("59#")
    got = wait_until(lambda: dtmf_digits(sp) == "59#", 5)
    lp.terminate()
    lp.wait_ended(5)
    sp.wait(15)
    assert got, f"softphone reported {dtmf_digits(sp)!r}\nlinphonec:\n{lp.output()[-2000:]}\n{sp.describe()}"
