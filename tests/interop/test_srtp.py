"""SRTP (RFC 3711) with SDES keys (RFC 4568) against real peers.

Each call sends a tone both ways; each side's recording must hold the other's tone. A
packet capture on the loopback interface (AF_PACKET, when permitted) takes every UDP
datagram to the call's RTP ports: decoded as plain PCMU, the payloads of an SRTP call hold
no tone, while those of a plain call (the control) do.
"""

from __future__ import annotations

import socket
import struct
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.interop.conftest import dominant_frequency
from tests.interop.test_audio_interop import (
    CALL_S,
    PEER_HZ,
    SOFTPHONE_HZ,
    assert_tone,
    call_softphone,
    check_softphone_summary,
)

pytestmark = pytest.mark.interop

ETH_P_ALL = 0x0003


class LoopbackCapture:
    """UDP payloads seen on ``lo`` while running: (source port, destination port, payload)."""

    def __init__(self) -> None:
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except (PermissionError, AttributeError, OSError) as exc:
            pytest.skip(f"no packet capture here: {exc}")
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.packets: list[tuple[int, int, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame, info = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            if info[2] == socket.PACKET_OUTGOING:
                continue  # each loopback datagram shows once outgoing and once incoming
            ip = frame[14:]
            if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != socket.IPPROTO_UDP:
                continue
            header = (ip[0] & 0x0F) * 4
            sport, dport, _length, _sum = struct.unpack("!HHHH", ip[header:header + 8])
            self.packets.append((sport, dport, bytes(ip[header + 8:])))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()

    def rtp_payloads(self, port: int) -> list[bytes]:
        """Payloads after the 12-byte RTP header of the RTP packets sent to ``port``."""
        return [data[12:] for _s, d, data in self.packets if d == port and len(data) > 12 and 192 > data[1] & 0x7F]


def _ulaw_decode(data: bytes) -> Any:
    u = ~np.frombuffer(data, dtype=np.uint8)
    sign, exponent, mantissa = u & 0x80, (u >> 4) & 0x07, u & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + 0x84) << exponent
    return np.where(sign != 0, 0x84 - magnitude, magnitude - 0x84).astype(np.float64) / 32768.0


def plain_tone_hz(payloads: list[bytes]) -> float | None:
    """The dominant frequency of the payloads read as plain PCMU, when it stands out."""
    pcm = _ulaw_decode(b"".join(p[:160] for p in payloads if len(p) >= 160))
    if pcm.size < 8000:
        return None
    spectrum = np.abs(np.fft.rfft(pcm * np.hanning(pcm.size)))
    peak = int(np.argmax(spectrum[1:])) + 1
    if spectrum[peak] < 20 * float(np.median(spectrum)):
        return None  # noise: no tone in there
    return float(dominant_frequency(pcm, 8000))


def _rc(tmp_path: Path, name: str, encryption: str, mandatory: bool) -> Path:
    rc = tmp_path / name
    rc.write_text(f"[sip]\nmedia_encryption={encryption}\nmedia_encryption_mandatory={int(mandatory)}\n")
    return rc


def _summary(sp: Any) -> dict[str, Any]:
    s = sp.summary
    assert s is not None, sp.describe()
    return s["calls"][0] if s.get("calls") else s


# =========================================================================== softphone <-> softphone


@pytest.mark.timeout(60)
@pytest.mark.parametrize("encryption, mandatory", [("srtp", True), ("srtp", False), ("none", False)])
def test_softphone_to_softphone_srtp_hides_the_payload(softphone, tmp_path, encryption, mandatory):
    rc = _rc(tmp_path, "rc", encryption, mandatory)
    heard_by_callee, heard_by_caller = tmp_path / "callee.wav", tmp_path / "caller.wav"
    capture = LoopbackCapture()
    try:
        callee = softphone("-c", rc, "--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0",
                           "answer", "--auto", "--once", "--no-video", "--audio-codec", "PCMU",
                           "--audio-source", f"tone:{PEER_HZ}", "--audio-sink", f"file:{heard_by_callee}")
        uri = f"sip:softphone@127.0.0.1:{callee.port('udp')}"
        caller = call_softphone(softphone, uri, "PCMU", heard_by_caller, "-c", rc)
        assert caller.wait(30) == 0, caller.describe()
        assert callee.wait(15) == 0, callee.describe()
    finally:
        capture.stop()
    where = f"{caller.describe()}\n{callee.describe()}"
    check_softphone_summary(caller, "PCMU", where)
    assert_tone(heard_by_caller, PEER_HZ, where, max_gap_ms=None)
    assert_tone(heard_by_callee, SOFTPHONE_HZ, where, max_gap_ms=None)
    for side, heard in ((_summary(caller), SOFTPHONE_HZ), (_summary(callee), PEER_HZ)):
        audio = side["audio"]
        payloads = capture.rtp_payloads(audio["local_port"])
        sent_hz = PEER_HZ if heard == SOFTPHONE_HZ else SOFTPHONE_HZ
        assert len(payloads) >= 0.7 * CALL_S * 50, f"{len(payloads)} packets captured\n{where}"
        found = plain_tone_hz(payloads)
        if encryption == "srtp":
            assert audio["srtp"] == "AEAD_AES_128_GCM", where
            assert audio["srtp_auth_failures"] == 0 and audio["srtp_replay_failures"] == 0, where
            assert found is None, f"the SRTP payloads read as plain PCMU hold a {found} Hz tone\n{where}"
        else:
            assert "srtp" not in audio, where
            assert found is not None and abs(found - sent_hz) <= 2, f"control: {found} Hz\n{where}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("srtp_side", ["caller", "callee"])
def test_mandatory_srtp_against_plain_softphone_is_488(softphone, tmp_path, srtp_side):
    secure, plain = _rc(tmp_path, "srtp.rc", "srtp", True), _rc(tmp_path, "plain.rc", "none", False)
    callee = softphone("-c", secure if srtp_side == "callee" else plain, "--bind", "127.0.0.1", "--sip-port", "0",
                       "--rtp-port", "0", "answer", "--auto", "--once", "--no-video",
                       "--audio-source", "tone:440", "--audio-sink", "null:")
    uri = f"sip:softphone@127.0.0.1:{callee.port('udp')}"
    caller = call_softphone(softphone, uri, "PCMU", tmp_path / "x.wav", "-c",
                            secure if srtp_side == "caller" else plain)
    rc = caller.wait(30)
    where = f"{caller.describe()}\n{callee.describe()}"
    assert rc == 4, where
    assert _summary(caller)["sip_code"] == 488, where


# =========================================================================== softphone <-> baresip


@pytest.mark.timeout(60)
def test_softphone_calls_baresip_srtp_mandatory(softphone, baresip_peer, tmp_path):
    out = tmp_path / "softphone.wav"
    bs = baresip_peer("answer", codecs=["PCMU"], tone_hz=PEER_HZ, mediaenc="srtp-mand")
    sp = call_softphone(softphone, bs.uri, "PCMU", out, "-c", _rc(tmp_path, "rc", "srtp", True))
    rc = sp.wait(30)
    bs.wait_event("CALL_CLOSED", 5)
    bs.stop()
    where = f"baresip:\n{bs.log()}\n{sp.describe()}"
    assert rc == 0, where
    audio = check_softphone_summary(sp, "PCMU", where)["audio"]
    assert audio["srtp"] in ("AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"), where
    assert audio["srtp_auth_failures"] == 0, where
    assert_tone(out, PEER_HZ, where, max_gap_ms=None)
    assert_tone(bs.received_wav(), SOFTPHONE_HZ, where, max_gap_ms=None)


@pytest.mark.timeout(60)
def test_baresip_calls_softphone_srtp_mandatory(softphone, baresip_peer, tmp_path):
    out = tmp_path / "softphone.wav"
    sp = softphone("-c", _rc(tmp_path, "rc", "srtp", True), "--bind", "127.0.0.1", "--sip-port", "0",
                   "--rtp-port", "0", "answer", "--auto", "--once", "--no-video", "--audio-codec", "PCMU",
                   "--audio-source", f"tone:{SOFTPHONE_HZ}", "--audio-sink", f"file:{out}")
    uri = f"sip:softphone@127.0.0.1:{sp.port('udp')}"
    bs = baresip_peer("call", user="alice", dial=uri, codecs=["PCMU"], tone_hz=PEER_HZ, hangup_after=CALL_S,
                      mediaenc="srtp-mand")
    bs.wait_event("CALL_ESTABLISHED", 10)
    bs.wait(20)
    rc = sp.wait(15)
    where = f"baresip:\n{bs.log()}\n{sp.describe()}"
    assert rc == 0, where
    audio = _summary(sp)["audio"]
    assert audio["srtp"] and audio["srtp_auth_failures"] == 0, where
    assert_tone(out, PEER_HZ, where, max_gap_ms=None)
    assert_tone(bs.received_wav(), SOFTPHONE_HZ, where, max_gap_ms=None)


@pytest.mark.timeout(60)
def test_softphone_mandatory_calls_plain_baresip_is_488(softphone, baresip_peer, tmp_path):
    bs = baresip_peer("answer", codecs=["PCMU"], tone_hz=PEER_HZ)
    sp = call_softphone(softphone, bs.uri, "PCMU", tmp_path / "x.wav", "-c", _rc(tmp_path, "rc", "srtp", True))
    rc = sp.wait(30)
    bs.stop()
    where = f"baresip:\n{bs.log()}\n{sp.describe()}"
    assert rc == 4 and _summary(sp)["sip_code"] == 488, where


# =========================================================================== softphone <-> pjsua2


@pytest.mark.timeout(60)
def test_softphone_calls_pjsua2_srtp_mandatory(softphone, pjsua2_peer, tmp_path):
    rec, out = tmp_path / "pjsua2.wav", tmp_path / "softphone.wav"
    peer = pjsua2_peer("answer", codec="PCMU/8000", calls=1, max_time=30,
                       extra=["--tone", str(PEER_HZ), "--record", str(rec), "--srtp", "mandatory"])
    sp = call_softphone(softphone, f"sip:peer@127.0.0.1:{peer.port}", "PCMU", out,
                        "-c", _rc(tmp_path, "rc", "srtp", True))
    rc = sp.wait(30)
    res = peer.wait(20)
    where = f"pjsua2:\n{peer.stderr[-3000:]}\n{res}\n{sp.describe()}"
    assert rc == 0, where
    audio = check_softphone_summary(sp, "PCMU", where)["audio"]
    assert audio["srtp"] and audio["srtp_auth_failures"] == 0, where
    assert_tone(out, PEER_HZ, where, max_gap_ms=None)
    assert_tone(rec, SOFTPHONE_HZ, where, max_gap_ms=None)


@pytest.mark.timeout(60)
def test_pjsua2_calls_softphone_srtp_mandatory(softphone, pjsua2_peer, tmp_path):
    rec, out = tmp_path / "pjsua2.wav", tmp_path / "softphone.wav"
    sp = softphone("-c", _rc(tmp_path, "rc", "srtp", True), "--bind", "127.0.0.1", "--sip-port", "0",
                   "--rtp-port", "0", "answer", "--auto", "--once", "--no-video", "--audio-codec", "PCMU",
                   "--audio-source", f"tone:{SOFTPHONE_HZ}", "--audio-sink", f"file:{out}")
    uri = f"sip:softphone@127.0.0.1:{sp.port('udp')}"
    peer = pjsua2_peer("call", call_uri=uri, codec="PCMU/8000", duration=CALL_S, max_time=30,
                       extra=["--tone", str(PEER_HZ), "--record", str(rec), "--srtp", "mandatory"])
    res = peer.wait(35)
    rc = sp.wait(15)
    where = f"pjsua2:\n{peer.stderr[-3000:]}\n{res}\n{sp.describe()}"
    assert rc == 0, where
    audio = _summary(sp)["audio"]
    assert audio["srtp"] and audio["srtp_auth_failures"] == 0, where
    assert_tone(out, PEER_HZ, where, max_gap_ms=None)
    assert_tone(rec, SOFTPHONE_HZ, where, max_gap_ms=None)
