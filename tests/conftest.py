"""Shared fixtures: the softphone CLI as a subprocess, SIPp and the PJSUA2 peer.

Every process is started here, bounded in time and stopped by its PID at
teardown.  Everything listens on loopback only.
"""
from __future__ import annotations

import csv
import functools
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# OpenCV's X libraries must load before PyAV's (same file names, different builds): the
# device package arranges that when it is imported before any test module imports av
import softphone.devices

ROOT = Path(__file__).resolve().parent.parent
INTEROP_DIR = Path(__file__).resolve().parent / "interop"
SCENARIO_DIR = INTEROP_DIR / "scenarios"
PJSUA2_PEER = INTEROP_DIR / "pjsua2_peer.py"

SOFTPHONE_CMD: list[str] = [sys.executable, "-m", "softphone"]

# --------------------------------------------------------------------------- ports

_handed_out: set[tuple[str, int]] = set()
_port_lock = threading.Lock()


def _family(host: str) -> int:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _bindable(host: str, port: int, kinds: tuple[int, ...]) -> bool:
    socks = []
    try:
        for kind in kinds:
            s = socket.socket(_family(host), kind)
            socks.append(s)
            s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def _port_pool() -> range:
    """This test process's own ports: a slice, one per pytest-xdist worker, of the ports
    below the kernel's ephemeral range. The kernel never hands those to a socket bound to
    port 0 or to an outgoing connection, and two workers never share one, so a port chosen
    here is still free when the peer binds it a moment later."""
    try:
        ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral_low = 32768
    low, high = 20000, max(20000 + 1000, ephemeral_low)
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    size = (high - low) // max(1, workers)
    return range(low + worker * size, low + (worker + 1) * size)


_POOL = _port_pool()
_next_port = [_POOL.start]


def _claim(host: str, count: int, kinds: tuple[int, ...], even: bool = False) -> int:
    """The next run of ``count`` ports from this process's pool, each bindable for ``kinds``."""
    with _port_lock:
        for _ in range(len(_POOL)):
            port = _next_port[0]
            if even and port % 2:
                port += 1
            if port + count > _POOL.stop:
                port = _POOL.start  # wrapped round: ports handed out stay taken
            _next_port[0] = port + count
            ports = [(host, p) for p in range(port, port + count)]
            if any(p in _handed_out for p in ports):
                continue
            if all(_bindable(host, p, kinds) for _, p in ports):
                _handed_out.update(ports)
                return port
    raise RuntimeError(f"no free run of {count} ports on {host} in {_POOL.start}..{_POOL.stop - 1}")


def free_port(kind: str = "udp", host: str = "127.0.0.1") -> int:
    """A port number free for both UDP and TCP on `host` (never the same twice per run)."""
    return _claim(host, 1, (socket.SOCK_DGRAM, socket.SOCK_STREAM))


def free_rtp_port(host: str = "127.0.0.1", count: int = 4) -> int:
    """An even port P with P .. P+count-1 free for UDP (RTP/RTCP of audio and video)."""
    return _claim(host, count, (socket.SOCK_DGRAM,), even=True)


# --------------------------------------------------------------------------- processes


def _kill_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _stop_popen(proc: subprocess.Popen, timeout: float, sig: int = signal.SIGTERM) -> int:
    """Signal by PID, wait up to `timeout`, then SIGKILL by PID."""
    if proc.poll() is None:
        _kill_pid(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_pid(proc.pid, signal.SIGKILL)
            proc.wait(10)
    return proc.returncode


def _child_env(extra: dict | None) -> dict:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p
    )
    if extra:
        env.update(extra)
    return env


def _tail(text: str, n: int = 4000) -> str:
    return text if len(text) <= n else "...\n" + text[-n:]


