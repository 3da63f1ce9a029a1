#!/usr/bin/env python3
"""Call-setup benchmark: the softphone's auto-answer against PJSIP's (pjsua2), driven by SIPp.

For each answering peer (``softphone answer --auto`` and tests/interop/pjsua2_peer.py
in auto-answer mode, no ring delay), SIPp places:

1. ``--calls`` short calls (default 200) at ``--rate`` calls/s (default 20) with the
   scenario tests/interop/scenarios/uac_invite_timing.xml, which logs the INVITE->200
   time of every call in microseconds (``<gettimeofday>``). The calls go in ``--blocks``
   blocks (default 4), the peers taking turns (A B, B A, A B, B A): this machine's pace
   changes from minute to minute, and the turns give both peers the same minutes. Both
   peers run from the start; the one waiting its turn is stopped (SIGSTOP);
2. a rate ramp (default 20, 50, 100, 200 calls/s, ``--ramp-seconds`` each, default 5 s),
   stopping at the first rate with a failed call.

Before the calls, each peer's idle activity over ``--idle-seconds`` (default 3, after 2 s to
settle): its CPU (utime + stime of all its threads, % of one core) and its wake-ups a second
(the voluntary and involuntary context switches of all its threads). A peer that polls is
never long asleep, and a sleeping process takes a virtual machine's CPU longer to wake.

Printed per peer: INVITE->200 median and p90 in ms, by SIPp's clock and on the wire (the
kernel's timestamps of the two datagrams on lo, see wire.py; ``--no-wire``: SIPp's only),
the highest rate of the ramp with 0 failed calls, the idle activity, and the softphone/pjsua2
ratios.  ``--json`` prints one JSON object
instead.  Everything runs on 127.0.0.1; every process is stopped by its PID; the whole
run is bounded by ``--max-time`` (default 170 s).

``--pin A,S`` runs both answerers on CPU A and SIPp on CPU S. Unpinned, the scheduler
places the processes anew in every run: the softphone's median on the wire was 1.10, 1.35
and 1.61 ms in three runs in a row (pjsua2's 1.33-1.34 ms). With ``--pin 1,0`` it was
0.96-1.06 ms in four runs (pjsua2's 0.88-0.96 ms).
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import json
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from wire import WireClock  # noqa: E402

SCENARIOS = ROOT / "tests" / "interop" / "scenarios"
PJSUA2_PEER = ROOT / "tests" / "interop" / "pjsua2_peer.py"
HOST = "127.0.0.1"

SETUP_RE = re.compile(
    r"SETUP call=(\d+) inv_s=([\d.]+) inv_us=([\d.]+) ok_s=([\d.]+) ok_us=([\d.]+)"
)


# ------------------------------------------------------------------ helpers


RESERVED: list[range] = []   # RTP ranges handed to a peer: never given out again
PIN: dict[str, int] = {}  # "answerer", "sipp" -> the one CPU it runs on (--pin)


def pinned(role: str):
    """A ``preexec_fn`` that keeps the process and all its threads on ``PIN[role]``, or None."""
    cpu = PIN.get(role)
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def free_port(count: int = 1) -> int:
    """An even port P with P..P+count-1 free for UDP, and P free for TCP."""
    for _ in range(500):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1] & ~1
        if port + count > 65535 or any(
            p in r for r in RESERVED for p in (port, port + count - 1)
        ):
            continue
        socks = []
        try:
            for p in range(port, port + count):
                u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(u)
                u.bind((HOST, p))
            t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(t)
            t.bind((HOST, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port")


def stop_pid(proc: subprocess.Popen, timeout: float = 10.0) -> int | None:
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(5)
    return proc.returncode


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100)."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, math.ceil(q / 100.0 * len(v)) - 1))
    return v[k]


def wait_for(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        return self.end - time.monotonic()


# ------------------------------------------------------------------ answering peers


class Answerer:
    name = "?"
    proc: subprocess.Popen
    port: int

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int | None:
        return stop_pid(self.proc)


class SoftphoneAnswerer(Answerer):
    name = "softphone"

    def __init__(self, work: Path, python: str) -> None:
        self.out = work / "softphone.jsonl"
        self.err = work / "softphone.err"
        # SIPp calls from one address, far above the limits a phone keeps by default against
        # floods, and more calls at once than its default max_calls=10 (a busy ramp step's
        # video calls pile up): the benchmark measures call handling, so those limits are off
        rc = work / "softphone.rc"
        rc.write_text("[sip]\nmax_requests_per_second=0\nmax_transactions=0\nmax_dialogs=0\n")
        cmd = [python, "-m", "softphone", "--json", "-c", str(rc), "--bind", HOST, "--sip-port", "0",
               "--rtp-port", "0", "answer", "--auto", "--delay", "0", "--max-calls", "1000"]
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
        # stdout to a file: thousands of events must never block the answerer on a pipe
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                         env=env, cwd=work, preexec_fn=pinned("answerer"))
        self.port = 0

        def listening() -> bool:
            if not self.alive():
                raise RuntimeError("softphone exited: " + self.err.read_text()[-2000:])
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
    name = "pjsua2"

    def __init__(self, work: Path, python: str, max_time: float) -> None:
        self.out = work / "pjsua2.json"
        self.err = work / "pjsua2.err"
        self.port = free_port()
        rtp = free_port(40)
        RESERVED.append(range(rtp, rtp + 40))
        cmd = [python, str(PJSUA2_PEER), "--ip", HOST, "--port", str(self.port),
               "--rtp-port", str(rtp), "--rtp-port-range", "40",
               "--no-audio-port", "--ring-ms", "0",
               "--max-time", str(int(max_time))]
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                                         cwd=work, preexec_fn=pinned("answerer"))

        def ready() -> bool:
            if not self.alive():
                raise RuntimeError("pjsua2 peer exited: " + self.err.read_text()[-2000:])
            return "READY" in self.err.read_text(errors="replace")

        wait_for(ready, 20, "the pjsua2 peer's READY")


# ------------------------------------------------------------------ one sipp run


def run_sipp(work: Path, tag: str, port: int, calls: int, rate: int, call_ms: int,
             scenario: Path, limit_s: float, wire: bool = False) -> dict:
    """One SIPp run; with ``wire``, INVITE->200 also from the kernel's timestamps on ``lo``."""
    if not wire:
        return _run_sipp(work, tag, port, calls, rate, call_ms, scenario, limit_s)
    try:
        clock = WireClock(port)
    except OSError as e:  # no CAP_NET_RAW
        run = _run_sipp(work, tag, port, calls, rate, call_ms, scenario, limit_s)
        run["wire_error"] = str(e)
        return run
    with clock:
        run = _run_sipp(work, tag, port, calls, rate, call_ms, scenario, limit_s)
    run["wire_ms"] = clock.setup_ms()
    return run


