#!/usr/bin/env python3
"""Call-rate capacity under media load: the softphone's auto-answer against baresip's.

SIPp places 1-s calls at a fixed rate for ``--seconds`` (default 10) with
tests/interop/scenarios/uac_av.xml: an audio+video offer; the answerer declines the
video and sends a 440 Hz PCMU tone for the whole call.  Rates are stepped up
(``--rates``, default 100..400 calls/s) with ``--runs`` runs per rate (default 2); a
peer stops at the first rate that failed in every run.  A rate is held when every
run had 0 failed calls (failed = created - successful, last ``-trace_stat`` row) and
none shed: a call the answerer refused at once with 503 (the scenario ACKs it and logs
``SHED``; SIPp counts it successful) is counted apart from the timeouts.

Every run starts the answering peer fresh (one process for all the calls):

* softphone: ``softphone --json -c RC --bind 127.0.0.1 --sip-port P --rtp-port 0
  answer --auto --delay 0 --max-calls 100000 --no-video --audio-codec PCMU
  --audio-source "tone: 440" --audio-sink null:``, RC turning the flood guard off
  (``[misc] event_loop=auto``: uvloop when it is installed);
* softphone-asyncio (``--peers``): the same on asyncio's own loop (``event_loop=asyncio``);
* baresip: scripts/bench/peers/answerers.py (audio modules only, ``ausine`` 440 Hz,
  ``aubridge`` as a null player, ``call_max_calls 1000``; the video m-line is refused).

Per run: calls ok/shed/failed, INVITE->200 p50/p99 (``<gettimeofday>`` stamps of the
scenario), the peer's CPU over the SIPp run (utime + stime from /proc/PID/stat, % of
one core), its VmHWM at the end, its idle VmRSS, and its RSS per call: (VmRSS at the
plateau of concurrent calls - VmRSS after a few warm-up calls) / concurrent calls,
from VmRSS sampled every 0.2 s and SIPp's CurrentCall column (``-fd 1``).
Also shown: SIPp's own CPU and the host's load average before each run (other work on
the machine moves every figure). Each run starts once the host's CPU has been 90 % idle
over two 1-s windows in a row (at most 30 s of waiting; the idle share is shown): a run
right after a saturated one otherwise measures the previous peer's calls draining too.
``--profile`` records the softphone with py-spy during the first run of each rate.
``--marginal RATE:MS1,MS2`` also measures the RSS each further concurrent call costs: two
runs at one rate with calls of two lengths, the slope of plateau VmRSS over concurrent calls.
Everything runs on 127.0.0.1; every process is stopped by its PID; the whole run is
bounded by ``--max-time``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "peers"))

from answerers import Answerer, BaresipAnswerer, baresip_available  # noqa: E402
from call_setup import SETUP_RE, Deadline, free_port, percentile, stop_pid, wait_for  # noqa: E402
from minisip import stop_pid as signal_pid  # noqa: E402

ROOT = HERE.parents[1]
SCENARIO = ROOT / "tests" / "interop" / "scenarios" / "uac_av.xml"
HOST = "127.0.0.1"
TCK = os.sysconf("SC_CLK_TCK")
CALL_MS = 1000
SAMPLE_S = 0.2
PLATEAU = 0.9          # stat rows with CurrentCall >= 90 % of its maximum make the plateau
QUIET_IDLE = 0.9       # a run starts once the host's CPU is this idle ...
QUIET_MAX_S = 30.0     # ... or after this long
Json = dict[str, Any]
SOFTPHONE_RC = ("[sip]\n"
                "# SIPp calls from one address: the flood guard is off, the load is the point\n"
                "max_requests_per_second=0\nmax_transactions=0\nmax_dialogs=0\n")


# ------------------------------------------------------------------ /proc


def proc_kib(pid: int, key: str) -> int | None:
    """A kB field of /proc/PID/status (VmRSS, VmHWM), or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of every thread of a process, in clock ticks."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(parts[11]) + int(parts[12])


