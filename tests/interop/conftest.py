"""Interop fixtures for audio: baresip and linphonec as real peers, and tone analysis.

Every peer runs in its own folder under the test's tmp_path, on loopback, with a
bounded lifetime; teardown asks it to quit, then stops it by PID.

Tone helpers (plain functions, import them with
``from tests.interop.conftest import dominant_frequency, ...``):

    read_wav(path) -> (samples float64 mono, rate)
    write_wav(path, samples, rate)
    make_tone_wav(path, hz, seconds, rate=48000, amplitude=0.5)
    dominant_frequency(wav_path_or_samples, rate=None, skip_s=0.0) -> Hz
    longest_gap_ms(samples, rate, frame_ms=1.0, threshold=0.05, skip_s=0.0) -> ms
"""
from __future__ import annotations

import glob
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import _need, _stop_popen, _tail, free_port, free_rtp_port, read_wav, write_wav

PEERS_DIR = Path(__file__).resolve().parent / "peers"
BARESIP_TEMPLATE = PEERS_DIR / "baresip" / "config.template"
LINPHONERC_TEMPLATE = PEERS_DIR / "linphone" / "linphonerc.template"

BARESIP_MODULE_DIRS = (
    "/usr/lib/baresip/modules",
    "/usr/lib/x86_64-linux-gnu/baresip/modules",
    "/usr/lib/aarch64-linux-gnu/baresip/modules",
    "/usr/local/lib/baresip/modules",
)

# baresip's account parameter wants rate and channels for anything not 8000/1
BARESIP_CODEC_NAMES = {
    "opus": "opus/48000/2",
    "g722": "G722/16000/1",
    "pcmu": "PCMU/8000/1",
    "pcma": "PCMA/8000/1",
    "gsm": "GSM/8000/1",
    "l16": "L16/16000/1",
}

STATIC_PAYLOAD_TYPES = {"0": "PCMU", "3": "GSM", "8": "PCMA", "9": "G722", "18": "G729"}

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


# =========================================================================== WAV + tones


def make_tone_wav(path: str | os.PathLike, hz: float, seconds: float, rate: int = 48000,
                  amplitude: float = 0.5) -> Path:
    """A mono sine WAV of `seconds` at `hz`."""
    import numpy as np

    t = np.arange(int(seconds * rate)) / rate
    return write_wav(path, amplitude * np.sin(2 * np.pi * hz * t), rate)


def _samples(source: Any, rate: int | None) -> tuple[Any, int]:
    import numpy as np

    if isinstance(source, (str, os.PathLike)):
        return read_wav(source)
    if rate is None:
        raise ValueError("rate is required with raw samples")
    return np.asarray(source, dtype=np.float64), rate


def dominant_frequency(source: Any, rate: int | None = None, skip_s: float = 0.0,
                       max_s: float | None = None) -> float:
    """The strongest frequency (Hz) of a WAV path or sample array.

    Hann-windowed FFT, then a parabola through the log magnitudes of the peak bin
    and its neighbours (accurate to a small fraction of a bin).
    """
    import numpy as np

    x, rate = _samples(source, rate)
    x = x[int(skip_s * rate):]
    if max_s is not None:
        x = x[:int(max_s * rate)]
    if x.size < 256:
        raise ValueError(f"too few samples to analyse: {x.size}")
    x = x - x.mean()
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    k = int(np.argmax(spec[1:]) + 1)
    delta = 0.0
    if k + 1 < spec.size:
        a, b, c = np.log(spec[k - 1:k + 2] + 1e-12)
        den = a - 2 * b + c
        if den != 0:
            delta = 0.5 * (a - c) / den
    return float((k + delta) * rate / x.size)


def longest_gap_ms(samples: Any, rate: int, frame_ms: float = 1.0, threshold: float = 0.05,
                   skip_s: float = 0.0) -> float:
    """The longest near-silent stretch (ms) inside a tone.

    The signal is cut into blocks of `frame_ms`; a block is silent when its peak is
    below `threshold` times the tone's typical block peak (the 90th percentile).
    Only the span from the first to the last loud block counts (after `skip_s`), so
    silence before the call starts or after it ends is not a gap. Resolution is one
    block; keep `frame_ms` under half a period of the tone (1 ms suits 100 Hz-4 kHz).
    """
    import numpy as np

    x, rate = _samples(samples, rate)
    x = np.abs(x[int(skip_s * rate):])
    block = max(1, int(round(rate * frame_ms / 1000.0)))
    n = x.size // block
    if n == 0:
        return 0.0
    peaks = x[:n * block].reshape(n, block).max(axis=1)
    ref = float(np.percentile(peaks, 90))
    if ref <= 0:
        return float(n * frame_ms)
    loud = np.flatnonzero(peaks >= threshold * ref)
    if loud.size < 2:
        return 0.0 if loud.size else float(n * frame_ms)
    # consecutive loud blocks differ by 1; a gap of g silent blocks shows as g + 1
    longest = int(np.max(np.diff(loud))) - 1
    return float(longest * block * 1000.0 / rate)


# =========================================================================== helpers