def _run_sipp(work: Path, tag: str, port: int, calls: int, rate: int, call_ms: int,
              scenario: Path, limit_s: float) -> dict:
    log_file = work / f"{tag}_logs.log"
    stat_file = work / f"{tag}_stat.csv"
    err_file = work / f"{tag}_errors.log"
    expected_s = calls / rate
    timeout = int(min(limit_s, expected_s + 12))
    cmd = ["sipp", "-sf", str(scenario), f"{HOST}:{port}",
           "-i", HOST, "-bind_local", "-ci", HOST, "-mi", HOST, "-nostdin",
           "-p", str(free_port()), "-mp", str(free_port(4)), "-cp", str(free_port()),
           "-m", str(calls), "-r", str(rate), "-d", str(call_ms),
           "-recv_timeout", "4000", "-timeout", str(timeout),
           "-trace_logs", "-log_file", str(log_file),
           "-trace_stat", "-stf", str(stat_file), "-fd", "1",
           "-trace_err", "-error_file", str(err_file)]
    t0 = time.monotonic()
    with open(work / f"{tag}_screen.out", "wb") as out:
        proc = subprocess.Popen(cmd, cwd=work, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, preexec_fn=pinned("sipp"))
        try:
            rc = proc.wait(timeout + 10)
        except subprocess.TimeoutExpired:
            rc = stop_pid(proc, 3)
    elapsed = time.monotonic() - t0
    setup_ms = []
    if log_file.exists():
        for m in SETUP_RE.finditer(log_file.read_text(errors="replace")):
            t_inv = float(m.group(2)) + float(m.group(3)) / 1e6
            t_ok = float(m.group(4)) + float(m.group(5)) / 1e6
            setup_ms.append((t_ok - t_inv) * 1000.0)
    ok = failed = 0
    if stat_file.exists():
        with open(stat_file, newline="") as f:
            rows = list(csv.DictReader(f, delimiter=";"))
        if rows:
            ok = int(rows[-1].get("SuccessfulCall(C)") or 0)
            failed = int(rows[-1].get("FailedCall(C)") or 0)
    return {"calls": calls, "rate": rate, "sipp_exit": rc, "successful": ok, "failed": failed,
            "unfinished": calls - ok - failed, "elapsed_s": round(elapsed, 2),
            "setup_ms": setup_ms}