def load_average() -> float | None:
    """The host's 1-min load average: other work on the machine shows here."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def cpu_idle_share(seconds: float) -> float | None:
    """The share of the host's CPU time that was idle over ``seconds`` (all cores, /proc/stat)."""
    def sample() -> tuple[int, int] | None:
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        except (OSError, ValueError):
            return None
        return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields)  # idle + iowait, all

    a = sample()
    time.sleep(seconds)
    b = sample()
    if a is None or b is None or b[1] == a[1]:
        return None
    return (b[0] - a[0]) / (b[1] - a[1])


def wait_quiet(limit_s: float = QUIET_MAX_S) -> float | None:
    """Wait (at most ``limit_s``) until the host has been QUIET_IDLE idle over two 1-s windows in
    a row: a run that starts while a previous peer's calls still drain (or anything else runs)
    measures that too. Returns the last window's idle share."""
    deadline = time.monotonic() + limit_s
    quiet = 0
    idle = None
    while time.monotonic() < deadline and quiet < 2:
        idle = cpu_idle_share(1.0)
        quiet = quiet + 1 if idle is not None and idle >= QUIET_IDLE else 0
    return idle


def mib(kib: float | None) -> float | None:
    return None if kib is None else round(kib / 1024, 1)


# ------------------------------------------------------------------ answering peers


class LoadSoftphone(Answerer):
    """``softphone answer --auto`` with the flood guard off and a tone on every call."""

    name = "softphone"

    def __init__(self, work: Path, python: str, tag: str, event_loop: str = "auto") -> None:
        rc = work / f"softphone-{event_loop}.rc"
        rc.write_text(SOFTPHONE_RC + f"[misc]\nevent_loop={event_loop}\n")
        self.out = work / f"{tag}.jsonl"
        self.err = work / f"{tag}.err"
        self.port = free_port()
        cmd = [python, "-m", "softphone", "--json", "-c", str(rc), "--bind", HOST,
               "--sip-port", str(self.port), "--rtp-port", "0",
               "answer", "--auto", "--delay", "0", "--max-calls", "100000", "--no-video",
               "--audio-codec", "PCMU", "--audio-source", "tone: 440", "--audio-sink", "null:"]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        # stdout to a file: thousands of events must never block the answerer on a pipe
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                         env=env, cwd=work)
        wait_for(self._listening, 20, "the softphone's listening event")

    def _listening(self) -> bool:
        self._check(self.err)
        return bool('"event": "listening"' in self.out.read_text(errors="replace"))


def start_peer(name: str, work: Path, tag: str, python: str, max_time: float) -> Answerer:
    if name == "softphone":
        return LoadSoftphone(work, python, tag)  # event_loop=auto: uvloop when it is installed
    if name == "softphone-asyncio":
        return LoadSoftphone(work, python, tag, event_loop="asyncio")
    if name == "baresip":
        return BaresipAnswerer(work, max_time, codec="PCMU", tag=tag)
    raise SystemExit(f"unknown peer {name!r} (softphone, softphone-asyncio, baresip)")


# ------------------------------------------------------------------ SIPp


@dataclass
class SippRun:
    """One SIPp run and what was sampled of the peer meanwhile."""

    rc: int | None = None
    wall_s: float = 0.0
    cpu_pct: float | None = None    # SIPp's own CPU, % of one core
    created: int = 0
    ok: int = 0        # answered: successful calls less the shed ones
    shed: int = 0      # refused at once with 503 (the scenario's SHED lines)
    causes: dict[str, int] = field(default_factory=dict)   # non-zero Failed*(C) counters
    stat: list[tuple[float, int]] = field(default_factory=list)   # (epoch s, CurrentCall)
    rss: list[tuple[float, int]] = field(default_factory=list)    # (epoch s, VmRSS kB)
    setup_ms: list[float] = field(default_factory=list)


