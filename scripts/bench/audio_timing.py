#!/usr/bin/env python3
"""RTP send-timing benchmark: how regularly the softphone sends its 20-ms audio packets,
compared with pjsua2 and baresip in the same run.

The benchmark is itself a small SIP user agent (scripts/bench/peers/minisip.py). It
calls each auto-answering peer N times at once (PCMU, ptime 20, the peer sends a
440 Hz tone) with SDP pointing at UDP sockets of its own, and stamps every arriving
RTP packet with the kernel's receive time (SO_TIMESTAMPNS). On loopback that is the
moment the peer's sendto() ran. Over a fixed window it reports, pooled over the calls,
the percentiles of the inter-packet interval and of |interval - 20 ms|.

Configurations (``--configs``, default ``softphone:1,softphone:4,softphone:50,pjsua2:1,
pjsua2:4,baresip:1,baresip:50,softphone-call:1``): ``PEER:N`` = N simultaneous calls to
one answering PEER process; ``softphone-call:1`` = one ``softphone call`` process
calling the benchmark (the caller's send loop). pjsua2 accepts at most 4 calls.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

from answerers import ROOT, baresip_available, make_answerer
from minisip import HOST, RtpHub, SipAgent, cpu_ticks, interval_stats, seq_gaps, stop_pid, wait_for

DEFAULT_CONFIGS = ("softphone:1,softphone:4,softphone:50,pjsua2:1,pjsua2:4,baresip:1,"
                   "baresip:50,softphone-call:1")


def window_intervals(stream, t0: int, t1: int) -> list[float]:
    out = []
    prev = None
    for t, seq, *_ in stream.arrivals:
        if prev is not None and t0 <= prev[0] and t <= t1 and seq == (prev[1] + 1) & 0xFFFF:
            out.append((t - prev[0]) / 1e6)
        prev = (t, seq)
    return out


def run_answerer(name: str, n: int, args, work: Path) -> dict:
    peer = make_answerer(name, work, "PCMU", max_time=args.window + 40, python=args.python,
                         tag=f"{name}_{n}")
    if n > peer.max_calls:
        peer.stop()
        return {"skipped": f"{name} accepts at most {peer.max_calls} calls"}
    hub = RtpHub()
    agent = SipAgent(hub, codec="PCMU")
    res: dict = {"peer": name, "calls": n}
    try:
        dialogs = []
        for _ in range(n):
            dialogs.append(agent.call(f"sip:bench@{HOST}:{peer.port}", (HOST, peer.port)))
            time.sleep(0.02)
        try:
            wait_for(lambda: all(d.state != "calling" for d in dialogs), 15, "answers")
        except RuntimeError:
            pass
        up = [d for d in dialogs if d.state == "confirmed"]
        res["answered"] = len(up)
        res["failed_codes"] = sorted({d.code for d in dialogs if d.state != "confirmed"})
        time.sleep(args.warmup)
        c0, t0 = cpu_ticks(peer.proc.pid), time.monotonic_ns()
        time.sleep(args.window)
        c1, t1 = cpu_ticks(peer.proc.pid), time.monotonic_ns()
        res["cpu_pct"] = round(100.0 * (c1 - c0) / os.sysconf("SC_CLK_TCK") / ((t1 - t0) / 1e9), 2)
        intervals: list[float] = []
        for d in up:
            intervals += window_intervals(d.stream, t0, t1)
        res["timing"] = interval_stats(intervals)
        res["packets_per_call"] = round(sum(
            sum(1 for a in d.stream.arrivals if t0 <= a[0] <= t1) for d in up) / max(1, len(up)), 1)
        res["seq_gaps"] = sum(seq_gaps(d.stream) for d in up)
        for d in dialogs:
            agent.hangup(d)
        time.sleep(0.5)
    finally:
        agent.close()
        hub.close()
        res["exit_code"] = peer.stop()
    return res


def run_softphone_caller(args, work: Path) -> dict:
    """One ``softphone call`` to the benchmark's own answering UA."""
    hub = RtpHub()
    agent = SipAgent(hub, codec="PCMU")
    res: dict = {"peer": "softphone-call", "calls": 1}
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    dur = args.warmup + args.window + 1.5
    cmd = [args.python, "-m", "softphone", "--json", "--bind", HOST, "--sip-port", "0",
           "--rtp-port", "0", "call", f"sip:bench@{HOST}:{agent.port}", "--duration", str(dur),
           "--no-video", "--audio-codec", "PCMU", "--audio-source", "tone: 440",
           "--audio-sink", "null:"]
    out = work / "softphone_call.jsonl"
    with open(out, "wb") as o:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=o, stderr=subprocess.STDOUT,
                                env=env, cwd=work)
    try:
        wait_for(lambda: bool(agent.incoming) or proc.poll() is not None, 20, "the INVITE")
        if not agent.incoming:
            raise RuntimeError("softphone call exited: " + out.read_text()[-1500:])
        d = agent.incoming[0]
        wait_for(lambda: len(d.stream.arrivals) > 0 or proc.poll() is not None, 10, "RTP")
        time.sleep(args.warmup)
        c0, t0 = cpu_ticks(proc.pid), time.monotonic_ns()
        time.sleep(args.window)
        c1, t1 = cpu_ticks(proc.pid), time.monotonic_ns()
        res["answered"] = 1
        res["cpu_pct"] = round(100.0 * (c1 - c0) / os.sysconf("SC_CLK_TCK") / ((t1 - t0) / 1e9), 2)
        res["timing"] = interval_stats(window_intervals(d.stream, t0, t1))
        res["packets_per_call"] = sum(1 for a in d.stream.arrivals if t0 <= a[0] <= t1)
        res["seq_gaps"] = seq_gaps(d.stream)
        try:
            proc.wait(dur + 10)
        except subprocess.TimeoutExpired:
            pass
    finally:
        res["exit_code"] = stop_pid(proc)
        agent.close()
        hub.close()
    return res