TCK = os.sysconf("SC_CLK_TCK")
IDLE_SETTLE_S = 2.0  # after a peer is ready, before its idle activity is measured
RESUME_SETTLE_S = 0.3  # after a stopped peer is resumed, before its calls


def _activity(pid: int) -> tuple[int, int]:
    """(CPU ticks, context switches) summed over the threads of ``pid``."""
    ticks = switches = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            status = (task / "status").read_text().splitlines()
        except OSError:  # the thread ended meanwhile
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
        switches += sum(int(line.split()[1]) for line in status if "ctxt_switches:" in line)
    return ticks, switches


def idle_activity(pid: int, seconds: float) -> dict:
    """CPU (% of one core) and wake-ups a second of a process left alone for ``seconds``."""
    (c0, w0), t0 = _activity(pid), time.monotonic()
    time.sleep(seconds)
    (c1, w1), t1 = _activity(pid), time.monotonic()
    return {"cpu_pct": round(100.0 * (c1 - c0) / TCK / (t1 - t0), 2),
            "wakeups_per_s": round((w1 - w0) / (t1 - t0), 1), "seconds": round(t1 - t0, 2)}


def clean(run: dict) -> bool:
    return run["sipp_exit"] == 0 and run["failed"] == 0 and run["successful"] == run["calls"]


def pause(peer: Answerer, stopped: bool) -> None:
    """Stop (SIGSTOP) or resume (SIGCONT) a peer: the peer that waits its turn takes no CPU
    from the one being measured (pjsua2 wakes about 340 times a second when idle)."""
    if peer.alive():
        os.kill(peer.proc.pid, signal.SIGSTOP if stopped else signal.SIGCONT)


@contextlib.contextmanager
def measured(peer: Answerer) -> Iterator[None]:
    """The peer running for one measurement, and stopped again after it."""
    pause(peer, False)
    time.sleep(RESUME_SETTLE_S)  # timers that came due while it was stopped fire now, not during a call
    try:
        yield
    finally:
        pause(peer, True)