def sipp_cmd(work: Path, tag: str, port: int, calls: int, rate: int, call_ms: int,
             timeout_s: int, recv_timeout_ms: int) -> list[str]:
    return ["sipp", "-sf", str(SCENARIO), f"{HOST}:{port}", "-s", "bench",
            "-i", HOST, "-bind_local", "-ci", HOST, "-mi", HOST, "-nostdin",
            "-p", str(free_port()), "-mp", str(free_port(4)), "-cp", str(free_port()),
            "-m", str(calls), "-r", str(rate), "-l", "5000", "-d", str(call_ms),
            "-recv_timeout", str(recv_timeout_ms), "-timeout", str(timeout_s),
            "-trace_stat", "-stf", str(work / f"{tag}_stat.csv"), "-fd", "1",
            "-trace_logs", "-log_file", str(work / f"{tag}_logs.log"),
            "-trace_err", "-error_file", str(work / f"{tag}_errors.log")]


def run_sipp(work: Path, tag: str, pid: int, cmd: list[str], timeout_s: int) -> SippRun:
    """Run SIPp to its end (bounded), sampling the peer's VmRSS every 0.2 s."""
    run = SippRun()
    t0 = time.monotonic()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(work / f"{tag}_screen.out", "wb") as out:
        proc = subprocess.Popen(cmd, cwd=work, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT)
        try:
            while proc.poll() is None and time.monotonic() - t0 < timeout_s + 10:
                kib = proc_kib(pid, "VmRSS")
                if kib is not None:
                    run.rss.append((time.time(), kib))
                time.sleep(SAMPLE_S)
        finally:
            run.rc = stop_pid(proc, 3) if proc.poll() is None else proc.returncode
    run.wall_s = round(time.monotonic() - t0, 2)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
    run.cpu_pct = round(100.0 * used / run.wall_s, 1) if run.wall_s else None
    read_stat(work / f"{tag}_stat.csv", run)
    logs = work / f"{tag}_logs.log"
    run.setup_ms = read_setup(logs)
    run.shed = len(SHED_RE.findall(logs.read_text(errors="replace"))) if logs.exists() else 0
    run.ok = max(0, run.ok - run.shed)  # SIPp counts a call refused with 503 (and ACKed) as successful
    return run


def read_stat(path: Path, run: SippRun) -> None:
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter=";"))
    for r in rows:
        try:
            when = float(r["CurrentTime"].split("\t")[-1])
            run.stat.append((when, int(r["CurrentCall"])))
        except (KeyError, ValueError, AttributeError):
            continue
    if rows:
        run.created = int(rows[-1].get("OutgoingCall(C)") or 0)
        run.ok = int(rows[-1].get("SuccessfulCall(C)") or 0)
        for k, v in rows[-1].items():
            if k and k.startswith("Failed") and k.endswith("(C)") and k != "FailedCall(C)" and v not in ("", "0"):
                run.causes[k[6:-3]] = int(v)


SHED_RE = re.compile(r"SHED call=\d+")


def read_setup(path: Path) -> list[float]:
    """INVITE->200 in ms per answered call, from the scenario's SETUP log lines."""
    if not path.exists():
        return []
    out = []
    for m in SETUP_RE.finditer(path.read_text(errors="replace")):
        t_inv = float(m.group(2)) + float(m.group(3)) / 1e6
        t_ok = float(m.group(4)) + float(m.group(5)) / 1e6
        out.append((t_ok - t_inv) * 1000.0)
    return out


def plateau(run: SippRun) -> tuple[float | None, float | None]:
    """(median VmRSS kB, median CurrentCall) over the rows near the most concurrent calls."""
    if not run.stat or not run.rss:
        return None, None
    top = max(c for _, c in run.stat)
    if top <= 0:
        return None, None
    rows = [(t, c) for t, c in run.stat if c >= PLATEAU * top]
    lo, hi = rows[0][0] - 0.5, rows[-1][0] + 0.5
    rss = [k for t, k in run.rss if lo <= t <= hi]
    if not rss:
        return None, None
    return statistics.median(rss), float(statistics.median(c for _, c in rows))