def ratio(a, b):
    if a is None or not b:
        return None
    return round(a / b, 2)


def fmt(v, w=8):
    return f"{'n/a':>{w}}" if v is None else f"{v:>{w}.3f}"


def report_text(out: dict) -> str:
    p = out["params"]
    lines = [f"RTP send timing on {HOST}: PCMU ptime 20, {p['window']} s window after "
             f"{p['warmup']} s, kernel receive stamps (ms)",
             f"{'config':<18}{'calls up':>9}{'int p1':>9}{'int p50':>9}{'int p99':>9}"
             f"{'|d| p50':>9}{'|d| p99':>9}{'|d| max':>9}{'>1ms':>7}{'>5ms':>7}{'gaps':>6}{'CPU%':>7}"]
    for key, r in out["runs"].items():
        if "timing" not in r:
            lines.append(f"{key:<18}{r.get('skipped') or r.get('error')}")
            continue
        t = r["timing"]
        if not t.get("n"):
            lines.append(f"{key:<18}{r.get('answered', 0):>9}  no packets")
            continue
        lines.append(f"{key:<18}{r['answered']:>5}/{r['calls']:<3}{fmt(t['interval_p1'], 9)}"
                     f"{fmt(t['interval_p50'], 9)}{fmt(t['interval_p99'], 9)}{fmt(t['dev_p50'], 9)}"
                     f"{fmt(t['dev_p99'], 9)}{fmt(t['dev_max'], 9)}{100 * t['share_dev_gt_1ms']:>6.1f}%"
                     f"{100 * t['share_dev_gt_5ms']:>6.1f}%{r['seq_gaps']:>6}{r['cpu_pct']:>7.1f}")
    if out.get("ratios"):
        lines.append("ratios softphone/reference (p99 of |interval - 20 ms|; >1 = softphone less regular):")
        for k, v in out["ratios"].items():
            lines.append(f"  {k}: {v}")
    lines.append(f"wall time {out['wall_s']} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma list of PEER:CALLS")
    ap.add_argument("--window", type=float, default=8.0, help="measured seconds per config")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds after the last answer")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--max-time", type=float, default=170.0, help="bound of the whole run (s)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    configs = []
    for item in args.configs.split(","):
        name, _, n = item.strip().partition(":")
        configs.append((name, int(n or 1)))
    t_start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="softphone-bench-timing-"))
    out: dict = {"params": {"window": args.window, "warmup": args.warmup, "codec": "PCMU",
                            "configs": args.configs}, "runs": {}}

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        for name, n in configs:
            key = f"{name}:{n}"
            if time.monotonic() - t_start + args.window + args.warmup + 10 > args.max_time:
                out["runs"][key] = {"skipped": "time budget"}
                continue
            if name == "baresip" and not baresip_available():
                out["runs"][key] = {"skipped": "baresip not installed"}
                continue
            try:
                if name == "softphone-call":
                    out["runs"][key] = run_softphone_caller(args, work)
                else:
                    out["runs"][key] = run_answerer(name, n, args, work)
            except RuntimeError as e:
                out["runs"][key] = {"error": str(e)}
    except KeyboardInterrupt:
        out["interrupted"] = True
    runs = out["runs"]

    def dev99(key):
        return (runs.get(key) or {}).get("timing", {}).get("dev_p99")

    rt = {}
    for a, b in (("softphone:1", "pjsua2:1"), ("softphone:4", "pjsua2:4"), ("softphone:1", "baresip:1"),
                 ("softphone:50", "baresip:50"), ("softphone-call:1", "pjsua2:1")):
        r = ratio(dev99(a), dev99(b))
        if r is not None:
            rt[f"{a} / {b}"] = r
    out["ratios"] = rt
    out["wall_s"] = round(time.monotonic() - t_start, 1)
    if args.keep or any("error" in r for r in runs.values()):
        out["workdir"] = str(work)
    else:
        subprocess.run(["rm", "-rf", "--", str(work)], timeout=30)
    print(json.dumps(out) if args.json else report_text(out))
    return 0 if not any("error" in r for r in runs.values()) and not out.get("interrupted") else 1


if __name__ == "__main__":
    sys.exit(main())
