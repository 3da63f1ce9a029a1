#!/usr/bin/env python3
"""ICE benchmark: time from the answer (200 OK) to the selected candidate pair (media flowing),
for host, server-reflexive and relayed pairs, against the softphone and PJSIP (pjsua2) as callee.

The network is the one of tests/interop/test_ice_nat.py, built in namespaces (needs root):
coturn (STUN + TURN) and Kamailio (registrar + proxy) on the public side, home A and home B
behind two masquerading routers. The caller is always ``softphone call`` in home A with
firewall_policy=ice, STUN and TURN; the callee (``softphone answer --auto`` or
tests/interop/pjsua2_peer.py ``--ice``, both with the same STUN and TURN server) registers with
Kamailio and stays up for all the calls of one pair type:

* host:  the callee in home A too (the pair joins two host candidates);
* srflx: the callee in home B (checks punch through both NATs);
* relay: the callee in home B, and the public side drops UDP between the two routers.

For every call, from the caller's log (``-vv``, millisecond stamps): 200 OK received -> "ICE
selected a ... pair" (the first stream), and the type of that pair. From the callee: ours, 200
sent -> its pair selected; pjsua2, its "ICE negotiation success after" figure (from the start of
its checks). Printed: medians per pair type and callee; ``--json`` prints one JSON object.
Every process is stopped by its PID, the namespaces are deleted at the end.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

PJSUA2_PEER = ROOT / "tests" / "interop" / "pjsua2_peer.py"
STAMP = r"(\d\d:\d\d:\d\d,\d{3})"
RECEIVED_200 = re.compile(STAMP + r" softphone\.wire DEBUG <<< \S+\nSIP/2\.0 200 ")
SENT_200 = re.compile(STAMP + r" softphone\.wire DEBUG >>> \S+\nSIP/2\.0 200 ")
SELECTED = re.compile(STAMP + r" softphone\.net\.ice INFO ICE selected an? (\w+) pair")
PJ_SUCCESS = re.compile(r"ICE negotiation success after (\d+)s:(\d+)|ICE negotiation success after ([\d.]+)s")
KINDS = ("host", "srflx", "relay")


def _ms(stamp: str) -> float:
    t = datetime.strptime(stamp, "%H:%M:%S,%f")
    return (t.hour * 3600 + t.minute * 60 + t.second) * 1000 + t.microsecond / 1000


def answer_to_selected(log: str, answer: re.Pattern[str]) -> tuple[float, str] | None:
    """ms from the 200 OK (``answer``) to the first "ICE selected" after it, and the pair type."""
    found = answer.search(log)
    if found is None:
        return None
    selected = SELECTED.search(log, found.end())
    if selected is None:
        return None
    return _ms(selected.group(1)) - _ms(found.group(1)), selected.group(2)


def pjsua2_ice_ms(log: str) -> list[float]:
    """pjnath's own "ICE negotiation success after" figures (one per ICE stream)."""
    out = []
    for m in PJ_SUCCESS.finditer(log):
        out.append(int(m.group(1)) * 1000 + int(m.group(2)) if m.group(1) else float(m.group(3)) * 1000)
    return out