# ------------------------------------------------------------------ profiling


def start_profile(pid: int, seconds: int, path: Path, fmt: str) -> subprocess.Popen[bytes] | None:
    """py-spy on the softphone for the SIPp run, when py-spy is installed; else nothing."""
    exe = Path(sys.executable).parent / "py-spy"
    spy = str(exe) if exe.exists() else shutil.which("py-spy")
    if spy is None:
        return None
    cmd = [spy, "record", "-o", str(path), "--pid", str(pid), "-d", str(seconds),
           "--format", fmt]
    with open(path.with_suffix(".log"), "wb") as log:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)


def end_profile(spy: subprocess.Popen[bytes] | None, path: Path) -> str | None:
    if spy is None:
        return None
    try:
        spy.wait(20)
    except subprocess.TimeoutExpired:
        signal_pid(spy, 5, signal.SIGINT)  # py-spy writes what it has on SIGINT
    return str(path) if path.exists() else None


# ------------------------------------------------------------------ one run, one peer


def warm_up(work: Path, tag: str, peer: Answerer, calls: int) -> None:
    """Calls before the measured run, 1 s long at 10/s, so that up to ``calls`` are up at once:
    lazy imports and first-call caches land here, also what a peer loads only once several
    calls are up (the softphone loads numpy, about 15 MiB, at its 8th live G.711 encoder)."""
    if calls <= 0:
        return
    cmd = sipp_cmd(work, tag + "_warm", peer.port, calls, 10, CALL_MS, 20, 4000)
    run_sipp(work, tag + "_warm", peer.proc.pid, cmd, 20)


def one_run(name: str, rate: int, index: int, work: Path, args: argparse.Namespace,
            profile: bool, call_ms: int = CALL_MS) -> Json:
    tag = f"{name}_{rate}_{index}" + ("" if call_ms == CALL_MS else f"_{call_ms}ms")
    limit = args.seconds + call_ms / 1000 + args.recv_timeout + 10
    waited = time.monotonic()
    idle_before = wait_quiet()
    waited = time.monotonic() - waited
    peer = start_peer(name, work, tag, args.python, limit + 60)
    pid = peer.proc.pid
    spy: subprocess.Popen[bytes] | None = None
    try:
        time.sleep(0.5)
        idle = proc_kib(pid, "VmRSS")
        warm_up(work, tag, peer, args.warmup)
        time.sleep(0.3)
        base = proc_kib(pid, "VmRSS")
        load = load_average()
        cmd = sipp_cmd(work, tag, peer.port, rate * args.seconds, rate, call_ms, int(limit),
                       int(args.recv_timeout * 1000))
        spy_path = work / f"{tag}.{'svg' if args.profile_format == 'flamegraph' else 'json'}"
        spy = start_profile(pid, args.seconds, spy_path, args.profile_format) if profile else None
        c0, w0 = cpu_ticks(pid), time.monotonic()
        sipp = run_sipp(work, tag, pid, cmd, int(limit))
        c1, w1 = cpu_ticks(pid), time.monotonic()
        hwm = proc_kib(pid, "VmHWM")
        prof = end_profile(spy, spy_path)
        alive = peer.alive()
    finally:
        if spy is not None and spy.poll() is None:
            signal_pid(spy, 5, signal.SIGINT)
        code = peer.stop()
    out = summarize_run(rate, index, sipp, idle, base, hwm, (c0, c1, w1 - w0), alive, code, prof)
    out["load_avg_before"] = load
    out["host_idle_before"] = rnd(idle_before, 3)
    out["quiet_wait_s"] = round(waited, 1)
    out["call_ms"] = call_ms
    return out


