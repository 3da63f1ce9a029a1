#!/usr/bin/env python3
"""Soak benchmark: the softphone's memory, descriptors, CPU and jitter buffer over a long run.

1. **audio+video call**: ``softphone call`` -> ``softphone answer --auto`` on 127.0.0.1
   for ``--minutes`` (default 10), video ``pattern:`` into ``null:`` both ways. The audio
   source of both sides is a 440 Hz tone with a 40-ms gap every second (a WAV written
   here, looped by the ``file:`` source) and each side records what it plays into a WAV
   (``file:`` sink): the gaps are markers that show how the receive delay moves.
2. **100 concurrent calls** (``--calls``): one ``softphone answer --auto`` process (flood
   guard off in a scratch config) takes that many PCMU calls from
   scripts/bench/peers/minisip.py, which echoes every RTP packet back (another SSRC), so
   each call's jitter buffer runs. Held for ``--minutes``.

Every ``--interval`` seconds (default 10) each softphone process is sampled: VmRSS (MiB),
entries of /proc/PID/fd, CPU % of a core. After ``--warmup`` (default 60 s) a
least-squares line through RSS gives its slope in MiB per minute.
Pass: slope < 1 MiB/min and the fd count at the end equals the one after the warm-up.

Jitter buffer: ``--json`` emits no per-second figure of the buffer (only ``call_end``
has ``jitter_buffer_ms``, ``late``, ``concealed``). So the drift is measured from outside:

* marker delay (part 1): in each recorded WAV the gap onsets, one a second; the onset
  time minus the marker's number is the receive delay plus a constant. Its slope
  (ms/min) is the jitter-buffer drift as heard (target changes, frames stretched or
  dropped);
* playout pace (part 1): wall time since the call's start minus recorded seconds;
* packets (part 2): what the benchmark received from the softphone per interval against
  ``calls x 50/s``, and at the end each call's ``call_end`` figures.

``--plot FILE.png`` draws RSS and fds over time; ``--json`` prints one JSON object.
Every process is started here and stopped by its PID; the run is bounded by
``--max-time`` (default: twice the calls' time plus 4 minutes).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

from minisip import HOST, RtpHub, SipAgent, cpu_ticks, stop_pid, wait_for

ROOT = Path(__file__).resolve().parents[2]
TCK = os.sysconf("SC_CLK_TCK")
MARKER_RATE = 8000
MARKER_GAP_S = 0.04
MARKER_PERIOD_S = 1.0
PTIME_S = 0.02
STALL_STEP_MS = 60.0  # a marker delay step this large is a stall, not the buffer's one-frame steps
VIDEO = ["--video-source", "pattern:", "--video-sink", "null:"]
FLOOD_GUARD_OFF = "[sip]\nmax_requests_per_second=0\nmax_transactions=0\nmax_dialogs=0\n"


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def check(self, need: float, what: str) -> None:
        if self.left() < need:
            raise TimeoutError(f"--max-time reached before {what}")


# ------------------------------------------------------------------ processes


class Softphone:
    """``softphone --json ARGS``: its JSON lines go to a file (a pipe could block it)."""

    def __init__(self, python: str, args: list[str], work: Path, tag: str) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        self.tag = tag
        self.out = work / f"{tag}.jsonl"
        self.err = work / f"{tag}.err"
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.proc = subprocess.Popen([python, "-m", "softphone", "--json", *args], cwd=work, env=env,
                                         stdin=subprocess.DEVNULL, stdout=o, stderr=e)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def events(self, name: str | None = None) -> list[dict]:
        found = []
        for line in self.out.read_text(errors="replace").splitlines():
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if isinstance(ev, dict) and (name is None or ev.get("event") == name):
                found.append(ev)
        return found

    def wait_event(self, name: str, timeout: float, pred: Callable[[dict], bool] = lambda ev: True) -> dict:
        box: list[dict] = []

        def seen() -> bool:
            if self.proc.poll() is not None and not box:
                box.extend(ev for ev in self.events(name) if pred(ev))
                if not box:
                    raise RuntimeError(f"{self.tag} exited: " + self.err.read_text(errors="replace")[-800:])
            box.extend(ev for ev in self.events(name) if pred(ev))
            return bool(box)

        wait_for(seen, timeout, f"{self.tag}'s {name} event")
        return box[0]

    def listen_port(self) -> int:
        return int(self.wait_event("listening", 20, lambda ev: ev.get("transport") == "udp")["port"])

    def stop(self) -> int | None:
        return stop_pid(self.proc)


# ------------------------------------------------------------------ sampling


def proc_sample(pid: int) -> dict | None:
    """VmRSS in MiB, open descriptors and CPU ticks of a process (None once it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss_kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        ticks = cpu_ticks(pid)
    except (OSError, StopIteration, ValueError):
        return None
    return {"rss_mib": rss_kb / 1024, "fds": fds, "ticks": ticks}


def load_average() -> float | None:
    """The machine's 1-minute load average: how much else wanted the CPUs."""
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


class Sampler:
    """Samples named processes every ``interval`` seconds; ``extra()`` adds columns."""

    def __init__(self, pids: dict[str, int], interval: float, extra: Callable[[float], dict] | None = None) -> None:
        self.pids = pids
        self.interval = interval
        self.extra = extra
        self.rows: list[dict] = []
        self.t0 = time.monotonic()
        self._last: dict[str, tuple[int, float]] = {}
        self.take()

    def take(self) -> dict:
        now = time.monotonic()
        row: dict[str, Any] = {"t": round(now - self.t0, 2), "load": load_average()}
        for name, pid in self.pids.items():
            s = proc_sample(pid)
            if s is None:
                continue
            prev = self._last.get(name)
            cpu = None if prev is None else 100.0 * (s["ticks"] - prev[0]) / TCK / max(1e-3, now - prev[1])
            self._last[name] = (s["ticks"], now)
            row[name] = {"rss_mib": round(s["rss_mib"], 2), "fds": s["fds"],
                         "cpu_pct": None if cpu is None else round(cpu, 1)}
        if self.extra is not None:
            row.update(self.extra(now - self.t0))
        self.rows.append(row)
        return row

    def run_for(self, seconds: float, alive: Callable[[], bool]) -> None:
        end = self.t0 + seconds
        k = len(self.rows)
        while alive():
            due = self.t0 + k * self.interval
            if due > end + 1e-6:
                break
            time.sleep(max(0.0, due - time.monotonic()))
            self.take()
            k += 1


def fit_slope(ts: list[float], ys: list[float]) -> float | None:
    """Least-squares slope of y over t (per second); None under 3 points."""
    if len(ts) < 3:
        return None
    return float(np.polyfit(np.asarray(ts, dtype=float), np.asarray(ys, dtype=float), 1)[0])


def judge(rows: list[dict], name: str, warmup: float) -> dict:
    """RSS slope after the warm-up, fds first/after warm-up/last/max, mean CPU, and the verdicts."""
    pts = [(r["t"], r[name]) for r in rows if name in r]
    if not pts:
        return {"error": "no samples"}
    steady = [(t, s) for t, s in pts if t >= warmup] or pts[-1:]
    slope = fit_slope([t for t, _ in steady], [s["rss_mib"] for _, s in steady])
    slope_min = None if slope is None else round(slope * 60, 3)
    fds = [s["fds"] for _, s in pts]
    cpus = [s["cpu_pct"] for t, s in steady if s["cpu_pct"] is not None]
    res = {"samples": len(pts), "rss_first": pts[0][1]["rss_mib"], "rss_warm": steady[0][1]["rss_mib"],
           "rss_last": pts[-1][1]["rss_mib"], "rss_max": max(s["rss_mib"] for _, s in pts),
           "rss_slope_mib_per_min": slope_min, "fd_first": fds[0], "fd_warm": steady[0][1]["fds"],
           "fd_last": fds[-1], "fd_max": max(fds), "cpu_pct_mean": round(float(np.mean(cpus)), 1) if cpus else None}
    res["pass_rss"] = slope_min is not None and slope_min < 1.0
    res["pass_fd"] = res["fd_last"] == res["fd_warm"]
    return res


# ------------------------------------------------------------------ markers (jitter-buffer drift)


def write_marker_wav(path: Path) -> None:
    """One second of a 440 Hz tone whose first 40 ms are silent (the file source loops it)."""
    n = int(MARKER_PERIOD_S * MARKER_RATE)
    x = 0.5 * np.sin(2 * np.pi * 440 * np.arange(n) / MARKER_RATE)
    x[: int(MARKER_GAP_S * MARKER_RATE)] = 0.0
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(MARKER_RATE)
        w.writeframes((x * 32767).astype("<i2").tobytes())


def wav_seconds(path: Path) -> float | None:
    """Seconds recorded so far (the sink rewrites the header after every frame)."""
    try:
        with wave.open(str(path), "rb") as w:
            return w.getnframes() / w.getframerate()
    except (OSError, EOFError, wave.Error):
        return None


def gap_onsets(path: Path) -> tuple[np.ndarray, int]:
    """Times (s into the recording) where a silent gap of the marker signal starts."""
    with wave.open(str(path), "rb") as w:
        rate, channels = w.getframerate(), w.getnchannels()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float32)
    if channels > 1:
        x = x.reshape(-1, channels).mean(axis=1)
    block = rate // 1000  # 1 ms
    env = np.sqrt(np.mean(x[: len(x) // block * block].reshape(-1, block) ** 2, axis=1))
    loud = env > 0.2 * (np.median(env[env > 0]) if np.any(env > 0) else 1.0)
    onsets = []
    run_min = int(MARKER_GAP_S * 1000 * 0.6)
    i, n = 0, len(loud)
    while i < n:
        if loud[i]:
            i += 1
            continue
        j = i
        while j < n and not loud[j]:
            j += 1
        if run_min <= j - i <= 3 * MARKER_GAP_S * 1000 and i > 0:
            onsets.append(i / 1000.0)
        i = j
    return np.asarray(onsets), rate


def clean_delays(onsets: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Each marker's delay (ms, up to a constant), without the gaps that are not markers.

    A gap whose delay is more than 20 ms away from the median of its six neighbours is a
    silence the receive path made (a concealed or stretched frame), not a marker."""
    k = np.round((onsets - onsets[0]) / MARKER_PERIOD_S)
    delay = (onsets - onsets[0] - k * MARKER_PERIOD_S) * 1000
    keep = np.ones(len(delay), dtype=bool)
    for i in range(len(delay)):
        near = np.concatenate([delay[max(0, i - 3):i], delay[i + 1:i + 4]])
        if len(near) and abs(delay[i] - np.median(near)) > 20:
            keep[i] = False
    return onsets[keep], delay[keep], int((~keep).sum())


def delay_steps(ts: np.ndarray, delay: np.ndarray) -> list[list[float]]:
    """Where the delay moved by 10 ms or more from one marker to the next: [time s, change ms]."""
    d = np.diff(delay)
    return [[round(float(ts[i + 1]), 1), round(float(d[i]), 1)] for i in np.flatnonzero(np.abs(d) >= 10)]


def marker_delay(path: Path, warmup: float) -> dict:
    """Receive delay of each marker as heard, its slope after the warm-up, and its steps."""
    if not path.exists():
        return {"error": "no recording"}
    onsets, rate = gap_onsets(path)
    if len(onsets) < 5:
        return {"error": f"{len(onsets)} markers found"}
    ts, delay, odd = clean_delays(onsets)
    return {"expected": int(round((onsets[-1] - onsets[0]) / MARKER_PERIOD_S)) + 1, "other_gaps": odd, "rate": rate,
            **delay_figures(ts, delay, warmup)}


def delay_figures(ts: np.ndarray, delay: np.ndarray, warmup: float) -> dict:
    """Range, slope (ms/min) after the warm-up, the same without the stall jumps, and the steps."""
    steady = ts >= warmup
    if steady.sum() < 3:
        steady = np.ones(len(ts), dtype=bool)
    slope = fit_slope(list(ts[steady]), list(delay[steady]))
    # the same without the jumps of 3 frames or more (a stall of the machine or the process):
    # what the buffer does between them
    jumps = np.concatenate([[0.0], np.diff(delay)])
    jumps[np.abs(jumps) < STALL_STEP_MS] = 0.0
    between = fit_slope(list(ts[steady]), list((delay - np.cumsum(jumps))[steady]))
    d = delay[steady]
    return {"markers": len(ts), "delay_ms_warm": round(float(d[0]), 1),
            "delay_ms_min": round(float(d.min()), 1), "delay_ms_max": round(float(d.max()), 1),
            "delay_ms_last": round(float(delay[-1]), 1),
            "slope_ms_per_min": None if slope is None else round(slope * 60, 3),
            "slope_between_jumps_ms_per_min": None if between is None else round(between * 60, 3),
            "jumps": int((np.abs(jumps[steady]) > 0).sum()), "steps": delay_steps(ts, delay),
            "series": [[round(float(t), 2), round(float(v), 1)] for t, v in zip(ts, delay, strict=True)]}


# ------------------------------------------------------------------ part 1: one audio+video call


def common_args(rc: Path) -> list[str]:
    return ["-c", str(rc), "--bind", HOST, "--sip-port", "0", "--rtp-port", "0"]


def part_call(args: argparse.Namespace, work: Path, dl: Deadline) -> dict:
    seconds = args.minutes * 60
    dl.check(seconds + 30, "the audio+video call")
    marker = work / "marker.wav"
    write_marker_wav(marker)
    rc = work / "call.rc"
    rc.write_text("")
    codec = ["--audio-codec", args.audio_codec] if args.audio_codec else []
    rec = {"caller": work / "caller_rx.wav", "answerer": work / "answerer_rx.wav"}
    answerer = Softphone(args.python, [*common_args(rc), "answer", "--auto", "--delay", "0", *codec,
                                       "--audio-source", f"file: {marker}", "--audio-sink", f"file: {rec['answerer']}",
                                       *VIDEO], work, "call_answerer")
    caller = None
    try:
        uri = f"sip:soak@{HOST}:{answerer.listen_port()}"
        time.sleep(1.0)
        fd_idle = proc_sample(answerer.pid)
        caller = Softphone(args.python, [*common_args(rc), "call", uri, "--duration", str(seconds + 2),
                                         "--timeout", "10", *codec, "--audio-source", f"file: {marker}",
                                         "--audio-sink", f"file: {rec['caller']}", *VIDEO], work, "call_caller")
        caller.wait_event("state", 20, lambda ev: ev.get("state") == "answered")
        t_start = time.monotonic()

        def pace(_t: float) -> dict:
            out = {}
            for side, path in rec.items():
                secs = wav_seconds(path)
                if secs is not None:
                    out[f"{side}_lag_ms"] = round((time.monotonic() - t_start - secs) * 1000, 1)
            return out

        sampler = Sampler({"caller": caller.pid, "answerer": answerer.pid}, args.interval, pace)
        sampler.run_for(seconds, lambda: caller.proc.poll() is None and dl.left() > 20)
        summary = caller.wait_event("summary", 30)
        end = answerer.wait_event("call_end", 15, lambda ev: ev.get("call_id") == summary.get("call_id"))
        caller.proc.wait(10)
        time.sleep(2.0)
        fd_after = proc_sample(answerer.pid)
    finally:
        if caller is not None:
            caller.stop()
        answerer.stop()
    return {"rows": sampler.rows, "end": {"caller": stream_figures(summary), "answerer": stream_figures(end)},
            "answerer_idle_fds": {"before": fd_idle and fd_idle["fds"], "after": fd_after and fd_after["fds"]},
            "markers": {side: marker_delay(path, args.warmup) for side, path in rec.items()},
            "procs": ["caller", "answerer"]}


def stream_figures(summary: dict) -> dict:
    keys = ("codec", "tx_packets", "rx_packets", "lost", "late", "concealed", "jitter_ms", "jitter_buffer_ms",
            "frames_decoded", "fps")
    out = {"result": summary.get("result")}
    for kind in ("audio", "video"):
        s = summary.get(kind) or {}
        out[kind] = {k: s.get(k) for k in keys if k in s}
    return out


# ------------------------------------------------------------------ part 2: many calls


class ArrivalCounter:
    """Packets the benchmark got from the softphone per interval (it trims minisip's lists)."""

    def __init__(self, dialogs: list) -> None:
        self.dialogs = dialogs
        self._last_seq: dict[int, int] = {}
        self.total = 0
        self.gaps = 0

    def __call__(self, _t: float) -> dict:
        held = []
        for d in self.dialogs:
            arr, d.stream.arrivals = d.stream.arrivals, []
            held.append(arr)
        time.sleep(0.005)  # an append the hub thread had begun lands in the old list first
        got = 0
        for i, arr in enumerate(held):
            got += len(arr)
            for a in arr:
                last = self._last_seq.get(i)
                if last is not None and (a[1] - last) & 0xFFFF != 1:
                    self.gaps += 1
                self._last_seq[i] = a[1]
        self.total += got
        return {"rx_packets": got}


def place_calls(agent: SipAgent, port: int, n: int, dl: Deadline) -> list:
    dialogs = []
    for _ in range(n):
        dialogs.append(agent.call(f"sip:soak@{HOST}:{port}", (HOST, port), mode="echo"))
        time.sleep(0.02)
    try:
        wait_for(lambda: all(d.state != "calling" for d in dialogs), min(30.0, dl.left()), "answers")
    except RuntimeError:
        pass
    return dialogs


def part_many(args: argparse.Namespace, work: Path, dl: Deadline) -> dict:
    seconds = args.minutes * 60
    dl.check(seconds + 60, "the many-call soak")
    rc = work / "many.rc"
    rc.write_text(FLOOD_GUARD_OFF)
    answerer = Softphone(args.python, [*common_args(rc), "answer", "--auto", "--delay", "0", "--max-calls", "1000",
                                       "--no-video", "--audio-codec", "PCMU", "--audio-source", "tone: 440",
                                       "--audio-sink", "null:"], work, "many_answerer")
    hub = RtpHub()
    agent = SipAgent(hub, codec="PCMU")
    res: dict = {"procs": ["answerer"]}
    try:
        port = answerer.listen_port()
        time.sleep(1.0)
        idle_before = proc_sample(answerer.pid)
        dialogs = place_calls(agent, port, args.calls, dl)
        up = [d for d in dialogs if d.state == "confirmed"]
        res["answered"] = len(up)
        res["failed_codes"] = sorted({d.code for d in dialogs if d.state != "confirmed"})
        counter = ArrivalCounter(up)
        sampler = Sampler({"answerer": answerer.pid}, args.interval, counter)
        sampler.run_for(seconds, lambda: answerer.proc.poll() is None and dl.left() > 30)
        res["rows"] = sampler.rows
        res["rx"] = {"packets": counter.total, "seq_gaps": counter.gaps,
                     "expected_per_interval": round(len(up) * args.interval / PTIME_S)}
        for d in dialogs:
            agent.hangup(d)
        wait_for(lambda: len(answerer.events("call_end")) >= len(up) or answerer.proc.poll() is not None,
                 min(30.0, max(1.0, dl.left())), "the calls' ends")
        time.sleep(2.0)
        idle_after = proc_sample(answerer.pid)
        res["answerer_idle_fds"] = {"before": idle_before and idle_before["fds"],
                                    "after": idle_after and idle_after["fds"]}
        res["ends"] = many_ends(answerer.events("call_end"), seconds)
    finally:
        agent.close()
        hub.close()
        answerer.stop()
    return res


def many_ends(ends: list[dict], seconds: float) -> dict:
    """The calls' ``call_end`` audio figures: totals, and the spread of the buffer's target."""
    audio = [e.get("audio") or {} for e in ends]
    total = {k: sum(int(a.get(k) or 0) for a in audio) for k in ("rx_packets", "lost", "late", "concealed")}
    buf = [float(a["jitter_buffer_ms"]) for a in audio if a.get("jitter_buffer_ms") is not None]
    return {"calls": len(ends), **total,
            "rx_expected_about": round(len(ends) * seconds / PTIME_S),
            "jitter_buffer_ms_min": min(buf) if buf else None, "jitter_buffer_ms_max": max(buf) if buf else None}


# ------------------------------------------------------------------ report


def table(part: dict) -> list[str]:
    procs = part["procs"]
    extra = [k for k in ("caller_lag_ms", "answerer_lag_ms", "rx_packets", "load") if any(k in r for r in part["rows"])]
    head = f"{'t (s)':>7}" + "".join(f"{p[:8] + ' RSS':>14}{'fds':>5}{'CPU%':>7}" for p in procs)
    head += "".join(f"{k:>{len(k) + 2}}" for k in extra)
    lines = [head]
    for r in part["rows"]:
        line = f"{r['t']:7.1f}"
        for p in procs:
            s = r.get(p)
            cpu = "-" if not s or s["cpu_pct"] is None else f"{s['cpu_pct']:.1f}"
            line += f"{s['rss_mib']:14.1f}{s['fds']:5d}{cpu:>7}" if s else f"{'gone':>26}"
        line += "".join(f"{r.get(k, '-')!s:>{len(k) + 2}}" for k in extra)
        lines.append(line)
    return lines


def verdict_lines(part: dict) -> list[str]:
    lines = []
    for p in part["procs"]:
        j = part["judge"][p]
        if "error" in j:
            lines.append(f"  {p}: {j['error']}")
            continue
        lines.append(f"  {p}: RSS {j['rss_first']:.1f} -> {j['rss_warm']:.1f} (after warm-up) -> {j['rss_last']:.1f}"
                     f" MiB, max {j['rss_max']:.1f}; slope {j['rss_slope_mib_per_min']} MiB/min "
                     f"[{'PASS' if j['pass_rss'] else 'FAIL'} < 1]; fds first/warm/last/max {j['fd_first']}/"
                     f"{j['fd_warm']}/{j['fd_last']}/{j['fd_max']} [{'PASS' if j['pass_fd'] else 'FAIL'} last == "
                     f"warm]; CPU mean {j['cpu_pct_mean']} %")
    idle = part.get("answerer_idle_fds")
    if idle:
        lines.append(f"  answerer fds when idle: before the calls {idle['before']}, after they ended {idle['after']}")
    return lines


def report_call(part: dict) -> list[str]:
    lines = ["", "part 1: one softphone -> softphone audio+video call", *table(part), *verdict_lines(part)]
    for side, m in part["markers"].items():
        if "error" in m:
            lines.append(f"  {side} marker delay: {m['error']}")
            continue
        lines.append(f"  {side} marker delay (jitter-buffer drift as heard): {m['markers']}/{m['expected']} markers "
                     f"(+{m['other_gaps']} other gaps), after warm-up {m['delay_ms_min']}..{m['delay_ms_max']} ms "
                     f"(warm {m['delay_ms_warm']}, last {m['delay_ms_last']}), slope {m['slope_ms_per_min']} ms/min "
                     f"[{'PASS' if drift_ok(m) else 'FAIL'} |slope| < 1]")
        big = [st for st in m["steps"] if abs(st[1]) >= STALL_STEP_MS]
        small = [st[1] for st in m["steps"] if abs(st[1]) < STALL_STEP_MS]
        lines.append(f"    without its {m['jumps']} jumps of >= {STALL_STEP_MS:.0f} ms after warm-up: "
                     f"{m['slope_between_jumps_ms_per_min']} ms/min; jumps [t s, ms] {big}; smaller steps: "
                     f"{sum(1 for v in small if v > 0)} up, {sum(1 for v in small if v < 0)} down "
                     f"(net {sum(small):+.0f} ms)")
    for side, e in part["end"].items():
        lines.append(f"  {side} end: {e['result']}; audio {e['audio']}; video {e['video']}")
    return lines


def drift_ok(m: dict) -> bool:
    return m.get("slope_ms_per_min") is not None and abs(m["slope_ms_per_min"]) < 1.0


def report_many(part: dict, calls: int) -> list[str]:
    lines = ["", f"part 2: {calls} concurrent PCMU calls into one softphone answer --auto "
             f"({part.get('answered', 0)} answered, failed codes {part.get('failed_codes')})",
             *table(part), *verdict_lines(part)]
    rx = part.get("rx", {})
    lines.append(f"  RTP from the softphone: {rx.get('packets')} packets, expected {rx.get('expected_per_interval')} "
                 f"per interval, sequence gaps {rx.get('seq_gaps')}")
    e = part.get("ends", {})
    lines.append(f"  call_end audio over {e.get('calls')} calls: rx {e.get('rx_packets')} (about "
                 f"{e.get('rx_expected_about')} sent), lost {e.get('lost')}, late {e.get('late')}, concealed "
                 f"{e.get('concealed')}, jitter_buffer_ms {e.get('jitter_buffer_ms_min')}.."
                 f"{e.get('jitter_buffer_ms_max')}")
    return lines


def report_text(out: dict) -> str:
    p = out["params"]
    lines = [f"soak on {HOST}: {p['minutes']} min per part, sample every {p['interval']} s, "
             f"warm-up {p['warmup']} s"]
    for key, render in (("call", report_call), ("many", lambda part: report_many(part, p["calls"]))):
        part = out["parts"].get(key)
        if part is None:
            continue
        lines += ["", f"{key}: error: {part['error']}"] if "error" in part else render(part)
    lines.append(f"\nwall time {out['wall_s']} s")
    return "\n".join(lines)


def plot(out: dict, path: Path) -> None:
    """RSS, fds and the media figures over time: a column per part."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    parts = [(k, v) for k, v in out["parts"].items() if "rows" in v]
    fig, axes = plt.subplots(3, max(1, len(parts)), figsize=(6 * max(1, len(parts)), 10), squeeze=False)
    for col, (key, part) in enumerate(parts):
        for p in part["procs"]:
            rows = [r for r in part["rows"] if p in r]
            ts = [r["t"] / 60 for r in rows]
            axes[0][col].plot(ts, [r[p]["rss_mib"] for r in rows], label=p)
            axes[1][col].plot(ts, [r[p]["fds"] for r in rows], label=p)
        axes[0][col].set_title({"call": "audio+video call", "many": f"{out['params']['calls']} calls"}[key])
        axes[0][col].set_ylabel("RSS (MiB)")
        axes[1][col].set_ylabel("open fds")
        plot_media(axes[2][col], key, part)
        axes[2][col].set_xlabel("minutes")
        for ax in axes[:, col]:
            ax.axvline(out["params"]["warmup"] / 60, color="grey", linestyle=":")
            ax.legend(fontsize="small")
            ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_media(ax: Any, key: str, part: dict) -> None:
    """Part 1: marker delay and playout lag (ms); part 2: RTP packets per interval."""
    if key == "call":
        for side, m in part.get("markers", {}).items():
            if "series" in m:
                ax.plot([t / 60 for t, _ in m["series"]], [v for _, v in m["series"]], label=f"{side} marker delay")
        for side in ("caller", "answerer"):
            rows = [r for r in part["rows"] if f"{side}_lag_ms" in r]
            ax.plot([r["t"] / 60 for r in rows], [r[f"{side}_lag_ms"] for r in rows], linestyle="--",
                    label=f"{side} playout lag")
        ax.set_ylabel("ms")
    else:
        rows = part["rows"][1:]
        ax.plot([r["t"] / 60 for r in rows], [r.get("rx_packets", 0) for r in rows], label="RTP packets received")
        expected = part.get("rx", {}).get("expected_per_interval")
        if expected:
            ax.axhline(expected, color="black", linestyle="--", label="expected")
        ax.set_ylabel("packets per interval")


# ------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="length of each part")
    ap.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds left out of the fits")
    ap.add_argument("--calls", type=int, default=100, help="concurrent calls of part 2")
    ap.add_argument("--parts", default="call,many", help="comma list of call, many")
    ap.add_argument("--audio-codec", default=None, help="audio codec of part 1 (default: negotiated)")
    ap.add_argument("--plot", type=Path, help="draw RSS and fds over time into this PNG")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--max-time", type=float, default=None, help="bound on the whole run (s)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder (logs, recordings)")
    ap.add_argument("--python", default=sys.executable)
    args = ap.parse_args(argv)
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if args.max_time is None:
        args.max_time = len(parts) * (args.minutes * 60 + 60) + 120
    if args.warmup >= args.minutes * 60:
        args.warmup = args.minutes * 60 / 3
    args.part_list = parts
    return args


def run_parts(args: argparse.Namespace, work: Path, out: dict) -> None:
    dl = Deadline(args.max_time)
    runners = {"call": part_call, "many": part_many}
    for key in args.part_list:
        try:
            part = runners[key](args, work, dl)
        except (RuntimeError, TimeoutError, OSError) as exc:
            out["parts"][key] = {"error": str(exc)[-600:]}
            continue
        part["judge"] = {p: judge(part["rows"], p, args.warmup) for p in part["procs"]}
        out["parts"][key] = part


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="softphone-bench-soak-"))
    out: dict = {"params": {k: getattr(args, k) for k in ("minutes", "interval", "warmup", "calls", "audio_codec",
                                                           "max_time")}, "parts": {}}

    def on_signal(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        run_parts(args, work, out)
    finally:
        out["wall_s"] = round(time.monotonic() - t0, 1)
        if args.keep:
            out["workdir"] = str(work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.plot:
        plot(out, args.plot)
    print(json.dumps(out) if args.json else report_text(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
