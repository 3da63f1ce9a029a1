#!/usr/bin/env python3
"""CPU per audio call: the softphone against pjsua2 and baresip, PCMU and Opus, same run.

The benchmark (a small SIP user agent, scripts/bench/peers/minisip.py) places N
simultaneous calls to one auto-answering peer process. The peer sends a 440 Hz tone;
the benchmark echoes every RTP packet back (with another SSRC), so each call costs the
peer one encode and one decode per 20 ms, like a conversation. The peer's CPU time
(utime + stime from /proc/PID/stat) is read over a fixed window before the calls
(idle) and during them; per call = (in-call - idle) / N, in % of one core.

Configurations (``--configs``, default ``softphone:10:PCMU,softphone:4:PCMU,
pjsua2:4:PCMU,baresip:10:PCMU,softphone:10:opus,baresip:10:opus``): PEER:N:CODEC.
pjsua2 accepts at most 4 calls and its wheel has no Opus.
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

from answerers import baresip_available, make_answerer
from minisip import HOST, RtpHub, SipAgent, cpu_ticks, wait_for

DEFAULT_CONFIGS = ("softphone:10:PCMU,softphone:4:PCMU,pjsua2:4:PCMU,baresip:10:PCMU,"
                   "softphone:10:opus,baresip:10:opus")
TCK = os.sysconf("SC_CLK_TCK")


def cpu_over(pid: int, seconds: float) -> float:
    c0, t0 = cpu_ticks(pid), time.monotonic()
    time.sleep(seconds)
    c1, t1 = cpu_ticks(pid), time.monotonic()
    return 100.0 * (c1 - c0) / TCK / (t1 - t0)


def own_cpu() -> float:
    t = os.times()
    return t.user + t.system


def vm_hwm_mib(pid: int) -> float | None:
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def run_config(name: str, n: int, codec: str, args, work: Path) -> dict:
    peer = make_answerer(name, work, codec, max_time=args.window + args.idle + 40,
                         python=args.python, tag=f"{name}_{n}_{codec}")
    res: dict = {"peer": name, "calls": n, "codec": codec}
    hub = agent = None
    try:
        if n > peer.max_calls:
            return {"skipped": f"{name} accepts at most {peer.max_calls} calls"}
        time.sleep(0.5)
        res["idle_cpu_pct"] = round(cpu_over(peer.proc.pid, args.idle), 2)
        hub = RtpHub()
        agent = SipAgent(hub, codec=codec)
        dialogs = []
        for _ in range(n):
            dialogs.append(agent.call(f"sip:bench@{HOST}:{peer.port}", (HOST, peer.port), mode="echo"))
            time.sleep(0.02)
        try:
            wait_for(lambda: all(d.state != "calling" for d in dialogs), 15, "answers")
        except RuntimeError:
            pass
        up = [d for d in dialogs if d.state == "confirmed"]
        res["answered"] = len(up)
        res["failed_codes"] = sorted({d.code for d in dialogs if d.state != "confirmed"})
        time.sleep(args.warmup)
        rx0 = sum(len(d.stream.arrivals) for d in up)
        me0 = own_cpu()
        busy = cpu_over(peer.proc.pid, args.window)
        me1 = own_cpu()
        rx1 = sum(len(d.stream.arrivals) for d in up)
        res["call_cpu_pct"] = round(busy, 2)
        res["per_call_pct"] = round((busy - res["idle_cpu_pct"]) / max(1, len(up)), 2)
        res["rtp_pps_per_call"] = round((rx1 - rx0) / args.window / max(1, len(up)), 1)
        res["bench_cpu_pct"] = round(100.0 * (me1 - me0) / args.window, 2)
        res["vm_hwm_mib"] = vm_hwm_mib(peer.proc.pid)
        for d in dialogs:
            agent.hangup(d)
        time.sleep(0.5)
    finally:
        if agent is not None:
            agent.close()
        if hub is not None:
            hub.close()
        res["exit_code"] = peer.stop()
    return res


def ratio(a, b):
    if a is None or not b:
        return None
    return round(a / b, 2)


def report_text(out: dict) -> str:
    p = out["params"]
    lines = [f"CPU per call on {HOST} (% of one core; idle {p['idle']} s, in-call window {p['window']} s; "
             "every packet echoed back: one encode + one decode per call)",
             f"{'config':<22}{'up':>6}{'idle %':>8}{'in-call %':>10}{'per call %':>11}"
             f"{'pps/call':>9}{'RSS MiB':>8}{'bench %':>8}"]
    for key, r in out["runs"].items():
        if "per_call_pct" not in r:
            lines.append(f"{key:<22}{r.get('skipped') or r.get('error') or r}")
            continue
        lines.append(f"{key:<22}{r['answered']:>3}/{r['calls']:<2}{r['idle_cpu_pct']:>8.2f}"
                     f"{r['call_cpu_pct']:>10.2f}{r['per_call_pct']:>11.2f}{r['rtp_pps_per_call']:>9.1f}"
                     f"{r['vm_hwm_mib'] or 0:>8.1f}{r['bench_cpu_pct']:>8.1f}")
    if out.get("ratios"):
        lines.append("ratios of CPU per call, softphone / reference (>1 = softphone costs more):")
        for k, v in out["ratios"].items():
            lines.append(f"  {k}: {v}")
    lines.append(f"wall time {out['wall_s']} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help="comma list of PEER:CALLS:CODEC")
    ap.add_argument("--window", type=float, default=8.0, help="in-call measuring window (s)")
    ap.add_argument("--idle", type=float, default=2.0, help="idle measuring window (s)")
    ap.add_argument("--warmup", type=float, default=1.0, help="seconds after the last answer")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--max-time", type=float, default=170.0, help="bound of the whole run (s)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch folder")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)
    configs = []
    for item in args.configs.split(","):
        parts = item.strip().split(":")
        configs.append((parts[0], int(parts[1]) if len(parts) > 1 else 10,
                        parts[2] if len(parts) > 2 else "PCMU"))
    t_start = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="softphone-bench-cpu-"))
    out: dict = {"params": {"window": args.window, "idle": args.idle, "warmup": args.warmup,
                            "configs": args.configs}, "runs": {}}

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        for name, n, codec in configs:
            key = f"{name}:{n}:{codec}"
            if time.monotonic() - t_start + args.window + args.idle + args.warmup + 10 > args.max_time:
                out["runs"][key] = {"skipped": "time budget"}
                continue
            if name == "baresip" and not baresip_available():
                out["runs"][key] = {"skipped": "baresip not installed"}
                continue
            try:
                out["runs"][key] = run_config(name, n, codec, args, work)
            except RuntimeError as e:
                out["runs"][key] = {"error": str(e)}
    except KeyboardInterrupt:
        out["interrupted"] = True
    runs = out["runs"]
    rt = {}
    for key, r in runs.items():
        if not key.startswith("softphone:") or "per_call_pct" not in r:
            continue
        _, n, codec = key.split(":")
        for ref, rr in runs.items():
            if ref.startswith("softphone:") or "per_call_pct" not in rr:
                continue
            _, rn, rcodec = ref.split(":")
            if rcodec == codec and rn == n:
                v = ratio(r["per_call_pct"], rr["per_call_pct"])
                if v is not None:
                    rt[f"{key} / {ref}"] = v
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