def stop(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def median(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


# ------------------------------------------------------------------ the run


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        from tests.interop.netns import PUBLIC_A, TURN_PORT

        self.args = args
        self.work = work
        self.registrar: Any = None
        self.public, self.turn_port = PUBLIC_A, TURN_PORT
        self.servers = (f"stun_server={PUBLIC_A}:{TURN_PORT}\nturn_server={PUBLIC_A}:{TURN_PORT}\n"
                        "turn_username=alice\nturn_password=turnpw\n")

    def softphone(self, netns: str, name: str, *argv: str) -> tuple[subprocess.Popen[bytes], Path]:
        log = self.work / f"{name}.log"
        cmd = ["ip", "netns", "exec", netns, self.args.python, "-m", "softphone", "--json", "-vv", *argv]
        with log.open("wb") as err:
            proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        return proc, log

    def rc(self, name: str, user: str | None) -> Path:
        path = self.work / f"{name}.rc"
        text = f"[net]\nfirewall_policy=ice\n{self.servers}"
        if user is not None:
            text += (f"[sip]\ncontact=sip:{user}@127.0.0.1\n[proxy_0]\nreg_proxy=<sip:{self.public}:"
                     f"{self.registrar.udp_port}>\nreg_identity=sip:{user}@127.0.0.1\nreg_expires=120\n"
                     f"[auth_info_0]\nusername={user}\npasswd={user}pw\n")
        path.write_text(text)
        path.chmod(0o600)
        return path

    def callee(self, peer: str, netns: str, address: str, tag: str) -> tuple[subprocess.Popen[bytes], Path, str]:
        if peer == "softphone":
            proc, log = self.softphone(netns, f"callee-{tag}", "-c", str(self.rc(f"callee-{tag}", "alice")),
                                       "--sip-port", "0", "--rtp-port", "0", "answer", "--auto", "--no-video",
                                       "--audio-source", "tone: 440", "--audio-sink", "null:")
            return proc, log, "alice"
        log = self.work / f"pjsua2-{tag}.log"
        cmd = ["ip", "netns", "exec", netns, self.args.python, str(PJSUA2_PEER), "--ip", address, "--port", "5070",
               "--user", "bob", "--domain", "127.0.0.1", "--password", "bobpw",
               "--register", f"sip:{self.public}:{self.registrar.udp_port}",
               "--ice", "--stun", f"{self.public}:{self.turn_port}", "--turn", f"{self.public}:{self.turn_port}",
               "--turn-user", "alice", "--turn-password", "turnpw", "--codec", "PCMU/8000",
               "--max-time", str(self.args.max_time), "--log-level", "4"]
        with log.open("wb") as err:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        return proc, log, "bob"

    def run_kind(self, layout: Any, kind: str, peer: str) -> dict[str, Any]:
        from tests.interop.netns import HOME_A, HOME_B

        netns, address = (layout.home_a, HOME_A) if kind == "host" else (layout.home_b, HOME_B)
        proc, log, user = self.callee(peer, netns, address, f"{peer}-{kind}")
        result: dict[str, Any] = {"caller_ms": [], "callee_ms": [], "types": [], "failed": 0}
        try:
            self.registrar.wait_registered(user, timeout=20)
            for i in range(self.args.calls):
                caller, caller_log = self.softphone(
                    layout.home_a, f"caller-{peer}-{kind}-{i}", "-c", str(self.rc("caller", None)),
                    "--sip-port", "0", "--rtp-port", "0", "call", f"sip:{user}@{self.public}:{self.registrar.udp_port}",
                    "--duration", str(self.args.duration), "--audio-codec", "PCMU", "--no-video",
                    "--audio-source", "tone: 440", "--audio-sink", "null:")
                try:
                    code = caller.wait(self.args.duration + 40)
                except subprocess.TimeoutExpired:
                    stop(caller)
                    code = -1
                measured = answer_to_selected(caller_log.read_text(errors="replace"), RECEIVED_200)
                if code != 0 or measured is None:
                    result["failed"] += 1
                    continue
                result["caller_ms"].append(measured[0])
                result["types"].append(measured[1])
            time.sleep(0.5)
        finally:
            stop(proc)
        text = log.read_text(errors="replace")
        if peer == "softphone":
            # each selection (audio only: one a call) against the last 200 OK sent before it, the
            # INVITE's (the 200 to a BYE comes after)
            answers = list(SENT_200.finditer(text))
            for selected in SELECTED.finditer(text):
                before = [m for m in answers if m.start() < selected.start()]
                if before:
                    result["callee_ms"].append(_ms(selected.group(1)) - _ms(before[-1].group(1)))
        else:
            result["callee_ms"] = pjsua2_ice_ms(text)
        return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--calls", type=int, default=5, help="calls per pair type and callee (default 5)")
    p.add_argument("--duration", type=float, default=1.0, help="length of each call in s (default 1)")
    p.add_argument("--kinds", default=",".join(KINDS), help="pair types to measure (default host,srflx,relay)")
    p.add_argument("--peers", default="softphone,pjsua2", help="callees to measure (default softphone,pjsua2)")
    p.add_argument("--max-time", type=float, default=600.0, help="bound of each pjsua2 callee's life (s)")
    p.add_argument("--python", default=sys.executable, help="interpreter for the softphones and pjsua2")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (logs)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    peers = [x for x in args.peers.split(",") if x]
    if unknown := [k for k in kinds if k not in KINDS] + [x for x in peers if x not in ("softphone", "pjsua2")]:
        print(f"ice.py: unknown pair type or callee: {', '.join(unknown)}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("ice.py: network namespaces need root", file=sys.stderr)
        return 2

    from tests.interop.conftest import KamailioProcess
    from tests.interop.coturn import coturn
    from tests.interop.netns import PUBLIC_A, TURN_PORT, Network, build_two_nats

    work = Path(tempfile.mkdtemp(prefix="softphone-bench-ice-"))
    bench = Bench(args, work)
    net = Network()
    t_start = time.monotonic()
    out: dict[str, Any] = {"params": {"calls": args.calls, "duration_s": args.duration, "kinds": kinds,
                                      "peers": peers}, "results": {}}
    try:
        layout = build_two_nats(net)
        with coturn(PUBLIC_A, TURN_PORT, work, netns=layout.public):
            for kind in kinds:
                if kind == "relay":
                    layout.block_direct_udp()
                for peer in peers:
                    # a fresh registrar for each callee: registrations live in its memory
                    bench.registrar = KamailioProcess(work / f"kamailio-{peer}-{kind}", netns=layout.public,
                                                      listen=(PUBLIC_A,), relay=("10.0.",))
                    try:
                        r = bench.run_kind(layout, kind, peer)
                    finally:
                        bench.registrar.stop()
                    out["results"].setdefault(kind, {})[peer] = {
                        "caller_median_ms": median(r["caller_ms"]), "callee_median_ms": median(r["callee_ms"]),
                        "ok": len(r["caller_ms"]), "failed": r["failed"],
                        "pair_types": sorted(set(r["types"])), "caller_ms": r["caller_ms"],
                        "callee_ms": r["callee_ms"]}
    finally:
        net.delete()
        if not args.keep:
            subprocess.run(["rm", "-rf", str(work)], check=False)
    out["wall_s"] = round(time.monotonic() - t_start, 1)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"ICE: 200 OK -> selected pair, {args.calls} calls per pair type and callee "
          f"(caller: softphone in home A; coturn STUN+TURN; Kamailio)")
    print(f"{'pair':6} {'callee':10} {'caller median':>14} {'callee median':>14} {'ok/failed':>10}  selected")
    for kind, by_peer in out["results"].items():
        for peer, r in by_peer.items():
            caller = "-" if r["caller_median_ms"] is None else f"{r['caller_median_ms']:.1f} ms"
            callee = "-" if r["callee_median_ms"] is None else f"{r['callee_median_ms']:.1f} ms"
            print(f"{kind:6} {peer:10} {caller:>14} {callee:>14} {r['ok']:>5}/{r['failed']:<4}  "
                  f"{','.join(r['pair_types']) or '-'}")
    print(f"wall time {out['wall_s']} s" + (f", logs in {work}" if args.keep else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