def summarize_run(rate: int, index: int, sipp: SippRun, idle: int | None, base: int | None,
                  hwm: int | None, cpu: tuple[int | None, int | None, float], alive: bool, code: int | None,
                  prof: str | None) -> Json:
    c0, c1, wall = cpu
    rss_top, conc = plateau(sipp)
    per_call = None
    if rss_top is not None and base is not None and conc:
        per_call = round((rss_top - base) / conc, 1)
    t = sipp.setup_ms
    out = {"rate": rate, "run": index, "calls": sipp.created, "ok": sipp.ok, "shed": sipp.shed,
           "failed": sipp.created - sipp.ok - sipp.shed, "fail_causes": sipp.causes,
           "sipp_exit": sipp.rc, "wall_s": sipp.wall_s, "sipp_cpu_pct": sipp.cpu_pct,
           "setup_p50_ms": rnd(percentile(t, 50)), "setup_p99_ms": rnd(percentile(t, 99)),
           "cpu_pct": round(100.0 * (c1 - c0) / TCK / wall, 1) if c0 is not None and c1 is not None else None,
           "idle_rss_mib": mib(idle), "base_rss_mib": mib(base), "vmhwm_mib": mib(hwm),
           "plateau_rss_mib": mib(rss_top), "concurrent_calls": rnd(conc, 1),
           "rss_per_call_kib": per_call, "alive_after": alive, "exit_code": code}
    if prof:
        out["profile"] = prof
    return out


def rnd(v: float | None, nd: int = 2) -> float | None:
    return None if v is None else round(v, nd)


def held(run: Json, expected: int) -> bool:
    return bool(run["failed"] == 0 and run["calls"] == expected and run["ok"] == expected)


def rate_summary(rate: int, runs: list[Json], setups: list[float], expected: int) -> Json:
    def med(key: str) -> float | None:
        vals = [r[key] for r in runs if r.get(key) is not None]
        return rnd(statistics.median(vals), 1) if vals else None

    hwm = [r["vmhwm_mib"] for r in runs if r["vmhwm_mib"] is not None]
    return {"rate": rate, "held": all(held(r, expected) for r in runs),
            "failed_per_run": [r["failed"] for r in runs], "shed_per_run": [r["shed"] for r in runs],
            "setup_p50_ms": rnd(percentile(setups, 50)), "setup_p99_ms": rnd(percentile(setups, 99)),
            "cpu_pct": med("cpu_pct"), "vmhwm_mib": max(hwm) if hwm else None,
            "rss_per_call_kib": med("rss_per_call_kib"), "concurrent_calls": med("concurrent_calls"),
            "runs": runs}


def bench_peer(name: str, work: Path, args: argparse.Namespace, share: Deadline) -> Json:
    res: Json = {"peer": name, "rates": []}
    best = None
    broken = False
    for rate in args.rates:
        expected = rate * args.seconds
        runs: list[Json] = []
        setups: list[float] = []
        for index in range(1, args.runs + 1):
            if share.left() < args.seconds + CALL_MS / 1000 + args.recv_timeout + 25:
                res["stopped"] = f"time budget before rate {rate} run {index}"
                break
            run = one_run(name, rate, index, work, args, args.profile and index == 1)
            setups.extend(read_setup(work / f"{name}_{rate}_{index}_logs.log"))
            runs.append(run)
            print(f"  {name} rate {rate} run {index}: {run['ok']}/{run['calls']} ok, "
                  f"p99 {run['setup_p99_ms']} ms, cpu {run['cpu_pct']} %", file=sys.stderr)
        if not runs:
            break
        summary = rate_summary(rate, runs, setups, expected)
        res["rates"].append(summary)
        if summary["held"] and not broken and len(runs) == args.runs:
            best = rate
        broken = broken or not summary["held"]
        if all(not held(r, expected) for r in runs) or "stopped" in res:
            break
    res["max_rate_held"] = best
    idle = [r["idle_rss_mib"] for s in res["rates"] for r in s["runs"] if r["idle_rss_mib"]]
    res["idle_rss_mib"] = rnd(statistics.median(idle), 1) if idle else None
    return res


