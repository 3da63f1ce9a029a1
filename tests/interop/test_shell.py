"""``softphone shell`` on a pseudo-terminal (pexpect), typed at as a person would, against
real peers: pjsua2 answering and calling, Kamailio as registrar and proxy."""

from __future__ import annotations

import os
import re
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pexpect
import pytest

from tests.conftest import SOFTPHONE_CMD

pytestmark = pytest.mark.interop

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\x1b[>=]|\r")


class ShellOnTerminal:
    """A softphone shell on a pty: ``type`` a line, ``expect`` a regex in what it printed."""

    def __init__(self, rc: Path, home: Path, timeout: float = 15.0) -> None:
        env = {**os.environ, "HOME": str(home), "XDG_STATE_HOME": str(home / "state"), "TERM": "xterm",
               "COLUMNS": "200", "LINES": "40",
               "PROMPT_TOOLKIT_NO_CPR": "1"}  # pexpect's terminal answers no cursor-position request
        self.child = pexpect.spawn(SOFTPHONE_CMD[0], [*SOFTPHONE_CMD[1:], "-c", str(rc), "--bind", "127.0.0.1",
                                                      "--sip-port", "0", "--rtp-port", "0", "shell"],
                                   env=env, encoding="utf-8", timeout=timeout, dimensions=(40, 200))
        self.seen = ""  # everything printed so far, without terminal escapes
        self._searched = 0
        self.expect(r"softphone>")

    def _read(self) -> None:
        try:
            while True:
                self.seen += ANSI.sub("", self.child.read_nonblocking(65536, timeout=0.05))
        except (pexpect.TIMEOUT, pexpect.EOF):
            pass

    def expect(self, pattern: str, timeout: float | None = None) -> re.Match[str]:
        """The first match of ``pattern`` printed after the previous match."""
        regex = re.compile(pattern)
        deadline = timeout if timeout is not None else self.child.timeout
        waited = 0.0
        while True:
            self._read()
            match = regex.search(self.seen, self._searched)
            if match:
                self._searched = match.end()
                return match
            if not self.child.isalive() or waited > deadline:
                raise AssertionError(f"{pattern!r} not printed; the terminal shows:\n{self.seen[-4000:]}")
            waited += 0.05

    def type(self, line: str) -> None:
        self.child.send(line + "\r")

    def quit(self, timeout: float = 10.0) -> int:
        self.type("quit")
        self.child.expect(pexpect.EOF, timeout=timeout)
        self.child.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None else -1)

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


@pytest.fixture
def shell(tmp_path: Path):
    started: list[ShellOnTerminal] = []

    def start(rc_text: str) -> ShellOnTerminal:
        rc = tmp_path / f"shell{len(started)}.rc"
        rc.write_text(rc_text)
        sh = ShellOnTerminal(rc, tmp_path)
        started.append(sh)
        return sh

    yield start
    for sh in started:
        sh.close()


PLAIN_RC = """[sip]
contact=sip:carol@127.0.0.1
[sound]
capture_dev_id=tone: 440
playback_dev_id=null:
[video]
enabled=0
[audio_codec_0]
mime=PCMU
rate=8000
enabled=1
"""


