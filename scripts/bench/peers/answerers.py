"""Auto-answering peers for the media benchmarks: the softphone, pjsua2 and baresip.

Each one is started on 127.0.0.1 with a free SIP port, answers every call with a
440 Hz tone (the softphone and baresip also accept Opus), drops what it receives
into a null sink, and is stopped by its PID.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from minisip import HOST, free_port, stop_pid, wait_for

ROOT = Path(__file__).resolve().parents[3]
PJSUA2_PEER = ROOT / "tests" / "interop" / "pjsua2_peer.py"
BARESIP_TEMPLATE = Path(__file__).resolve().parent / "baresip" / "config.template"
BARESIP_MODULES = ("/usr/lib/baresip/modules", "/usr/local/lib/baresip/modules")


class Answerer:
    name = "?"
    proc: subprocess.Popen
    port: int
    max_calls = 1000

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int | None:
        return stop_pid(self.proc)

    def _check(self, err: Path) -> None:
        if not self.alive():
            raise RuntimeError(f"{self.name} exited: " + err.read_text(errors="replace")[-1500:])


class SoftphoneAnswerer(Answerer):
    name = "softphone"

    def __init__(self, work: Path, python: str, codec: str = "PCMU", source: str = "tone: 440",
                 sink: str = "null:", tag: str = "softphone") -> None:
        self.out = work / f"{tag}.jsonl"
        self.err = work / f"{tag}.err"
        cmd = [python, "-m", "softphone", "--json", "--bind", HOST, "--sip-port", "0",
               "--rtp-port", "0", "answer", "--auto", "--delay", "0", "--max-calls", "1000",
               "--no-video", "--audio-codec", codec, "--audio-source", source, "--audio-sink", sink]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                         env=env, cwd=work)
        self.port = 0

        def listening() -> bool:
            self._check(self.err)
            for line in self.out.read_text(errors="replace").splitlines():
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("event") == "listening" and ev.get("transport") == "udp":
                    self.port = int(ev["port"])
                    return True
            return False

        wait_for(listening, 20, "the softphone's listening event")


class Pjsua2Answerer(Answerer):
    """tests/interop/pjsua2_peer.py: a Python tone port per call, PCMU only here."""

    name = "pjsua2"
    max_calls = 4  # this pjsua2 build clamps maxCalls to 4

    def __init__(self, work: Path, python: str, max_time: float, codec: str = "PCMU",
                 tag: str = "pjsua2") -> None:
        if codec != "PCMU":
            raise RuntimeError(f"the pjsua2 wheel has no {codec}")
        self.out = work / f"{tag}.json"
        self.err = work / f"{tag}.err"
        self.port = free_port()
        rtp = free_port(40)
        cmd = [python, str(PJSUA2_PEER), "--ip", HOST, "--port", str(self.port),
               "--rtp-port", str(rtp), "--rtp-port-range", "40", "--ring-ms", "0",
               "--codec", "PCMU/8000", "--tone", "440", "--max-time", str(int(max_time))]
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                         cwd=work)

        def ready() -> bool:
            self._check(self.err)
            return "READY" in self.err.read_text(errors="replace")

        wait_for(ready, 20, "the pjsua2 peer's READY")


def baresip_available() -> bool:
    return shutil.which("baresip") is not None and any(Path(m).is_dir() for m in BARESIP_MODULES)


class BaresipAnswerer(Answerer):
    """baresip 1.0 with answermode=auto, ausine (440 Hz) and aubridge as a null player."""

    name = "baresip"

    def __init__(self, work: Path, max_time: float, codec: str = "PCMU", tag: str = "baresip") -> None:
        exe = shutil.which("baresip")
        modules = next((m for m in BARESIP_MODULES if Path(m).is_dir()), None)
        if exe is None or modules is None:
            raise RuntimeError("baresip is not installed")
        d = work / tag
        d.mkdir(exist_ok=True)
        self.port = free_port()
        rtp = free_port(2)
        text = BARESIP_TEMPLATE.read_text()
        for k, v in {"SIP_PORT": str(self.port), "RTP_PORTS": f"{rtp}-{min(rtp + 4000, 65534)}",
                     "MODULE_PATH": modules, "TONE_HZ": "440"}.items():
            text = text.replace(f"@{k}@", v)
        (d / "config").write_text(text)
        codec_name = {"PCMU": "PCMU/8000/1", "opus": "opus/48000/2"}[codec]
        (d / "accounts").write_text(
            f"<sip:bench@{HOST}:{self.port}>;regint=0;answermode=auto;audio_codecs={codec_name}\n")
        (d / "contacts").write_text("")
        self.err = work / f"{tag}.log"
        with open(self.err, "wb") as e:
            self.proc = subprocess.Popen([exe, "-f", str(d), "-t", str(int(max_time))],
                                         stdin=subprocess.DEVNULL, stdout=e, stderr=subprocess.STDOUT,
                                         cwd=d)

        def ready() -> bool:
            self._check(self.err)
            out = subprocess.run(["ss", "-Hlun", f"sport = :{self.port}"], capture_output=True,
                                 text=True, timeout=5).stdout
            return f"{HOST}:{self.port}" in out

        wait_for(ready, 20, "baresip's SIP port")


def make_answerer(name: str, work: Path, codec: str, max_time: float, python: str = sys.executable,
                  tag: str | None = None) -> Answerer:
    if name == "softphone":
        return SoftphoneAnswerer(work, python, codec=codec, tag=tag or "softphone")
    if name == "pjsua2":
        return Pjsua2Answerer(work, python, max_time, codec=codec, tag=tag or "pjsua2")
    if name == "baresip":
        return BaresipAnswerer(work, max_time, codec=codec, tag=tag or "baresip")
    raise SystemExit(f"unknown peer {name!r}")