def marginal_memory(name: str, work: Path, args: argparse.Namespace, share: Deadline) -> Json:
    """RSS for each further concurrent call: two runs at one rate whose calls last MS1 and MS2,
    so that both carry the same per-second load (transactions kept for Timer J and L, ended
    calls kept for a while) and the same libraries, and differ only in how many calls are up
    at once. The slope of plateau VmRSS over concurrent calls is what one more call costs;
    the per-call figure of a rate run also spreads a library loaded mid-run (numpy for
    G.711 from the 8th call on) and the per-second state over the calls."""
    rate, lengths = args.marginal
    res: Json = {"peer": name, "rate": rate, "runs": []}
    for call_ms in lengths:
        if share.left() < args.seconds + call_ms / 1000 + args.recv_timeout + 25:
            res["stopped"] = f"time budget before the {call_ms}-ms calls"
            return res
        run = one_run(name, rate, 1, work, args, False, call_ms)
        print(f"  {name} marginal {rate} calls/s x {call_ms} ms: {run['ok']}/{run['calls']} ok, "
              f"{run['concurrent_calls']} concurrent, plateau {run['plateau_rss_mib']} MiB", file=sys.stderr)
        res["runs"].append(run)
    (a, b) = res["runs"]
    res["failed"] = a["failed"] + b["failed"]
    if a["plateau_rss_mib"] is not None and b["plateau_rss_mib"] is not None and \
            a["concurrent_calls"] and b["concurrent_calls"] and b["concurrent_calls"] != a["concurrent_calls"]:
        res["kib_per_concurrent_call"] = round(
            (b["plateau_rss_mib"] - a["plateau_rss_mib"]) * 1024 / (b["concurrent_calls"] - a["concurrent_calls"]), 1)
    return res


def marginal_lines(m: Json) -> list[str]:
    if "runs" not in m or len(m["runs"]) < 2:
        return [f"{m['peer']}: RSS per further concurrent call: {m.get('stopped') or m.get('error')}"]
    parts = ", ".join(f"{r['call_ms']} ms calls: {r['concurrent_calls']} concurrent, plateau "
                      f"{r['plateau_rss_mib']} MiB, {r['failed']} failed" for r in m["runs"])
    return [f"{m['peer']}: RSS per further concurrent call at {m['rate']} calls/s: "
            f"{m.get('kib_per_concurrent_call')} KiB ({parts})"]


# ------------------------------------------------------------------ report


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 2)


def ratios(sp: Json, bs: Json) -> Json:
    """softphone/baresip per rate both ran, and for idle RSS and the highest common held rate."""
    by_rate = {s["rate"]: s for s in bs.get("rates", [])}
    per_rate = []
    for s in sp.get("rates", []):
        b = by_rate.get(s["rate"])
        if b is None:
            continue
        per_rate.append({"rate": s["rate"],
                         **{k: ratio(s[k], b[k]) for k in ("setup_p99_ms", "vmhwm_mib",
                                                           "rss_per_call_kib", "cpu_pct")}})
    out: Json = {"per_rate": per_rate,
                 "idle_rss": ratio(sp.get("idle_rss_mib"), bs.get("idle_rss_mib")),
                 "max_rate_held": ratio(sp.get("max_rate_held"), bs.get("max_rate_held"))}
    common = [r for r in (sp.get("max_rate_held"), bs.get("max_rate_held")) if r]
    if len(common) == 2:
        top = next((x for x in per_rate if x["rate"] == min(common)), None)
        if top:
            out["at_common_held_rate"] = top
    return out