class SoftphoneProcess:
    """`softphone --json ARGS...` in a subprocess; its JSON events collected by a thread."""

    def __init__(
        self, args: list[str], *, netns: str | None = None, env: dict | None = None
    ) -> None:
        self.args = list(args)
        cmd = SOFTPHONE_CMD + ["--json"] + self.args
        if netns:
            cmd = ["ip", "netns", "exec", netns] + cmd
        self.cmd = cmd
        self.events: list[dict] = []
        self.stdout_lines: list[str] = []
        self._stderr: list[str] = []
        self._cond = threading.Condition()
        self._eof = False
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_child_env(env),
            text=True,
            bufsize=1,
        )
        self.pid: int = self.proc.pid
        self._out_thread = threading.Thread(target=self._read_stdout, daemon=True)
        self._err_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._out_thread.start()
        self._err_thread.start()

    # -- readers
    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            obj: Any = None
            try:
                obj = json.loads(line)
            except ValueError:
                pass
            with self._cond:
                if isinstance(obj, dict) and "event" in obj:
                    obj.setdefault("_t", round(time.monotonic() - self.started_at, 6))
                    self.events.append(obj)
                else:
                    self.stdout_lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self._stderr.append(line)

    # -- queries
    @property
    def stderr(self) -> str:
        with self._cond:
            return "".join(self._stderr)

    @property
    def summary(self) -> dict | None:
        with self._cond:
            found = [e for e in self.events if e.get("event") == "summary"]
        return found[-1] if found else None

    def find_events(self, event: str, **match: Any) -> list[dict]:
        with self._cond:
            return [e for e in self.events if _matches(e, event, match)]

    def describe(self) -> str:
        with self._cond:
            events = "\n".join(json.dumps(e) for e in self.events)
            other = "\n".join(self.stdout_lines)
        return (
            f"softphone pid {self.pid} cmd {' '.join(self.cmd[2:])!r} "
            f"exit {self.proc.poll()}\n--- events:\n{_tail(events)}\n"
            f"--- other stdout:\n{_tail(other, 1500)}\n--- stderr:\n{_tail(self.stderr)}"
        )

    def wait_event(self, event: str, timeout: float = 10.0, **match: Any) -> dict:
        """The first event named `event` whose fields equal `match` (past ones included)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events:
                    if _matches(e, event, match):
                        return e
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    break
                self._cond.wait(min(left, 0.5))
        why = "process ended" if self._eof else f"timeout {timeout}s"
        if self._eof:
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                pass
        raise AssertionError(
            f"no event {event!r} matching {match} ({why})\n{self.describe()}"
        )

    def port(self, transport: str = "udp") -> int:
        return int(self.wait_event("listening", transport=transport)["port"])

    def running(self) -> bool:
        return self.proc.poll() is None

    def _join_readers(self) -> None:
        self._out_thread.join(5)
        self._err_thread.join(5)

    def wait(self, timeout: float = 30.0) -> int:
        """The exit code; on timeout kill it (by PID) and fail."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_pid(self.pid, signal.SIGKILL)
            self.proc.wait(10)
            self._join_readers()
            raise AssertionError(
                f"softphone did not exit within {timeout}s (killed)\n{self.describe()}"
            ) from None
        self._join_readers()
        return rc

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM by PID, wait, SIGKILL after `timeout`; the exit code."""
        rc = _stop_popen(self.proc, timeout)
        self._join_readers()
        return rc


def _matches(e: dict, event: str, match: dict) -> bool:
    return e.get("event") == event and all(e.get(k) == v for k, v in match.items())


@pytest.fixture
def softphone() -> Iterator[Callable[..., SoftphoneProcess]]:
    """Factory: softphone(*args, netns=None, env=None) -> a started SoftphoneProcess."""
    started: list[SoftphoneProcess] = []

    def start(*args: str, netns: str | None = None, env: dict | None = None) -> SoftphoneProcess:
        p = SoftphoneProcess([str(a) for a in args], netns=netns, env=env)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.running():
            p.stop(5)
    for p in started:
        _assert_no_secret(p)


# The passwords the tests give the phone (accounts, Kamailio's users, users files): none may
# appear in anything a phone prints, at any verbosity, in JSON or in a traceback.
TEST_SECRETS = ("alicepw", "bobpw", "carolpw", "Incoming-auth-pw-93", "Secrets-account-pw-41",
                "Secrets-caller-pw-58", "hunter2", "s3cret")


def _assert_no_secret(process: SoftphoneProcess) -> None:
    printed = "\n".join([*process.stdout_lines, *(json.dumps(e) for e in process.events), process.stderr])
    leaked = [secret for secret in TEST_SECRETS if secret in printed]
    assert not leaked, f"a password ({leaked[0]}) in what softphone {' '.join(process.args)} printed"


# --------------------------------------------------------------------------- peer availability


def _need(what: str, ok: bool, hint: str) -> None:
    if ok:
        return
    msg = f"{what} is not available: {hint}"
    if os.environ.get("CI"):
        pytest.fail(msg + " (CI is set: interop peers are required)", pytrace=False)
    pytest.skip(msg)


def sipp_path() -> str | None:
    return shutil.which("sipp")


@functools.lru_cache(maxsize=1)
def pjsua2_importable() -> bool:
    if importlib.util.find_spec("pjsua2") is None:
        return False
    r = subprocess.run(
        [sys.executable, "-c", "import pjsua2"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    return r.returncode == 0


def require_sipp() -> None:
    _need("sipp", sipp_path() is not None, "install SIPp (Debian package sip-tester)")


def require_pjsua2() -> None:
    _need("pjsua2", pjsua2_importable(), "pip install pjsua2-python")


# --------------------------------------------------------------------------- SIPp


def _int_or_str(v: str) -> Any:
    try:
        return int(v)
    except (TypeError, ValueError):
        return v


class Sipp:
    """One sipp process on loopback, its traces in `workdir`.

    scenario: a built-in name ("uac", "uas", ...) or a scenario file (a bare
    name like "uas_av.xml" is looked up in tests/interop/scenarios).
    """

    def __init__(
        self,
        scenario: str,
        target: str | None,
        extra_args: list[str],
        workdir: Path,
        *,
        host: str = "127.0.0.1",
        timeout: float = 60.0,
        trace_msg: bool = True,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.extra_args = [str(a) for a in extra_args]
        path = Path(scenario)
        if scenario.endswith(".xml"):
            if not path.is_absolute() and not path.exists():
                path = SCENARIO_DIR / scenario
            self.scenario_args = ["-sf", str(path.resolve())]
            self.name = path.stem
        else:
            self.scenario_args = ["-sn", scenario]
            self.name = scenario
        tag = f"{self.name}_{time.monotonic_ns()}"
        self.stat_file = self.workdir / f"{tag}_stat.csv"
        self.error_file = self.workdir / f"{tag}_errors.log"
        self.message_file = self.workdir / f"{tag}_messages.log"
        self.log_file = self.workdir / f"{tag}_logs.log"
        self.out_file = self.workdir / f"{tag}_screen.out"
        cmd = ["sipp"] + self.scenario_args
        if target:
            cmd.append(target)
        cmd += ["-i", host, "-bind_local", "-ci", "127.0.0.1", "-mi", host, "-nostdin"]
        given = set(self.extra_args)
        if "-p" not in given:
            self.local_port = free_port("udp", host)
            cmd += ["-p", str(self.local_port)]
        else:
            self.local_port = int(self.extra_args[self.extra_args.index("-p") + 1])
        if "-mp" not in given:
            self.media_port = free_rtp_port(host)
            cmd += ["-mp", str(self.media_port)]
        if "-cp" not in given:
            cmd += ["-cp", str(free_port("udp", "127.0.0.1"))]
        if "-timeout" not in given:
            cmd += ["-timeout", str(int(timeout))]
        cmd += ["-trace_stat", "-stf", str(self.stat_file), "-fd", "1"]
        cmd += ["-trace_err", "-error_file", str(self.error_file)]
        cmd += ["-trace_rtt", "-rtt_freq", "1"]
        cmd += ["-trace_logs", "-log_file", str(self.log_file)]
        if trace_msg:
            cmd += ["-trace_msg", "-message_file", str(self.message_file)]
        cmd += self.extra_args
        self.cmd = cmd
        self.timeout = timeout
        self._out = open(self.out_file, "wb")
        self.proc = subprocess.Popen(
            cmd, cwd=self.workdir, stdin=subprocess.DEVNULL, stdout=self._out,
            stderr=subprocess.STDOUT,
        )
        self.pid = self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait(self, timeout: float | None = None) -> int:
        """sipp's exit code (0 = every call succeeded); on timeout kill by PID and fail."""
        timeout = self.timeout + 10 if timeout is None else timeout
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop_popen(self.proc, 5)
            self._out.close()
            raise AssertionError(
                f"sipp did not exit within {timeout}s (killed)\n{self.describe()}"
            ) from None
        self._out.close()
        return rc

    def stop(self, timeout: float = 5.0) -> int:
        rc = _stop_popen(self.proc, timeout)
        self._out.close()
        return rc

    def stats(self) -> dict:
        """The last row of -trace_stat; integer columns as int."""
        if not self.stat_file.exists():
            return {}
        with open(self.stat_file, newline="") as f:
            rows = list(csv.DictReader(f, delimiter=";"))
        if not rows:
            return {}
        return {k: _int_or_str(v) for k, v in rows[-1].items() if k}

    def _read(self, p: Path) -> str:
        return p.read_text(errors="replace") if p.exists() else ""

    @property
    def errors_log(self) -> str:
        return self._read(self.error_file)

    @property
    def messages(self) -> str:
        return self._read(self.message_file)

    @property
    def logs(self) -> str:
        return self._read(self.log_file)

    @property
    def screen(self) -> str:
        return self._read(self.out_file)

    def describe(self) -> str:
        st = self.stats()
        brief = {k: st.get(k) for k in ("SuccessfulCall(C)", "FailedCall(C)", "OutgoingCall(C)",
                                         "IncomingCall(C)")}
        brief.update({k: v for k, v in st.items() if k.startswith("Failed") and v not in (0, "0")})
        return (
            f"sipp pid {self.pid}: {' '.join(self.cmd[1:])}\nexit {self.proc.poll()} stats {brief}\n"
            f"--- errors:\n{_tail(self.errors_log, 3000)}\n"
            f"--- last messages:\n{_tail(self.messages, 3000)}"
        )