def blocks(calls: int, count: int) -> list[int]:
    """``calls`` split into ``count`` blocks (at least one call each) as evenly as it goes."""
    count = max(1, min(count, calls))
    return [calls // count + (1 if i < calls % count else 0) for i in range(count)]


def timing_runs(peers: dict[str, Answerer], work: Path, args: argparse.Namespace, deadline: Deadline,
                scenario: Path) -> dict[str, dict]:
    """The timing run: ``--calls`` to each peer in ``--blocks`` blocks, the peers taking turns
    (A B, B A, A B ...), so that a change of the machine's pace during the run reaches both
    alike. Each block runs with the other peers stopped."""
    runs: dict[str, list[dict]] = {name: [] for name in peers}
    for i, size in enumerate(blocks(args.calls, args.blocks)):
        for name in (list(peers) if i % 2 == 0 else list(peers)[::-1]):
            peer = peers[name]
            if not peer.alive() or deadline.left() < size / args.rate + 15:
                continue
            with measured(peer):
                runs[name].append(run_sipp(work, f"{name}_main{i}", peer.port, size, args.rate, args.call_ms,
                                           scenario, min(deadline.left(), size / args.rate + 15), wire=args.wire))
    results = {}
    for name, done in runs.items():
        setup = [t for run in done for t in run.pop("setup_ms")]
        res: dict = {"invite_200_ms": summary(setup)}
        wired = bool(done) and all("wire_ms" in run for run in done)
        wire = [t for run in done for t in run.pop("wire_ms", [])]
        if not wired:
            errors = [run["wire_error"] for run in done if "wire_error" in run]
            main = {"wire_error": errors[0]} if errors else {}
        else:
            res["wire_invite_200_ms"] = summary(wire)
            main = {}
        main.update({key: sum(run[key] for run in done) for key in ("calls", "successful", "failed", "unfinished")})
        main.update(rate=args.rate, blocks=len(done), elapsed_s=round(sum(run["elapsed_s"] for run in done), 2),
                    sipp_exit=next((run["sipp_exit"] for run in done if run["sipp_exit"] != 0), 0 if done else None))
        res["main"] = main
        results[name] = res
    return results


def ramp_peer(peer: Answerer, work: Path, args: argparse.Namespace, deadline: Deadline,
              scenario: Path) -> dict:
    """The rate ramp, stopping at the first rate with a failed call."""
    res: dict = {}
    ramp = []
    max_cps = 0
    for rate in args.ramp:
        calls = int(rate * args.ramp_seconds)
        if deadline.left() < args.ramp_seconds + 15:
            ramp.append({"rate": rate, "skipped": "time budget"})
            break
        if not peer.alive():
            ramp.append({"rate": rate, "skipped": "peer exited"})
            break
        with measured(peer):
            run = run_sipp(work, f"{peer.name}_ramp{rate}", peer.port, calls, rate,
                           args.call_ms, scenario, min(deadline.left() - 5, args.ramp_seconds + 12))
        t = run.pop("setup_ms")
        run["median_ms"] = round(statistics.median(t), 3) if t else None
        run["achieved_cps"] = round(run["successful"] / run["elapsed_s"], 1) if run["elapsed_s"] else None
        ramp.append(run)
        if not clean(run):
            break
        max_cps = rate
    res["ramp"] = ramp
    res["max_cps_zero_failures"] = max_cps
    done = [r for r in ramp if "skipped" not in r]
    res["ramp_all_clean"] = len(done) == len(args.ramp) and all(clean(r) for r in done)
    res["alive_after"] = peer.alive()
    return res


def summary(times: list[float]) -> dict:
    return {
        "n": len(times),
        "median": round(statistics.median(times), 3) if times else None,
        "p90": round(percentile(times, 90), 3) if times else None,
        "min": round(min(times), 3) if times else None,
        "max": round(max(times), 3) if times else None,
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b in (None, 0):
        return None
    return round(a / b, 2)


def fmt(v: float | None, unit: str = "") -> str:
    return "n/a" if v is None else f"{v:.2f}{unit}"


def report_text(out: dict) -> str:
    lines = [f"call setup on {HOST}: {out['params']['calls']} calls at "
             f"{out['params']['rate']} cps in {out['params']['blocks']} blocks, the peers taking turns, "
             f"{out['params']['call_ms']} ms calls, "
             f"ramp {out['params']['ramp']} cps x {out['params']['ramp_seconds']} s"]
    pin = out["params"].get("pin")
    if pin:
        lines[0] += f", answerers on CPU {pin['answerer']}, SIPp on CPU {pin['sipp']}"
    lines.append(f"{'peer':<10} {'INVITE->200 median':>19} {'p90':>9} {'ok/failed':>10} "
                 f"{'max cps (0 failed)':>19}")
    for name in ("softphone", "pjsua2"):
        r = out.get(name)
        if not r:
            continue
        if "error" in r:
            lines.append(f"{name:<10} error: {r['error']}")
            continue
        t = r["invite_200_ms"]
        m = r["main"]
        cps = str(r["max_cps_zero_failures"]) + ("+" if r["ramp_all_clean"] else "")
        if not r.get("alive_after", True):
            cps = "(exited) " + cps
        lines.append(f"{name:<10} {fmt(t['median'], ' ms'):>19} {fmt(t['p90'], ' ms'):>9} "
                     f"{m['successful']:>5}/{m['failed']:<4} {cps:>19}")
        if "wire_invite_200_ms" in r:
            w = r["wire_invite_200_ms"]
            lines.append(f"{'':<10}   on the wire: median {fmt(w['median'], ' ms')}, p90 {fmt(w['p90'], ' ms')} "
                         f"({w['n']} calls)")
        elif "wire_error" in m:
            lines.append(f"{'':<10}   on the wire: not measured ({m['wire_error']})")
        if "idle" in r:
            lines.append(f"{'':<10}   idle before the calls: {r['idle']['cpu_pct']:.2f} % CPU, "
                         f"{r['idle']['wakeups_per_s']:g} wake-ups/s")
        for step in r["ramp"]:
            if "skipped" in step:
                lines.append(f"{'':<10}   ramp {step['rate']} cps: skipped ({step['skipped']})")
            else:
                lines.append(f"{'':<10}   ramp {step['rate']} cps: {step['successful']} ok, "
                             f"{step['failed']} failed, {step['unfinished']} unfinished, "
                             f"median {fmt(step['median_ms'], ' ms')}, "
                             f"achieved {step['achieved_cps']} cps")
    rt = out.get("ratio")
    if rt:
        lines.append(f"ratio softphone/pjsua2: median {fmt(rt['median'])}, p90 {fmt(rt['p90'])}, "
                     f"max cps {fmt(rt['max_cps'])}")
        if "wire_median" in rt:
            lines.append(f"ratio on the wire: median {fmt(rt['wire_median'])}, p90 {fmt(rt['wire_p90'])}")
    lines.append(f"wall time {out['wall_s']} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--calls", type=int, default=200, help="calls of the timing run (default 200)")
    p.add_argument("--rate", type=int, default=20, help="calls/s of the timing run (default 20)")
    p.add_argument("--blocks", type=int, default=4,
                   help="blocks of the timing run, the peers taking turns (default 4)")
    p.add_argument("--ramp", default="20,50,100,200",
                   help="comma list of calls/s for the ramp (default 20,50,100,200)")
    p.add_argument("--ramp-seconds", type=float, default=5.0, help="length of each ramp step")
    p.add_argument("--idle-seconds", type=float, default=3.0,
                   help="measure each peer's idle CPU and wake-ups this long before the calls (0: not)")
    p.add_argument("--call-ms", type=int, default=0, help="time between ACK and BYE (sipp -d)")
    p.add_argument("--video", action="store_true",
                   help="offer audio+video (uac_av.xml) instead of audio only")
    p.add_argument("--peers", default="softphone,pjsua2", help="which answerers to measure")
    p.add_argument("--max-time", type=float, default=170.0, help="bound of the whole run (s)")
    p.add_argument("--python", default=sys.executable, help="interpreter for both peers")
    p.add_argument("--no-wire", dest="wire", action="store_false",
                   help="only SIPp's stamps, not the kernel's on lo (those need CAP_NET_RAW)")
    p.add_argument("--pin", metavar="A,S", default="",
                   help="run the answerers on CPU A and SIPp on CPU S (e.g. 1,0)")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (traces)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    args.ramp = [int(x) for x in args.ramp.split(",") if x.strip()]
    if args.pin:
        try:
            PIN["answerer"], PIN["sipp"] = (int(x) for x in args.pin.split(","))
        except ValueError:
            p.error("--pin takes two CPU numbers: A,S")
        usable = os.sched_getaffinity(0)
        if not set(PIN.values()) <= usable:
            p.error(f"--pin {args.pin}: this process may use CPUs {sorted(usable)} only")
    peers = [x.strip() for x in args.peers.split(",") if x.strip()]
    scenario = SCENARIOS / ("uac_av.xml" if args.video else "uac_invite_timing.xml")

    t_start = time.monotonic()
    deadline = Deadline(args.max_time)
    work = Path(tempfile.mkdtemp(prefix="softphone-bench-"))
    out: dict = {"params": {"calls": args.calls, "rate": args.rate, "blocks": args.blocks, "ramp": args.ramp,
                            "ramp_seconds": args.ramp_seconds, "call_ms": args.call_ms,
                            "scenario": scenario.name, "pin": dict(PIN)}}
    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    started: dict[str, Answerer] = {}
    try:
        for name in peers:
            try:
                if name == "softphone":
                    peer: Answerer = SoftphoneAnswerer(work, args.python)
                elif name == "pjsua2":
                    peer = Pjsua2Answerer(work, args.python, deadline.left() + 5)
                else:
                    raise SystemExit(f"unknown peer {name!r}")
            except RuntimeError as e:
                out[name] = {"peer": name, "error": str(e)}
                continue
            started[name] = peer
            time.sleep(IDLE_SETTLE_S)  # the softphone loads its media libraries once it listens
            out[name] = {"peer": name, "port": peer.port}
            if args.idle_seconds > 0:
                out[name]["idle"] = idle_activity(peer.proc.pid, args.idle_seconds)
            pause(peer, True)
        for name, res in timing_runs(started, work, args, deadline, scenario).items():
            out[name].update(res)
        for name, peer in started.items():
            share = Deadline(deadline.left() / (len(started) - list(started).index(name)))
            out[name].update(ramp_peer(peer, work, args, share, scenario))
    except KeyboardInterrupt:
        out["interrupted"] = True
    finally:
        for name, peer in started.items():
            pause(peer, False)  # a stopped process would not see SIGTERM
            out[name]["exit_code"] = peer.stop()
        if args.keep or any("error" in (out.get(n) or {}) for n in peers):
            out["workdir"] = str(work)
        else:
            for f in work.iterdir():
                f.unlink()
            work.rmdir()
    sp, pj = out.get("softphone") or {}, out.get("pjsua2") or {}
    if "invite_200_ms" in sp and "invite_200_ms" in pj:
        out["ratio"] = {
            "median": ratio(sp["invite_200_ms"]["median"], pj["invite_200_ms"]["median"]),
            "p90": ratio(sp["invite_200_ms"]["p90"], pj["invite_200_ms"]["p90"]),
            "max_cps": ratio(sp["max_cps_zero_failures"], pj["max_cps_zero_failures"]),
        }
        if "wire_invite_200_ms" in sp and "wire_invite_200_ms" in pj:
            sw, pw = sp["wire_invite_200_ms"], pj["wire_invite_200_ms"]
            out["ratio"]["wire_median"] = ratio(sw["median"], pw["median"])
            out["ratio"]["wire_p90"] = ratio(sw["p90"], pw["p90"])
    out["wall_s"] = round(time.monotonic() - t_start, 1)
    if args.json:
        print(json.dumps(out))
    else:
        print(report_text(out))
    ok = all("error" not in (out.get(n) or {"error": 1}) for n in peers)
    return 0 if ok and not out.get("interrupted") else 1


if __name__ == "__main__":
    sys.exit(main())