def fmt(v: object, width: int, nd: int = 1) -> str:
    if isinstance(v, float):
        v = f"{v:.{nd}f}"
    return f"{'-' if v is None else v:>{width}}"


def run_line(x: Json) -> str:
    note = "" if x["alive_after"] else "  (peer exited)"
    if x["fail_causes"]:
        note += "  " + ", ".join(f"{k} {v}" for k, v in x["fail_causes"].items())
    return (f"  {x['rate']:>4} {x['run']:>4} {x['calls']:>6} {x['ok']:>6} {x['shed']:>6} {x['failed']:>6} "
            f"{fmt(x['setup_p50_ms'], 8, 2)} {fmt(x['setup_p99_ms'], 9, 2)} {fmt(x['cpu_pct'], 6)} "
            f"{fmt(x['vmhwm_mib'], 9)} {fmt(x['concurrent_calls'], 5)} "
            f"{fmt(x['rss_per_call_kib'], 12)} {fmt(x['sipp_cpu_pct'], 6)} "
            f"{fmt(x['load_avg_before'], 5, 2)} {fmt(x.get('host_idle_before'), 5, 2)}{note}")


def peer_lines(r: Json) -> list[str]:
    lines = [f"{r['peer']}: highest rate held {r.get('max_rate_held') or 'none'} calls/s, "
             f"idle RSS {r.get('idle_rss_mib')} MiB" + (f" ({r['stopped']})" if "stopped" in r else "")]
    lines.append(f"  {'rate':>4} {'run':>4} {'calls':>6} {'ok':>6} {'shed':>6} {'failed':>6} {'p50 ms':>8} "
                 f"{'p99 ms':>9} {'CPU %':>6} {'VmHWM MiB':>9} {'conc':>5} {'RSS/call KiB':>12} "
                 f"{'SIPp %':>6} {'load':>5} {'idle':>5}")
    for s in r["rates"]:
        lines.extend(run_line(x) for x in s["runs"])
        verdict = "held" if s["held"] else "FAILED"
        lines.append(f"  {s['rate']:>4} {'all':>4} {verdict:>27} {fmt(s['setup_p50_ms'], 8, 2)} "
                     f"{fmt(s['setup_p99_ms'], 9, 2)} {fmt(s['cpu_pct'], 6)} {fmt(s['vmhwm_mib'], 9)} "
                     f"{fmt(s['concurrent_calls'], 5)} {fmt(s['rss_per_call_kib'], 12)}")
    return lines


def report_text(out: Json) -> str:
    p = out["params"]
    lines = [f"load on {HOST}: {SCENARIO.name} (audio+video offer, video declined), "
             f"{CALL_MS / 1000:g} s calls, {p['seconds']} s per run, {p['runs']} runs per rate, "
             f"rates {p['rates']} calls/s"]
    for name in p["peers"]:
        r = out.get(name)
        if not r:
            continue
        lines.extend([f"{name}: error: {r['error']}"] if "error" in r else peer_lines(r))
    rt = out.get("ratio")
    if rt:
        lines.append(f"ratio softphone/baresip: highest rate held {rt['max_rate_held']}, "
                     f"idle RSS {rt['idle_rss']}")
        lines.append(f"  {'rate':>4} {'p99':>6} {'VmHWM':>6} {'RSS/call':>9} {'CPU':>6}")
        for x in rt["per_rate"]:
            lines.append(f"  {x['rate']:>4} {fmt(x['setup_p99_ms'], 6, 2)} {fmt(x['vmhwm_mib'], 6, 2)} "
                         f"{fmt(x['rss_per_call_kib'], 9, 2)} {fmt(x['cpu_pct'], 6, 2)}")
    for name in p["peers"]:
        if name in out.get("marginal", {}):
            lines.extend(marginal_lines(out["marginal"][name]))
    if "workdir" in out:
        lines.append(f"scratch kept: {out['workdir']}")
    lines.append(f"wall time {out['wall_s']} s")
    return "\n".join(lines)


