"""``softphone shell`` fed from a pipe, as a script drives it: the device, codec and
auto-answer commands change what the next calls do."""

from __future__ import annotations

import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SOFTPHONE_CMD
from tests.interop.conftest import dominant_frequency

RC = "[sip]\ncontact=sip:carol@127.0.0.1\n[sound]\ncapture_dev_id=silence:\nplayback_dev_id=null:\n[video]\nenabled=0\n"


class PipedShell:
    def __init__(self, rc: Path) -> None:
        self.process = subprocess.Popen([*SOFTPHONE_CMD, "-c", str(rc), "--bind", "127.0.0.1", "--sip-port", "0",
                                         "--rtp-port", "0", "shell"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))

    def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def expect(self, text: str, timeout: float = 15.0) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"{text!r} not printed; got:\n" + "\n".join(self.seen[-40:])) from None
            self.seen.append(line)
            if text in line:
                return line

    def close(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()  # end of input: the shell hangs up and leaves
        code = self.process.wait(15)
        return code


@pytest.fixture
def piped_shell(tmp_path: Path) -> Any:
    shells: list[PipedShell] = []

    def start() -> PipedShell:
        rc = tmp_path / "shell.rc"
        rc.write_text(RC)
        shells.append(PipedShell(rc))
        return shells[-1]

    yield start
    for sh in shells:
        if sh.process.poll() is None:
            sh.process.kill()
            sh.process.wait(5)


@pytest.mark.timeout(60)
def test_codec_and_soundcard_choices_shape_the_next_call(piped_shell, softphone, tmp_path: Path) -> None:
    heard = tmp_path / "heard.wav"
    bob = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", "--once",
                    "--no-video", "--audio-source", "silence:", "--audio-sink", f"file: {heard}")
    sh = piped_shell()
    sh.type("codec disable opus")
    sh.expect("audio codec opus disabled")
    sh.type("codec disable G722")
    sh.expect("audio codec G722 disabled")
    sh.type("codec list")
    sh.expect("audio  2: PCMU/8000  enabled")
    sh.type("codec disable nonsense")
    assert "unknown codec 'nonsense'" in sh.expect("error:")
    sh.type("soundcard capture tone: 300")
    sh.expect("next calls: capture tone: 300")
    sh.type("soundcard use nonsense: 1")
    assert "unknown" in sh.expect("error:")
    sh.type("webcam use pattern:")
    sh.expect("next calls film pattern:")
    sh.type(f"call sip:bob@127.0.0.1:{bob.port('udp')}")
    sh.expect("call 1: confirmed")
    for _ in range(40):  # until a second of tone has gone out
        sh.type("stats")
        line = sh.expect("audio: PCMU")
        if "sent " in line and int(line.split("sent ")[1].split(",")[0]) >= 50:
            break  # (before the stream starts, the line has no counters yet)
        time.sleep(0.1)
    assert sh.close() == 0
    assert bob.wait(15) == 0, bob.describe()
    (end,) = bob.summary["calls"]
    assert end["audio"]["codec"] == "PCMU", end
    assert abs(dominant_frequency(heard, skip_s=0.2) - 300) < 15


@pytest.mark.timeout(60)
def test_autoanswer_enable_answers_the_next_incoming_call(piped_shell, softphone) -> None:
    sh = piped_shell()
    sh.type("autoanswer enable")
    sh.expect("auto-answer enabled")
    sh.type("status")
    port = int(sh.expect("listening: udp 127.0.0.1:").rsplit(":", 1)[1].split(",")[0])
    alice = softphone("--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", "call",
                      f"sip:carol@127.0.0.1:{port}", "--duration", "1", "--no-video", "--audio-source", "silence:",
                      "--audio-sink", "null:")
    line = sh.expect("incoming call from sip:softphone@127.0.0.1")
    assert "answer 1" not in line  # no question when it answers by itself
    sh.expect("call 1: confirmed")
    sh.expect("call 1: ended, completed")
    assert alice.wait(15) == 0 and alice.summary["result"] == "completed"
    sh.type("autoanswer sometimes")
    assert "usage: autoanswer enable|disable" in sh.expect("error:")
    sh.type("quit")
    assert sh.process.wait(15) == 0