def _wait_for(cond: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def baresip_module_path() -> str | None:
    for d in BARESIP_MODULE_DIRS:
        if os.path.exists(os.path.join(d, "opus.so")) or os.path.exists(os.path.join(d, "g711.so")):
            return d
    return None


def require_baresip() -> None:
    _need("baresip", shutil.which("baresip") is not None and baresip_module_path() is not None,
          "install the Debian package baresip (baresip-core)")


def require_linphonec() -> None:
    _need("linphonec", shutil.which("linphonec") is not None,
          "install the Debian package linphone-cli")


def baresip_codec(name: str) -> str:
    """'opus' -> 'opus/48000/2' (names already carrying a rate pass through)."""
    return name if "/" in name else BARESIP_CODEC_NAMES.get(name.lower(), name)


# =========================================================================== baresip


def _netstring(b: bytes) -> bytes:
    return str(len(b)).encode() + b":" + b + b","


class BaresipPeer:
    """One baresip process driven through its ctrl_tcp module.

    Its config folder is rendered from tests/interop/peers/baresip/config.template.
    ``events`` collects the JSON events ctrl_tcp pushes (CALL_ESTABLISHED,
    CALL_CLOSED, CALL_DTMF_START, ...); ``received_wav()`` is the decoded audio of
    the last call as the sndfile module recorded it.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        mode: str = "answer",
        user: str = "bob",
        ip: str = "127.0.0.1",
        codecs: str | list[str] | tuple[str, ...] | None = None,
        tone_hz: float = 880,
        dial: str | None = None,
        hangup_after: float = 0.0,
        quit_after_calls: int | None = None,
        max_time: float = 60.0,
        video: bool = False,
        video_codecs: str | list[str] | tuple[str, ...] | None = None,
        video_size: tuple[int, int] = (352, 288),
        video_fps: float = 25.0,
        mediaenc: str | None = None,
        auth_pass: str | None = None,
    ) -> None:
        if mode not in ("answer", "call"):
            raise ValueError(f"mode must be 'answer' or 'call', not {mode!r}")
        if mode == "call" and not dial:
            raise ValueError("call mode needs dial=URI")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.mode = mode
        self.ip = ip
        self.user = user
        self.sip_port = free_port("udp", ip)
        rtp = free_rtp_port(ip, count=20)
        self.rtp_ports = (rtp, rtp + 19)
        self.ctrl_port = free_port("tcp", "127.0.0.1")
        self.tone_hz = tone_hz
        self.dial_uri = dial
        self.hangup_after = hangup_after
        self.quit_after_calls = (1 if mode == "call" else 0) if quit_after_calls is None else quit_after_calls
        self.max_time = max_time
        if isinstance(video_codecs, str):
            video_codecs = [c for c in video_codecs.split(",") if c]
        self.video_codecs = list(video_codecs or [])
        self.video = video or bool(self.video_codecs)
        self.video_size = video_size
        self.video_fps = video_fps
        self.mediaenc = mediaenc  # "srtp", "srtp-mand", ...: load srtp.so, set the account's mediaenc
        self.auth_pass = auth_pass  # the account's digest password (answers 401/407 challenges)
        self.uri = f"sip:{user}@{ip}:{self.sip_port}"
        if isinstance(codecs, str):
            codecs = [c for c in codecs.split(",") if c]
        self.codecs = [baresip_codec(c) for c in codecs or []]

        self.events: list[dict] = []
        self._responses: dict[str, dict] = {}
        self._cond = threading.Condition()
        self._sock: socket.socket | None = None
        self._closed_calls = 0
        self._timers: list[threading.Timer] = []
        self._write_config()
        self.log_file = self.workdir / "baresip.log"
        self._log = open(self.log_file, "wb")
        # -t bounds the lifetime; quit over ctrl_tcp ends it earlier
        self.proc = subprocess.Popen(
            ["baresip", "-f", str(self.workdir), "-t", str(int(max_time))],
            cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.pid = self.proc.pid
        self._connect()
        self._reader = threading.Thread(target=self._read_events, daemon=True)
        self._reader.start()
        if mode == "call":
            self.dial(dial)  # type: ignore[arg-type]

    # ----------------------------------------------------------------- setup
    def _write_config(self) -> None:
        module_path = baresip_module_path() or "/usr/lib/baresip/modules"
        text = BARESIP_TEMPLATE.read_text()
        values = {
            "IP": self.ip, "SIP_PORT": str(self.sip_port),
            "RTP_PORTS": f"{self.rtp_ports[0]}-{self.rtp_ports[1]}",
            "CTRL_PORT": str(self.ctrl_port), "TONE_HZ": f"{self.tone_hz:g}",
            "MODULE_PATH": module_path, "SND_PATH": ".",
            "VIDEO": "" if self.video else "#",
            "VIDEO_SIZE": f"{self.video_size[0]}x{self.video_size[1]}",
            "VIDEO_FPS": f"{self.video_fps:.2f}",
        }
        for k, v in values.items():
            text = text.replace(f"@{k}@", v)
        if self.mediaenc:
            text += "\nmodule\t\t\tsrtp.so\n"
        (self.workdir / "config").write_text(text)
        params = ";regint=0;answermode=" + ("auto" if self.mode == "answer" else "manual")
        if self.mediaenc:
            params += f";mediaenc={self.mediaenc}"
        if self.auth_pass is not None:
            params += f";auth_pass={self.auth_pass}"
        if self.codecs:
            params += ";audio_codecs=" + ",".join(self.codecs)
        if self.video_codecs:
            params += ";video_codecs=" + ",".join(self.video_codecs)
        (self.workdir / "accounts").write_text(f"<{self.uri}>{params}\n")
        (self.workdir / "contacts").write_text("")

    def _connect(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                self._sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise AssertionError(f"baresip ctrl_tcp not reachable on {self.ctrl_port}\n{self.log()}")

    def _read_events(self) -> None:
        assert self._sock is not None
        buf = b""
        self._sock.settimeout(None)
        while True:
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            while True:
                colon = buf.find(b":")
                if colon <= 0:
                    break
                n = int(buf[:colon])
                if len(buf) < colon + n + 2:
                    break
                payload, buf = buf[colon + 1:colon + 1 + n], buf[colon + n + 2:]
                try:
                    msg = json.loads(payload)
                except ValueError:
                    continue
                self._on_message(msg)
        with self._cond:
            self._cond.notify_all()

    def _on_message(self, msg: dict) -> None:
        with self._cond:
            if msg.get("response"):
                self._responses[str(msg.get("token"))] = msg
            elif msg.get("event"):
                msg["_t"] = time.monotonic()
                self.events.append(msg)
            self._cond.notify_all()
        if not msg.get("event"):
            return
        kind = msg.get("type")
        if kind == "CALL_ESTABLISHED" and self.hangup_after > 0:
            t = threading.Timer(self.hangup_after, self._safe_command, args=("hangup",))
            t.daemon = True
            self._timers.append(t)
            t.start()
        elif kind == "CALL_CLOSED":
            self._closed_calls += 1
            if self.quit_after_calls and self._closed_calls >= self.quit_after_calls:
                threading.Thread(target=self._safe_command, args=("quit",), daemon=True).start()

    # ----------------------------------------------------------------- control
    def command(self, command: str, params: str = "", timeout: float = 5.0) -> dict:
        """Send a ctrl_tcp command; its response {"ok":..., "data":...}."""
        if self._sock is None:
            raise AssertionError("baresip ctrl_tcp is not connected")
        token = f"t{time.monotonic_ns()}"
        msg = json.dumps({"command": command, "params": params, "token": token}).encode()
        self._sock.sendall(_netstring(msg))
        deadline = time.monotonic() + timeout
        with self._cond:
            while token not in self._responses:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"baresip: no response to {command!r}\n{self.log()}")
                self._cond.wait(min(left, 0.2))
            return self._responses.pop(token)

    def _safe_command(self, command: str, params: str = "") -> None:
        try:
            self.command(command, params, timeout=3)
        except (AssertionError, OSError):
            pass

    def dial(self, uri: str) -> dict:
        return self.command("dial", uri)

    def hangup(self) -> dict:
        return self.command("hangup")

    def find_events(self, kind: str) -> list[dict]:
        with self._cond:
            return [e for e in self.events if e.get("type") == kind]

    def wait_event(self, kind: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if e.get("type") == kind:
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    break
                self._cond.wait(min(left, 0.2))
        raise AssertionError(f"baresip: no {kind} event within {timeout}s; events "
                             f"{[e.get('type') for e in self.events]}\n{self.log()}")

    def dtmf_digits(self) -> str:
        """Digits received (CALL_DTMF_START events), in order."""
        return "".join(str(e.get("param", "")) for e in self.find_events("CALL_DTMF_START"))

    # ----------------------------------------------------------------- results
    def log(self, n: int = 4000) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return _tail(_ANSI.sub("", text), n)

    def _wavs(self, kind: str) -> list[Path]:
        return [Path(p) for p in sorted(glob.glob(str(self.workdir / f"dump-*-{kind}.wav")),
                                        key=os.path.getmtime)]

    def received_wav(self) -> Path:
        """The decoded audio of the last call (sndfile's dump-*-dec.wav)."""
        found = self._wavs("dec")
        if not found:
            raise AssertionError(f"baresip recorded no dump-*-dec.wav in {self.workdir}\n{self.log()}")
        return found[-1]

    def sent_wav(self) -> Path:
        found = self._wavs("enc")
        if not found:
            raise AssertionError(f"baresip recorded no dump-*-enc.wav in {self.workdir}")
        return found[-1]

    def codec(self) -> str | None:
        """The audio codec baresip decoded with, e.g. 'PCMU 8000Hz 1ch' -> 'PCMU'."""
        m = re.findall(r"Set audio decoder: (\S+)", self.log(10**6))
        return m[-1] if m else None

    def video_codec(self) -> str | None:
        """The video codec baresip decoded with ("Set video decoder: VP8 ..." -> "VP8")."""
        m = re.findall(r"Set video decoder: (\S+)", self.log(10**6))
        return m[-1] if m else None

    def video_encoder(self) -> str | None:
        """The video codec baresip encoded with ("Set video encoder: H264 ..." -> "H264")."""
        m = re.findall(r"Set video encoder: (\S+)", self.log(10**6))
        return m[-1] if m else None

    def rtcp_received(self, kind: str = "video") -> int:
        """The most packets baresip said it received on its `kind` stream in CALL_RTCP
        events (RTCP reports, sent while the call runs)."""
        best = 0
        for e in self.find_events("CALL_RTCP"):
            if e.get("param") != kind:
                continue
            stats = e.get("rtcp_stats") or {}
            best = max(best, int((stats.get("rx") or {}).get("packets", 0) or 0))
        return best

    def rtp_packets(self, kind: str = "audio") -> dict[str, int]:
        """tx/rx packets of the `kind` ("audio" or "video") stream from baresip's
        rtp_stats table (printed when a call ends)."""
        lines = self.log(10**6).splitlines()
        for i, line in enumerate(lines):
            if line.split()[:2] == [kind, "Transmit:"]:
                for nxt in lines[i + 1:i + 4]:
                    f = nxt.split()
                    if f and f[0] == "packets:" and len(f) >= 3:
                        return {"tx": int(f[1]), "rx": int(f[2])}
        return {}

    # ----------------------------------------------------------------- lifetime
    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for baresip to exit by itself; on timeout stop it and fail."""
        timeout = self.max_time + 10 if timeout is None else timeout
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError(f"baresip did not exit within {timeout}s\n{self.log()}") from None
        self._close()
        return rc

    def stop(self, timeout: float = 5.0) -> int | None:
        """ctrl_tcp quit, wait, then SIGTERM / SIGKILL by PID."""
        for t in self._timers:
            t.cancel()
        if self.proc.poll() is None and self._sock is not None:
            self._safe_command("quit")
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        rc = _stop_popen(self.proc, timeout)
        self._close()
        return rc

    def _close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
        if not self._log.closed:
            self._log.close()


@pytest.fixture
def baresip_peer(tmp_path: Path) -> Iterator[Callable[..., BaresipPeer]]:
    """Factory: baresip_peer(mode="answer"|"call", *, codecs=None, tone_hz=880, dial=None,
    hangup_after=0, quit_after_calls=None, max_time=60, user="bob", ip="127.0.0.1",
    video=False, video_codecs=None, video_size=(352, 288), video_fps=25, mediaenc=None)
    -> a started BaresipPeer.  mediaenc ("srtp", "srtp-mand"): SRTP with SDES (srtp.so).

    answer: auto-answers every call (its URI is ``peer.uri``).  call: dials `dial`
    at once.  codecs: names ("opus", "PCMU", "G722") or baresip's full
    "NAME/RATE/CH", offered/accepted alone in that order.  hangup_after: hang up
    that many seconds after CALL_ESTABLISHED.  The process quits after
    `quit_after_calls` ended calls (default 1 in call mode, never in answer mode).
    video (implied by video_codecs): load the vp8, avcodec (H264, H265) and fakevideo
    modules; fakevideo sends synthetic frames of `video_size` at `video_fps` and
    drops what it receives.  video_codecs: "VP8", "H264", "H265", offered/accepted
    alone.  ``rtp_packets("video")``, ``rtcp_received("video")``, ``video_codec()``.
    """
    require_baresip()
    started: list[BaresipPeer] = []

    def start(mode: str = "answer", **kw: Any) -> BaresipPeer:
        peer = BaresipPeer(tmp_path / f"baresip{len(started)}", mode=mode, **kw)
        started.append(peer)
        return peer

    yield start
    for p in started:
        p.stop()


# =========================================================================== linphonec

# linphonec's audio codecs (mime, rate, channels) in its own default order
LINPHONE_AUDIO_CODECS = (
    ("opus", 48000, 2), ("speex", 16000, 1), ("speex", 8000, 1), ("speex", 32000, 1),
    ("PCMU", 8000, 1), ("PCMA", 8000, 1), ("GSM", 8000, 1), ("G722", 8000, 1),
    ("G729", 8000, 1), ("L16", 44100, 2), ("L16", 44100, 1),
)


# linphonec's video codecs (VP8 built in, H264 from the openh264 plugin)
LINPHONE_VIDEO_CODECS = ("VP8", "H264")
# linphone offers H.264 with no packetization-mode (mode 0, single NAL units only) unless
# told; its openh264 plugin sends and takes FU-A fragments, so offer mode 1 like the others
LINPHONE_VIDEO_FMTP = {"H264": "profile-level-id=42801F;packetization-mode=1"}

LINPHONE_VIDEO_SECTION = """
[video]
enabled=1
capture=1
display=1
automatically_accept=1
automatically_initiate=1
device=StaticImage: Static picture
size=cif
displaytype=MSExtDisplay
self_view=0
show_local=0
"""


class LinphonecPeer:
    """linphonec -c RC -a with its commands written to a FIFO held open.

    Audio goes through ``soundcard use files``: ``play`` sends a WAV (looped by
    linphone), ``record`` writes what it receives.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        user: str = "carol",
        ip: str = "127.0.0.1",
        codecs: str | list[str] | tuple[str, ...] | None = None,
        tone_hz: float | None = 1000,
        play_wav: str | os.PathLike | None = None,
        auto_answer: bool = True,
        max_time: float = 60.0,
        video: bool = False,
        video_codecs: str | list[str] | tuple[str, ...] | None = None,
        video_fps: float = 10.0,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if isinstance(video_codecs, str):
            video_codecs = [c for c in video_codecs.split(",") if c]
        self.video_codecs = [c.upper() for c in video_codecs or []]
        self.video = video or bool(self.video_codecs)
        self.video_fps = video_fps
        self.ip = ip
        self.user = user
        self.sip_port = free_port("udp", ip)
        self.rtp_port = free_rtp_port(ip, count=6)
        self.max_time = max_time
        self.uri = f"sip:{user}@{ip}:{self.sip_port}"
        if isinstance(codecs, str):
            codecs = [c for c in codecs.split(",") if c]
        self.codecs = [c.lower() for c in codecs or []]
        self.home = self.workdir / "home"
        (self.home / ".local" / "share" / "linphone").mkdir(parents=True, exist_ok=True)
        self.rc = self.workdir / "linphonerc"
        self.rc.write_text(self._render_rc())
        if play_wav is None and tone_hz:
            play_wav = make_tone_wav(self.workdir / f"tone{tone_hz:g}.wav", tone_hz, max_time + 5)
        self.play_wav = Path(play_wav) if play_wav else None
        self.record_wav = self.workdir / "received.wav"
        self.fifo = self.workdir / "stdin.fifo"
        os.mkfifo(self.fifo)
        self.out_file = self.workdir / "linphonec.out"
        self.log_file = self.workdir / "linphonec.log"
        self._out = open(self.out_file, "wb")
        env = dict(os.environ, HOME=str(self.home))
        args = ["linphonec", "-c", str(self.rc), "-d", "5", "-l", str(self.log_file)]
        if auto_answer:
            args.append("-a")
        if self.video:
            args.append("-V")  # video is off in linphonec unless asked for
        # one read-write descriptor of the FIFO: its stdin, and our end for commands
        # (open never blocks, and linphonec never sees EOF, on which it would exit)
        fd = os.open(self.fifo, os.O_RDWR)
        self.proc = subprocess.Popen(args, stdin=fd, stdout=self._out, stderr=subprocess.STDOUT,
                                     cwd=self.workdir, env=env)
        self.pid = self.proc.pid
        self._cmd = os.fdopen(fd, "w")
        self._deadline = threading.Timer(max_time, self._expire)
        self._deadline.daemon = True
        self._deadline.start()
        self.send("soundcard use files")
        if self.play_wav:
            self.send(f"play {self.play_wav}")
        self.send(f"record {self.record_wav}")
        if self.video:
            self.send(f"staticpic fps {self.video_fps:g}")
        if not _wait_for(lambda: "Using wav files" in self.output() or not self.running(), 10):
            raise AssertionError(f"linphonec did not switch to wav files\n{self.output()}")

    def _render_rc(self) -> str:
        text = LINPHONERC_TEMPLATE.read_text()
        values = {"IP": self.ip, "SIP_PORT": str(self.sip_port), "USER": self.user,
                  "AUDIO_RTP_PORT": str(self.rtp_port), "VIDEO_RTP_PORT": str(self.rtp_port + 2),
                  "TEXT_RTP_PORT": str(self.rtp_port + 4)}
        for k, v in values.items():
            text = text.replace(f"@{k}@", v)
        if self.video:
            # the static picture as camera at CIF, decoded into a display that draws nothing
            text = re.sub(r"(?ms)^\[video\]\n.*?(?=^\[|\Z)", "", text).rstrip() + "\n" + LINPHONE_VIDEO_SECTION
            if self.video_codecs:
                others = [c for c in LINPHONE_VIDEO_CODECS if c not in self.video_codecs]
                for i, mime in enumerate(self.video_codecs + others):
                    text += (f"\n[video_codec_{i}]\nmime={mime}\nrate=90000\n"
                             f"enabled={1 if mime in self.video_codecs else 0}\n")
                    if mime in LINPHONE_VIDEO_FMTP:
                        text += f"recv_fmtp={LINPHONE_VIDEO_FMTP[mime]}\n"
        if self.codecs:
            # every known codec listed: the wanted ones enabled, in the order asked
            wanted = [c for c in LINPHONE_AUDIO_CODECS if c[0].lower() in self.codecs]
            wanted.sort(key=lambda c: self.codecs.index(c[0].lower()))
            others = [c for c in LINPHONE_AUDIO_CODECS if c not in wanted]
            for i, (mime, rate, ch) in enumerate(wanted + others):
                text += (f"\n[audio_codec_{i}]\nmime={mime}\nrate={rate}\nchannels={ch}\n"
                         f"enabled={1 if (mime, rate, ch) in wanted else 0}\n")
        return text

    def _expire(self) -> None:
        if self.running():
            self.stop()

    def send(self, line: str) -> None:
        """One linphonec console command (e.g. "call sip:...", "terminate all", "5")."""
        self._cmd.write(line + "\n")
        self._cmd.flush()

    def call(self, uri: str) -> None:
        self.send(f"call {uri}")

    def terminate(self) -> None:
        self.send("terminate all")

    def dtmf(self, digits: str, gap_s: float = 0.3) -> None:
        """Each digit typed alone on a line: linphonec sends it as DTMF (RFC 4733)."""
        for d in digits:
            self.send(d)
            time.sleep(gap_s)

    def output(self) -> str:
        try:
            return _ANSI.sub("", self.out_file.read_text(errors="replace"))
        except OSError:
            return ""

    def log(self, n: int = 4000) -> str:
        try:
            return _tail(self.log_file.read_text(errors="replace"), n)
        except OSError:
            return ""

    def wait_output(self, pattern: str, timeout: float = 10.0) -> re.Match:
        rx = re.compile(pattern)
        found: list[re.Match] = []

        def seen() -> bool:
            m = rx.search(self.output())
            if m:
                found.append(m)
            return bool(m)

        if not _wait_for(seen, timeout) or not found:
            raise AssertionError(f"linphonec: no {pattern!r} within {timeout}s\n"
                                 f"{_tail(self.output())}")
        return found[-1]

    def wait_connected(self, timeout: float = 10.0) -> None:
        self.wait_output(r"Call \d+ with .* connected", timeout)

    def wait_ended(self, timeout: float = 10.0) -> None:
        self.wait_output(r"Call \d+ with .* (ended|error)|Call \d+ ended", timeout)

    def codec(self) -> str | None:
        """The audio codec of the last SDP in linphone's log (first payload type of its
        m=audio line; linphone writes no rtpmap for static payload types)."""
        text = self.log(10**7)
        at = text.rfind("m=audio ")
        if at < 0:
            return None
        lines = text[at:].splitlines()
        pts = lines[0].split()[3:]
        if not pts:
            return None
        for line in lines[1:40]:
            m = re.search(rf"a=rtpmap:{pts[0]} ([^/\s]+)", line)
            if m:
                return m.group(1)
        return STATIC_PAYLOAD_TYPES.get(pts[0])

    def video_codec(self) -> str | None:
        """The video codec of the last SDP in linphone's log (first payload type of its m=video line)."""
        text = self.log(10**7)
        at = text.rfind("m=video ")
        if at < 0:
            return None
        lines = text[at:].splitlines()
        fields = lines[0].split()
        if len(fields) < 4 or fields[1] == "0":
            return None
        for line in lines[1:40]:
            m = re.search(rf"a=rtpmap:{fields[3]} ([^/\s]+)", line)
            if m:
                return m.group(1)
        return None

    def rtp_packets(self, kind: str = "audio") -> dict[str, int]:
        """sent/received packets of the last `kind` ("audio" or "video") RTP session from the
        statistics oRTP logs when a stream ends: {"tx": N, "rx": N}, {} when none yet."""
        text = self.log(10**7)
        at = text.rfind(f"{kind.upper()} SESSION'S RTP STATISTICS")
        if at < 0:
            return {}
        found: dict[str, int] = {}
        for line in text[at:].splitlines()[1:12]:
            m = re.search(r"-(sent|received)\s+(\d+) packets", line)
            if m:
                found.setdefault("tx" if m.group(1) == "sent" else "rx", int(m.group(2)))
        return found

    def set_static_picture_fps(self, fps: float) -> None:
        """The static-picture camera's frame rate (linphonec applies it to the running call)."""
        self.send(f"staticpic fps {fps:g}")

    def video_decoded_sizes(self) -> list[tuple[int, int]]:
        """Picture sizes linphone's video decoders reported ("video is 640x480" and the like)."""
        return [(int(w), int(h)) for w, h in
                re.findall(r"(?:video|size) is (\d+)x(\d+)", self.log(10**7), flags=re.IGNORECASE)]

    def received_wav(self) -> Path:
        return self.record_wav

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 5.0) -> int | None:
        """`quit` on its stdin, wait, then SIGTERM / SIGKILL by PID."""
        self._deadline.cancel()
        if self.running():
            try:
                self.send("terminate all")
                self.send("quit")
            except (OSError, ValueError):
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        rc = _stop_popen(self.proc, timeout)
        for f in (self._cmd, self._out):
            try:
                f.close()
            except (OSError, ValueError):
                pass
        return rc


@pytest.fixture
def linphonec_peer(tmp_path: Path) -> Iterator[Callable[..., LinphonecPeer]]:
    """Factory: linphonec_peer(*, codecs=None, tone_hz=1000, play_wav=None, auto_answer=True,
    max_time=60, user="carol", video=False, video_codecs=None, video_fps=10) -> a started LinphonecPeer
    (``.uri``, ``.call(uri)``, ``.terminate()``, ``.dtmf(digits)``, ``.received_wav()``, ``.stop()``).

    codecs: names ("PCMU", "opus", "G722", ...) enabled alone, in that order, through
    the rc file.  The peer plays `play_wav` (default: a sine at tone_hz) and records
    what it receives.  video (implied by video_codecs): ``-V`` with its static picture
    as the camera at `video_fps`, CIF, into a display that draws nothing; video_codecs
    ("VP8", "H264") enabled alone, in that order.  ``video_codec()``.
    """
    require_linphonec()
    started: list[LinphonecPeer] = []

    def start(**kw: Any) -> LinphonecPeer:
        peer = LinphonecPeer(tmp_path / f"linphonec{len(started)}", **kw)
        started.append(peer)
        return peer

    yield start
    for p in started:
        p.stop()


# =========================================================================== Kamailio

KAMAILIO_DIR = Path(__file__).resolve().parent / "kamailio"
KAMAILIO_USERS = {"alice": "alicepw", "bob": "bobpw", "carol": "carolpw"}


def require_kamailio() -> None:
    _need("kamailio", shutil.which("kamailio") is not None,
          "install the Debian package kamailio")


def require_kamailio_tls() -> None:
    require_kamailio()
    found = glob.glob("/usr/lib/*/kamailio/modules/tls.so") or glob.glob("/usr/lib/kamailio/modules/tls.so")
    _need("kamailio tls.so", bool(found), "install the Debian package kamailio-tls-modules")
    _need("openssl", shutil.which("openssl") is not None, "install the Debian package openssl")


class CertificateAuthority:
    """A CA made at test time with the ``openssl`` command (nothing is committed): ``.cert``
    (PEM) signs what ``issue`` makes."""

    def __init__(self, workdir: Path, name: str = "softphone test CA") -> None:
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.key = self.dir / "ca.key"
        self.cert = self.dir / "ca.pem"
        self._run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", f"/CN={name}",
                  "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def issue(self, stem: str, *names: str, client: bool = False) -> tuple[Path, Path]:
        """A certificate and key (PEM) for ``names`` (DNS names or IP addresses in its
        subjectAltName; the first is also its CN); ``client`` for a client certificate."""
        key, csr, cert = self.dir / f"{stem}.key", self.dir / f"{stem}.csr", self.dir / f"{stem}.pem"
        ext = self.dir / f"{stem}.ext"
        sans = ",".join(("IP:" if re.fullmatch(r"[\d.]+|[\da-fA-F:]+:[\da-fA-F:]*", n) else "DNS:") + n
                        for n in names)
        usage = "clientAuth" if client else "serverAuth,clientAuth"
        ext.write_text(f"subjectAltName={sans}\nextendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
        self._run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-keyout", key, "-out", csr, "-subj", f"/CN={names[0]}")
        self._run("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
                  "-out", cert, "-days", "2", "-extfile", ext)
        return cert, key

    def _run(self, *args: object) -> None:
        r = subprocess.run(["openssl", *map(str, args)], cwd=self.dir, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=30, check=False)
        if r.returncode != 0:
            raise AssertionError(f"openssl {args[0]} failed: {r.stderr}")


@pytest.fixture
def tls_ca(tmp_path: Path) -> Callable[[str], CertificateAuthority]:
    """Factory: tls_ca(name="softphone test CA") -> a new CertificateAuthority under tmp_path."""
    _need("openssl", shutil.which("openssl") is not None, "install the Debian package openssl")

    def make(name: str = "softphone test CA") -> CertificateAuthority:
        return CertificateAuthority(tmp_path / re.sub(r"\W+", "-", name), name)

    return make


def _listening(proto: str, port: int, pid: int | None = None) -> bool:
    """Whether something is bound (UDP) or listening (TCP) on 127.0.0.1:port (from /proc/net;
    with `pid`, in that process's network namespace)."""
    want = f"0100007F:{port:04X}"
    try:
        lines = Path(f"/proc/{pid}/net/{proto}" if pid else f"/proc/net/{proto}").read_text().splitlines()[1:]
    except OSError:
        return False
    for line in lines:
        f = line.split()
        if len(f) > 3 and f[1] == want and (proto == "udp" or f[3] == "0A"):
            return True
    return False


def _child_pids(pid: int) -> list[int]:
    """The PIDs whose parent is `pid` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 1 and int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Whether `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:][:1] not in ("Z", "X", "")


def _parse_rpc_tree(text: str) -> list[dict[str, str]]:
    """The Contact blocks of `kamcmd ul.dump` output, each with its AoR."""
    contacts: list[dict[str, str]] = []
    aor = ""
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("AoR:"):
            aor = line.split(":", 1)[1].strip()
        elif line == "Contact: {":
            current = {"aor": aor}
        elif current is not None:
            if line.startswith("}"):
                contacts.append(current)
                current = None
            elif ":" in line:
                k, v = line.split(":", 1)
                current[k.strip().lower().replace("-", "_")] = v.strip()
    return contacts


class KamailioProcess:
    """Kamailio as registrar + proxy on 127.0.0.1 (UDP and TCP on one port).

    Runs tests/interop/kamailio/kamailio.cfg in the foreground (``-DD -E``) from
    a copy of its db folder under `workdir`; its log is ``.log``.  Users and
    passwords: ``KAMAILIO_USERS`` (domain 127.0.0.1).  ``restart()`` starts it
    again on the same ports with an empty location table (contacts live in
    memory only).
    """

    domain = "127.0.0.1"
    users = KAMAILIO_USERS

    def __init__(
        self,
        workdir: Path,
        *,
        invite_auth: bool = False,
        bye_auth: bool | None = None,
        sha256: bool = False,
        qop: bool = False,
        expires_min: int | None = None,
        expires_min_reject: bool = True,
        nat: bool = True,
        defines: tuple[str, ...] | list[str] = (),
        start_timeout: float = 10.0,
        tls: CertificateAuthority | None = None,
        tls_require_cert: bool = False,
        netns: str | None = None,
        listen: tuple[str, ...] = (),
        relay: tuple[str, ...] = (),
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.cfg = self.workdir / "kamailio.cfg"
        shutil.copyfile(KAMAILIO_DIR / "kamailio.cfg", self.cfg)
        self.netns = netns
        if listen or relay:
            self._widen(listen, relay)
        self.db_dir = self.workdir / "db"
        shutil.copytree(KAMAILIO_DIR / "db", self.db_dir, dirs_exist_ok=True)
        self.udp_port = free_port("udp", "127.0.0.1")   # free for UDP and TCP
        self.tcp_port = self.udp_port
        self.ctl_port = free_port("tcp", "127.0.0.1")
        self.tls_port: int | None = None
        names = list(defines)
        if tls is not None:
            # a server certificate for the domain (127.0.0.1) and localhost, signed by the test CA
            cert, key = tls.issue("kamailio", "127.0.0.1", "localhost")
            self.tls_port = free_port("tcp", "127.0.0.1")
            names += ["WITH_TLS", f"TLS_PORT={self.tls_port}", f'TLS_CERT="{cert}"', f'TLS_KEY="{key}"',
                      f'TLS_CA="{tls.cert}"']
            if tls_require_cert:
                names.append("TLS_REQUIRE_CERT")
        if invite_auth:
            names.append("WITH_INVITE_AUTH")
        if invite_auth if bye_auth is None else bye_auth:
            names.append("WITH_BYE_AUTH")
        if sha256:
            names.append("WITH_SHA256")
        if qop:
            names.append("WITH_QOP")
        if nat:
            names.append("WITH_NAT")
        if expires_min is not None:
            names += [f"MIN_EXPIRES={int(expires_min)}",
                      f"MIN_EXPIRES_MODE={1 if expires_min_reject else 0}"]
        self.defines = names
        self.start_timeout = start_timeout
        self.log_file = self.workdir / "kamailio.log"
        self._log_offset = 0
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.start()

    def _widen(self, listen: tuple[str, ...], relay: tuple[str, ...]) -> None:
        """The copy of the config also listens on `listen` (UDP and TCP, same port) and may
        relay to addresses starting with one of `relay` (e.g. "10.0.0.") besides loopback."""
        text = self.cfg.read_text()
        anchor = "listen=tcp:127.0.0.1:SIP_PORT\n"
        loopback = '$var(dst) =~ "^\\[?::1\\]?$"'
        assert anchor in text and loopback in text, "kamailio.cfg changed: update KamailioProcess._widen"
        extra = "".join(f"listen=udp:{a}:SIP_PORT\nlisten=tcp:{a}:SIP_PORT\nalias=\"{a}:SIP_PORT\"\n" for a in listen)
        text = text.replace(anchor, anchor + extra, 1)
        prefixes = "".join(f' || $var(dst) =~ "^{re.escape(r)}"' for r in relay)
        self.cfg.write_text(text.replace(loopback, loopback + prefixes, 1))

    # ----------------------------------------------------------------- process
    @property
    def cmd(self) -> list[str]:
        cmd = ["ip", "netns", "exec", self.netns] if self.netns else []
        cmd += ["kamailio", "-DD", "-E", "-f", str(self.cfg),
               "-A", f'DBURL="text://{self.db_dir}"',
               "-A", f"SIP_PORT={self.udp_port}",
               "-A", f'CTL_SOCKET="tcp:127.0.0.1:{self.ctl_port}"']
        for d in self.defines:
            cmd += ["-A", d]
        return cmd + ["-m", "64", "-M", "8", "-w", str(self.workdir), "-Y", str(self.workdir)]

    def start(self) -> None:
        if self.running():
            raise AssertionError("kamailio is already running")
        # the ports must be free again (after stop(), the old process is gone)
        deadline = time.monotonic() + self.start_timeout
        while any(_listening(p, port) for p, port in self._ports):
            if time.monotonic() > deadline:
                raise AssertionError(f"kamailio ports {self.udp_port}/{self.ctl_port} still busy")
            time.sleep(0.05)
        with open(self.log_file, "ab") as log:
            self._log_offset = log.tell()
            log.write(f"==== start: {' '.join(self.cmd)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.cmd, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        pid = self.pid if self.netns else None
        ready = _wait_for(lambda: not self.running() or all(_listening(p, port, pid) for p, port in self._ports),
                          self.start_timeout, step=0.02)
        if not ready or not self.running():
            self.stop()
            raise AssertionError(f"kamailio did not start on udp/tcp {self.udp_port}\n"
                                 f"{_tail(self.log)}")

    @property
    def _ports(self) -> list[tuple[str, int]]:
        ports = [("udp", self.udp_port), ("tcp", self.tcp_port), ("tcp", self.ctl_port)]
        return ports + ([("tcp", self.tls_port)] if self.tls_port else [])

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 1.0) -> int | None:
        """SIGTERM to the main process by PID, SIGKILL after `timeout`; then SIGKILL, by
        PID, any of its children still there a moment later (now and then a child hangs
        in its signal handler, and the main process waits for it)."""
        import signal

        if self.proc is None:
            return None
        children = _child_pids(self.proc.pid) if self.running() else []
        rc = _stop_popen(self.proc, timeout)
        if not _wait_for(lambda: not any(_alive(pid) for pid in children), 0.2):
            for pid in children:
                if _alive(pid):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
            _wait_for(lambda: not any(_alive(pid) for pid in children), 5.0)
        return rc

    def restart(self) -> None:
        """Stop, then start again on the same ports (the location table starts empty)."""
        self.stop()
        self.start()

    # ----------------------------------------------------------------- queries
    @property
    def log(self) -> str:
        """Everything Kamailio wrote, across restarts."""
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    @property
    def current_log(self) -> str:
        """The log of the running (or last) process only."""
        try:
            with open(self.log_file, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def registrar_uri(self, transport: str = "udp") -> str:
        uri = f"sip:{self.domain}:{self.udp_port}"
        return uri if transport == "udp" else f"{uri};transport={transport}"

    def aor(self, user: str, transport: str = "udp") -> str:
        """The URI to call `user` through this proxy."""
        uri = f"sip:{user}@{self.domain}:{self.udp_port}"
        return uri if transport == "udp" else f"{uri};transport={transport}"

    def kamcmd(self, *args: str, timeout: float = 5.0) -> str:
        netns = ["ip", "netns", "exec", self.netns] if self.netns else []
        r = subprocess.run([*netns, "kamcmd", "-s", f"tcp:127.0.0.1:{self.ctl_port}", *args],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=timeout, check=False)
        if r.returncode != 0:
            raise AssertionError(f"kamcmd {' '.join(args)} failed ({r.returncode}): "
                                 f"{r.stderr or r.stdout}")
        return r.stdout

    def location(self, user: str | None = None) -> list[dict[str, str]]:
        """The registered contacts: dicts with aor (user), address (contact URI),
        expires, received, socket, user_agent, call_id, cseq, ...

        Read with `kamcmd ul.dump`; without kamcmd, from the LOCATION-SAVED lines the
        config logs since the last start (then only aor, address, received, socket,
        expires; removals are not seen).
        """
        if shutil.which("kamcmd"):
            contacts = _parse_rpc_tree(self.kamcmd("ul.dump"))
        else:
            contacts = []
            rx = re.compile(r"LOCATION-SAVED aor=sip:([^@\s]+)@\S+ contact=(.*?) "
                            r"src=(\w+):([^:\s]+):(\d+) expires=(\S*)")
            for m in rx.finditer(self.current_log):
                ct = m.group(2)
                addr = ct[ct.find("<") + 1:ct.find(">")] if "<" in ct else ct.split(";")[0]
                contacts.append({"aor": m.group(1), "address": addr,
                                 "received": f"sip:{m.group(4)}:{m.group(5)}",
                                 "socket": m.group(3), "expires": m.group(6)})
        return [c for c in contacts if user is None or c.get("aor") == user]

    def wait_registered(self, user: str, timeout: float = 10.0) -> list[dict[str, str]]:
        """`user`'s contacts once there is at least one; fails after `timeout`."""
        found: list[list[dict[str, str]]] = []

        def check() -> bool:
            found.append(self.location(user))
            return bool(found[-1])

        if not _wait_for(check, timeout, step=0.1):
            raise AssertionError(f"{user} not registered within {timeout}s\n"
                                 f"{_tail(self.current_log)}")
        return found[-1]


@pytest.fixture
def kamailio(tmp_path: Path) -> Iterator[Callable[..., KamailioProcess]]:
    """Factory: kamailio(invite_auth=False, bye_auth=None, sha256=False, qop=False,
    expires_min=None, expires_min_reject=True, nat=True, defines=(), netns=None, listen=(),
    relay=()) -> a started
    KamailioProcess (``.udp_port``, ``.tcp_port`` (the same number), ``.domain``,
    ``.aor(user)``, ``.registrar_uri()``, ``.location()``, ``.wait_registered(user)``,
    ``.restart()``, ``.stop()``, ``.log``).

    invite_auth: initial INVITE/MESSAGE from local users get 407 (proxy auth);
    bye_auth (default: same as invite_auth): in-dialog BYE from local users too.
    sha256: challenges say algorithm=SHA-256 (MD5 answers are refused).  qop:
    challenges carry qop="auth".  expires_min: registrar min_expires; a shorter
    Expires gets 423 with Min-Expires (or is raised to it with
    expires_min_reject=False).  nat: contacts are reached at the REGISTER's source
    address (over its TCP connection for TCP clients).
    tls: a CertificateAuthority (fixture ``tls_ca``): SIP over TLS too, on ``.tls_port``,
    with a server certificate for 127.0.0.1 and localhost signed by it;
    tls_require_cert: TLS clients must present a certificate signed by it.
    """
    require_kamailio()
    started: list[KamailioProcess] = []

    def start(**kw: Any) -> KamailioProcess:
        if kw.get("tls") is not None:
            require_kamailio_tls()
        k = KamailioProcess(tmp_path / f"kamailio{len(started)}", **kw)
        started.append(k)
        return k

    yield start
    for k in started:
        k.stop()