def _levels(path: Path, window_s: float = 0.1) -> np.ndarray[Any, Any]:
    """RMS of each ``window_s`` of a mono 16-bit WAV."""
    with wave.open(str(path)) as w:
        rate = w.getframerate()
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)
    step = int(rate * window_s)
    frames = samples[: len(samples) // step * step].reshape(-1, step)
    return np.sqrt((frames**2).mean(axis=1))


@pytest.mark.timeout(90)
def test_call_dtmf_hold_mute_and_hang_up_from_the_shell(shell, pjsua2_peer, tmp_path):
    record = tmp_path / "peer.wav"
    peer = pjsua2_peer("answer", codec="PCMU/8000", calls=1, duration=0, max_time=60,
                       extra=("--record", str(record)))
    sh = shell(PLAIN_RC)
    sh.type(f"call sip:peer@127.0.0.1:{peer.port}")
    sh.expect(r"call 1: confirmed")
    sh.type("dtmf 159#")
    # four digits take about a second; pjsua2 renews its stream on a re-INVITE and would count
    # a retransmitted end packet of the last digit again, so hold comes after them
    time.sleep(1.5)
    sh.type("calls")
    sh.expect(r"1\s+confirmed\s+outgoing")
    sh.type("hold")
    sh.expect(r"call 1: held")
    sh.type("calls")
    sh.expect(r"1\s+on hold\s+outgoing")
    sh.type("resume")
    sh.expect(r"call 1: resumed")
    sh.type("mute")
    sh.expect(r"microphone muted")
    time.sleep(1.5)
    sh.type("unmute")
    sh.expect(r"microphone on")
    time.sleep(1.0)
    sh.type("stats")
    sh.expect(r"audio: PCMU, sent \d+, received \d+")
    sh.expect(r"last second: \d\d:\d\d \| audio PCMU tx \d+ rx \d+ kbit/s loss \d+\.\d% .* MOS \d\.\d\d")
    sh.type("terminate")
    sh.expect(r"call 1: ended, completed")
    assert sh.quit() == 0, sh.seen[-3000:]

    result = peer.wait(20)
    (call,) = result["calls"]
    where = f"{call}\n{sh.seen[-3000:]}\n{peer.stderr[-2000:]}"
    assert call["dtmf_rx"] == "159#", where
    # pjsua2 saw our hold: its media went to remote hold, then active again
    statuses = [m["status"] for m in call["media"] if m["type"] == 1]
    assert 3 in statuses and statuses[-1] == 1, where  # PJSUA_CALL_MEDIA_REMOTE_HOLD, ACTIVE
    assert call["hangup_by"] == "remote", where
    # what pjsua2 heard: the tone, a silent stretch of about 1.5 s while muted, the tone again
    levels = _levels(record)
    loud = levels > 300
    silent_runs = [len(run) for run in "".join("1" if x else "0" for x in loud).split("1") if run]
    assert loud.sum() > 20 and max(silent_runs, default=0) >= 10, f"{levels.round()}\n{where}"


def _udp_port(sh: ShellOnTerminal) -> int:
    sh.type("status")
    return int(sh.expect(r"listening: udp 127\.0\.0\.1:(\d+)").group(1))


@pytest.mark.timeout(90)
def test_incoming_calls_answered_and_declined_by_typing(shell, pjsua2_peer):
    sh = shell(PLAIN_RC)
    port = _udp_port(sh)
    first = pjsua2_peer("call", call_uri=f"sip:carol@127.0.0.1:{port}", codec="PCMU/8000", duration=2,
                        max_time=30)
    number = sh.expect(r"call (\d+): incoming call from sip:peer@127\.0\.0\.1\S*: 'answer \1' or 'decline \1'")
    sh.type(f"answer {number.group(1)}")
    sh.expect(rf"call {number.group(1)}: confirmed")
    sh.expect(rf"call {number.group(1)}: ended, completed")
    (answered,) = first.wait(20)["calls"]
    assert "CONFIRMED" in answered["state_names"] and answered["hangup_by"] == "local", answered

    second = pjsua2_peer("call", call_uri=f"sip:carol@127.0.0.1:{port}", codec="PCMU/8000", max_time=30)
    number = sh.expect(r"call (\d+): incoming call from")
    sh.type("calls")
    sh.expect(rf"{number.group(1)}\s+ringing\s+incoming")
    sh.type("decline")
    sh.expect(rf"call {number.group(1)}: ended, rejected 603")
    (declined,) = second.wait(20)["calls"]
    assert declined["last_code"] == 603 and "CONFIRMED" not in declined["state_names"], declined
    sh.type("answer")
    sh.expect(r"error: no call to answer")
    assert sh.quit() == 0


@pytest.mark.timeout(90)
def test_registered_to_kamailio_the_shell_calls_pjsua2_by_name(shell, kamailio, pjsua2_peer):
    registrar = kamailio()
    bob = pjsua2_peer("answer", codec="PCMU/8000", calls=1, duration=0, max_time=60,
                      extra=("--user", "bob", "--domain", "127.0.0.1", "--register",
                             f"sip:127.0.0.1:{registrar.udp_port}", "--password", "bobpw"))
    registrar.wait_registered("bob", timeout=10)
    sh = shell(PLAIN_RC.replace("contact=sip:carol@127.0.0.1", "contact=sip:alice@127.0.0.1") + (
        f"[proxy_0]\nreg_proxy=<sip:127.0.0.1:{registrar.udp_port}>\nreg_identity=sip:alice@127.0.0.1\n"
        "reg_expires=600\n[auth_info_0]\nusername=alice\npasswd=alicepw\n"))
    sh.expect(r"sip:alice@127\.0\.0\.1: registered \(200\)")
    sh.type("status")
    sh.expect(r"registration: sip:alice@127\.0\.0\.1: registered, expires in \d+ s")
    sh.type("call bob")
    sh.expect(r"call 1: confirmed")
    sh.type("terminate all")
    sh.expect(r"call 1: ended, completed")
    sh.type("unregister")
    sh.expect(r"sip:alice@127\.0\.0\.1: unregistered")
    assert registrar.location("alice") == []
    sh.type("register")
    sh.expect(r"sip:alice@127\.0\.0\.1: registered \(200\)")
    assert sh.quit() == 0
    (call,) = bob.wait(20)["calls"]
    assert "CONFIRMED" in call["state_names"] and call["remote_uri"].startswith("<sip:alice@"), call


@pytest.mark.timeout(90)
def test_answer_on_a_terminal_rings_and_asks(pjsua2_peer, tmp_path):
    rc = tmp_path / "answer.rc"
    rc.write_text(PLAIN_RC)
    env = {**os.environ, "HOME": str(tmp_path), "TERM": "xterm"}
    child = pexpect.spawn(SOFTPHONE_CMD[0], [*SOFTPHONE_CMD[1:], "-c", str(rc), "--bind", "127.0.0.1",
                                             "--sip-port", "0", "--rtp-port", "0", "answer"],
                          env=env, encoding="utf-8", timeout=20, dimensions=(40, 200))
    try:
        child.expect(r"listening on udp 127\.0\.0\.1:(\d+)")
        port = int(child.match.group(1))
        first = pjsua2_peer("call", call_uri=f"sip:carol@127.0.0.1:{port}", codec="PCMU/8000", duration=1.5,
                            max_time=30)
        child.expect(r"answer the call from sip:peer@127\.0\.0\.1\S*\? \[y/n\]")
        child.sendline("y")
        child.expect(r"call confirmed")
        child.expect(r"call ended: completed")
        (answered,) = first.wait(20)["calls"]
        assert "CONFIRMED" in answered["state_names"], answered
        second = pjsua2_peer("call", call_uri=f"sip:carol@127.0.0.1:{port}", codec="PCMU/8000", max_time=30)
        child.expect(r"answer the call from sip:peer@127\.0\.0\.1\S*\? \[y/n\]")
        child.sendline("n")
        child.expect(r"call ended: rejected 603")
        (declined,) = second.wait(20)["calls"]
        assert declined["last_code"] == 603, declined
        child.sendintr()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0, child.before


@pytest.mark.timeout(90)
def test_blind_transfer_from_the_shell(shell, pjsua2_peer):
    carol = pjsua2_peer("answer", codec="PCMU/8000", calls=1, duration=2, max_time=40,
                        extra=["--user", "carol", "--tone", "880"])
    bob = pjsua2_peer("answer", codec="PCMU/8000", calls=2, max_time=40, extra=["--user", "bob", "--tone", "660"])
    sh = shell(PLAIN_RC)
    sh.type(f"call sip:bob@127.0.0.1:{bob.port}")
    sh.expect(r"call 1: confirmed")
    sh.type(f"transfer sip:carol@127.0.0.1:{carol.port}")
    sh.expect(r"call 1: transferring the call to sip:carol@127\.0\.0\.1")
    sh.expect(r"call 1: transfer accepted, the peer calls sip:carol\S* \(202")
    sh.expect(r"call 1: call transferred to sip:carol\S* \(200")
    sh.expect(r"call 1: ended, completed")
    sh.type("calls")
    sh.expect(r"no calls")
    assert sh.quit() == 0
    c_result, b_result = carol.wait(30), bob.wait(30)
    (c_call,) = c_result["calls"]
    where = f"{c_call}\n{sh.seen[-2000:]}"
    # carol's call came from bob and carried bob's tone
    assert "CONFIRMED" in c_call["state_names"] and "bob" in c_call["remote_uri"], where
    assert abs(c_call["rx"]["dominant_hz"] - 660) < 33, where
    assert any(c["role"] == "uac-xfer" and c["confirmed"] for c in b_result["calls"]), b_result