# ------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--rates", default="100,150,200,250,300,350,400", help="calls/s, comma list")
    p.add_argument("--seconds", type=int, default=10, help="traffic per run (s)")
    p.add_argument("--runs", type=int, default=2, help="runs per rate")
    p.add_argument("--peers", default="softphone,baresip", help="softphone, softphone-asyncio, baresip")
    p.add_argument("--warmup", type=int, default=10, help="calls before each measured run (1 s long, 10/s)")
    p.add_argument("--recv-timeout", type=float, default=10.0,
                   help="a call fails after this long without an expected answer (s)")
    p.add_argument("--max-time", type=float, default=900.0, help="bound of the whole run (s)")
    p.add_argument("--profile", action="store_true",
                   help="py-spy the softphone in the first run of each rate (kept in the scratch dir)")
    p.add_argument("--profile-format", default="flamegraph", choices=("flamegraph", "speedscope"))
    p.add_argument("--python", default=sys.executable, help="interpreter for the softphone")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (traces, logs)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--marginal", default="", metavar="RATE:MS1,MS2",
                   help="also measure RSS per further concurrent call: two runs at RATE calls/s with "
                        "calls of MS1 and MS2 ms (e.g. 100:1000,3000); --rates '' runs only these")
    args = p.parse_args(argv)
    args.rates = [int(x) for x in args.rates.split(",") if x.strip()]
    if args.marginal:
        try:
            rate_text, _, lengths_text = args.marginal.partition(":")
            lengths = [int(x) for x in lengths_text.split(",")]
            if len(lengths) != 2 or lengths[0] == lengths[1] or min(lengths) <= 0 or int(rate_text) <= 0:
                raise ValueError
            args.marginal = (int(rate_text), sorted(lengths))
        except ValueError:
            p.error(f"--marginal {args.marginal!r}: expected RATE:MS1,MS2 with two different lengths")
    args.peers = [x.strip() for x in args.peers.split(",") if x.strip()]
    return args


def run_all(args: argparse.Namespace, work: Path, out: Json) -> None:
    deadline = Deadline(args.max_time)
    for i, name in enumerate(args.peers):
        if name == "baresip" and not baresip_available():
            out[name] = {"peer": name, "error": "baresip is not installed"}
            continue
        share = Deadline(deadline.left() / (len(args.peers) - i))
        try:
            if args.rates:
                out[name] = bench_peer(name, work, args, share)
            if args.marginal:
                out.setdefault("marginal", {})[name] = marginal_memory(name, work, args, share)
        except RuntimeError as e:
            out[name] = {"peer": name, "error": str(e)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("sipp") is None:
        print("sipp is not on PATH", file=sys.stderr)
        return 2
    t_start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="softphone-load-"))
    out: Json = {"params": {"rates": args.rates, "seconds": args.seconds, "runs": args.runs,
                            "peers": args.peers, "call_ms": CALL_MS, "scenario": SCENARIO.name,
                            "warmup_calls": args.warmup, "recv_timeout_s": args.recv_timeout,
                            "marginal": args.marginal or None}}

    def on_signal(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        run_all(args, work, out)
    except KeyboardInterrupt:
        out["interrupted"] = True
    finally:
        if args.keep or args.profile:
            out["workdir"] = str(work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    sp, bs = out.get("softphone") or {}, out.get("baresip") or {}
    if "rates" in sp and "rates" in bs:
        out["ratio"] = ratios(sp, bs)
    out["wall_s"] = round(time.monotonic() - t_start, 1)
    print(json.dumps(out) if args.json else report_text(out))
    ok = all("error" not in (out.get(n) or ({} if not args.rates else {"error": 1})) for n in args.peers)
    return 0 if ok and not out.get("interrupted") else 1


if __name__ == "__main__":
    sys.exit(main())