@pytest.fixture
def sipp(tmp_path: Path) -> Iterator[Callable[..., Sipp]]:
    """Factory: sipp(scenario, target, *extra_args, host=..., timeout=...) -> Sipp."""
    require_sipp()
    started: list[Sipp] = []

    def start(scenario: str, target: str | None = None, *extra_args: Any, **kw: Any) -> Sipp:
        s = Sipp(scenario, target, list(extra_args), tmp_path / "sipp", **kw)
        started.append(s)
        return s

    yield start
    for s in started:
        if s.running():
            s.stop()


# --------------------------------------------------------------------------- PJSUA2 peer


class Pjsua2Peer:
    """tests/interop/pjsua2_peer.py in a subprocess; one JSON line at its exit."""

    def __init__(self, args: list[str], port: int, workdir: Path, max_time: float,
                 netns: str | None = None) -> None:
        self.port = port
        self.max_time = max_time
        workdir.mkdir(parents=True, exist_ok=True)
        tag = f"pjsua2_{port}_{time.monotonic_ns()}"
        self.stdout_file = workdir / f"{tag}.json"
        self.stderr_file = workdir / f"{tag}.err"
        self.cmd = [sys.executable, str(PJSUA2_PEER), "--port", str(port)] + args
        if netns:
            self.cmd = ["ip", "netns", "exec", netns] + self.cmd
        self._out = open(self.stdout_file, "wb")
        self._err = open(self.stderr_file, "wb")
        self.proc = subprocess.Popen(
            self.cmd, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
            env=_child_env(None),
        )
        self.pid = self.proc.pid
        self.result: dict | None = None

    @property
    def stderr(self) -> str:
        return self.stderr_file.read_text(errors="replace")

    def running(self) -> bool:
        return self.proc.poll() is None

    def wait_ready(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "READY" in self.stderr:
                return
            if not self.running():
                break
            time.sleep(0.05)
        raise AssertionError(f"pjsua2 peer not ready\n{_tail(self.stderr)}")

    def _finish(self) -> dict:
        self._out.close()
        self._err.close()
        text = self.stdout_file.read_text(errors="replace").strip()
        line = text.splitlines()[-1] if text else ""
        try:
            self.result = json.loads(line)
        except ValueError:
            raise AssertionError(
                f"pjsua2 peer printed no JSON (exit {self.proc.returncode})\n"
                f"stdout: {text!r}\nstderr:\n{_tail(self.stderr)}"
            ) from None
        self.result["exit_code"] = self.proc.returncode
        return self.result

    def wait(self, timeout: float | None = None) -> dict:
        """Its final JSON (plus "exit_code"); on timeout kill by PID and fail."""
        timeout = self.max_time + 15 if timeout is None else timeout
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop_popen(self.proc, 5)
            self._out.close()
            self._err.close()
            raise AssertionError(
                f"pjsua2 peer did not exit within {timeout}s (killed)\n{_tail(self.stderr)}"
            ) from None
        return self._finish()

    def stop(self, timeout: float = 10.0) -> dict | None:
        """SIGTERM (it hangs up and prints its JSON), SIGKILL after `timeout`."""
        if self.result is not None:
            return self.result
        _stop_popen(self.proc, timeout)
        try:
            return self._finish()
        except AssertionError:
            return None


@pytest.fixture
def pjsua2_peer(tmp_path: Path) -> Iterator[Callable[..., Pjsua2Peer]]:
    """Factory(mode="answer"|"call", port=None, rtp_port=None, call_uri=None, codec=None,
    duration=0, calls=0, max_time=30, ip="127.0.0.1", extra=(), netns=None) -> Pjsua2Peer.
    netns: run it inside that network namespace (``ip`` is then one of its addresses).

    duration: the peer hangs up that many seconds after CONFIRMED (0 = never).
    In answer mode the factory returns once the peer listens.
    """
    require_pjsua2()
    started: list[Pjsua2Peer] = []

    def start(
        mode: str = "answer",
        *,
        port: int | None = None,
        rtp_port: int | None = None,
        call_uri: str | None = None,
        codec: str | None = None,
        duration: float = 0.0,
        calls: int = 0,
        max_time: float = 30.0,
        ip: str = "127.0.0.1",
        extra: tuple[str, ...] | list[str] = (),
        netns: str | None = None,
    ) -> Pjsua2Peer:
        port = port or free_port("udp", "127.0.0.1" if netns else ip)
        rtp_port = rtp_port or free_rtp_port("127.0.0.1" if netns else ip)
        args = ["--ip", ip, "--rtp-port", str(rtp_port), "--hangup-after", str(duration),
                "--max-time", str(max_time)]
        if calls:
            args += ["--calls", str(calls)]
        if codec:
            args += ["--codec", codec]
        if mode == "call":
            if not call_uri:
                raise ValueError("call mode needs call_uri")
            args += ["--call", call_uri]
        elif mode != "answer":
            raise ValueError(f"mode must be 'answer' or 'call', not {mode!r}")
        peer = Pjsua2Peer(args + list(extra), port, tmp_path / "pjsua2", max_time, netns)
        started.append(peer)
        if mode == "answer":
            peer.wait_ready()
        return peer

    yield start
    for p in started:
        if p.running():
            p.stop(5)
        else:
            p._out.close()
            p._err.close()


# --------------------------------------------------------------------------- WAV files


def read_wav(path: str | os.PathLike) -> tuple[Any, int]:
    """A 16-bit PCM WAV as (float64 samples of the first channel, rate).

    Reads the RIFF chunks itself: it accepts WAVE_FORMAT_EXTENSIBLE and files whose
    sizes were never patched (a recorder that was killed).
    """
    import struct

    import numpy as np

    data = Path(path).read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"{path}: not a RIFF/WAVE file")
    pos, fmt, pcm = 12, None, None
    while pos + 8 <= len(data):
        cid, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            fmt = struct.unpack("<HHIIHH", body[:16])
        elif cid == b"data":
            pcm = body
            break
        pos += 8 + size + (size & 1)
    if fmt is None or pcm is None:
        raise ValueError(f"{path}: no fmt or data chunk")
    _tag, channels, rate, _bps, _align, bits = fmt
    if bits != 16:
        raise ValueError(f"{path}: {bits}-bit samples, only 16-bit PCM is read")
    n = len(pcm) // (2 * channels) * channels
    x = np.frombuffer(pcm[:n * 2], dtype="<i2").astype(np.float64)
    return x.reshape(-1, channels)[:, 0].copy(), rate


def write_wav(path: str | os.PathLike, samples: Any, rate: int) -> Path:
    """Mono 16-bit WAV; float samples in [-1, 1] are scaled, integers written as they are."""
    import wave

    import numpy as np

    x = np.asarray(samples)
    if x.dtype.kind == "f":
        x = np.clip(x * 32767.0, -32768, 32767)
    pcm = x.astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return Path(path)


# --------------------------------------------------------------------------- real-time tests

# Tests whose results depend on having the CPU when the media clock asks for it: speech
# quality (PESQ), recording that must keep up, loss recovery, sound devices. scripts/test.sh
# runs them alone, after the others have run on two workers.
REALTIME = ("media/", "devices/test_video_file.py", "devices/test_pyaudio_")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    root = Path(__file__).parent
    for item in items:
        where = Path(str(item.fspath)).relative_to(root).as_posix()
        if where.startswith(REALTIME):
            item.add_marker(pytest.mark.realtime)
