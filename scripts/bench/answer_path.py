#!/usr/bin/env python3
"""The answer's own time, in one process: from an INVITE's datagram to its 200 handed to the socket.

``call_setup.py`` times INVITE->200 as SIPp sees it, which includes waking the answerer's
process and SIPp's own scheduling. This script times only the phone's part. It runs the
phone that ``softphone answer --auto --delay 0`` runs, bound to 127.0.0.1, and feeds its
SIP network SIPp's audio+video INVITE (the one in tests/interop/scenarios/uac_av.xml),
``--calls`` times, ``--gap-ms`` apart. After each 200 it feeds the ACK and the BYE, as
SIPp's 0-ms calls do. The first ``--skip`` INVITEs (default 5) are not counted.

    .venv/bin/python scripts/bench/answer_path.py                # 1 ms and 50 ms between calls
    .venv/bin/python scripts/bench/answer_path.py --gap-ms 50 --profile
    .venv/bin/python scripts/bench/answer_path.py --instructions    # counted by valgrind
    .venv/bin/python scripts/bench/answer_path.py --cache-lines     # and the cache lines it fetches

With 1 ms between calls the interpreter's code and data are mostly still in the caches. With
50 ms, as in ``call_setup.py`` at 20 calls/s, they have to come back from memory. ``--profile``
adds cProfile's figures for the path to the 200, summed per source file, and the heaviest
functions. ``--instructions`` runs it under valgrind's callgrind instead (``valgrind`` on the
PATH; 30 calls 200 ms apart) and gives the instructions of the phone's thread from each
INVITE's datagram to its 200, which do not depend on what else the machine does.
``--cache-lines`` does the same with callgrind's cache simulation (32 KiB first-level caches,
a 1 MiB last level like this machine's L2 per core), 96 MiB written before each counted INVITE
to empty them: the lines a cold answer has to fetch, for its instructions and its data.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import functools
import io
import os
import pstats
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from softphone import cli  # noqa: E402
from softphone.phone import Phone  # noqa: E402
from softphone.sip.endpoint import Peer  # noqa: E402

HOST = "127.0.0.1"
SDP = (
    "v=0\r\no=sippuac 53655765 2353687637 IN IP4 {host}\r\ns=sipp-uac\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
    "m=audio 6000 RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=sendrecv\r\n"
    "m=video 6002 RTP/AVP 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 H264/90000\r\n"
    "a=fmtp:97 profile-level-id=42e01f;packetization-mode=1\r\na=sendrecv\r\n"
)
REQUEST = (
    "{method} sip:service@{host}:{port} SIP/2.0\r\n"
    "Via: SIP/2.0/UDP {host}:{sport};branch=z9hG4bK-{n}-{cseq}-0\r\n"
    "From: sipp <sip:sipp@{host}>;tag={n}SIPpTag00{n}\r\n"
    "To: <sip:service@{host}:{port}>{to_tag}\r\n"
    "Call-ID: {n}-4242@{host}\r\n"
    "CSeq: {cseq} {method}\r\n"
    "Contact: <sip:sipp@{host}:{sport};transport=UDP>\r\n"
    "Max-Forwards: 70\r\n"
    "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS\r\n"
    "User-Agent: sipp\r\n"
    "{content_type}Content-Length: {length}\r\n\r\n{body}"
)
TO_TAG = re.compile(rb"\r\nTo:[^\r]*;tag=([^;\r]+)")
FLUSH = bytearray(0)  # --flush: more than any cache simulated
CACHES = ["--cache-sim=yes", "--I1=32768,8,64", "--D1=32768,8,64", "--LL=1048576,16,64"]


def request(method: str, n: int, cseq: int, port: int, sport: int, to_tag: str = "") -> bytes:
    body = SDP.format(host=HOST) if method == "INVITE" else ""
    return REQUEST.format(
        method=method, host=HOST, port=port, sport=sport, n=n, cseq=cseq, to_tag=f";tag={to_tag}" if to_tag else "",
        content_type="Content-Type: application/sdp\r\n" if body else "", length=len(body), body=body,
    ).encode()


class Watch:
    """The phone's UDP transport, noting when each 200 to an INVITE is handed to it."""

    def __init__(self, transport: asyncio.DatagramTransport, profiler: cProfile.Profile | None,
                 marked: bool = False) -> None:
        self.transport = transport
        self.profiler = profiler
        self.marked = marked  # under callgrind: zlib.crc32 marks each counted 200
        self.started: float | None = None
        self.times: list[float] = []
        self.to_tag = ""

    def __getattr__(self, name: str) -> object:
        return getattr(self.transport, name)

    def sendto(self, data: bytes, addr: object = None) -> None:
        if data.startswith(b"SIP/2.0 200") and b" INVITE\r\n" in data:
            if self.started is not None:
                if self.marked:
                    zlib.crc32(b"")
                self.times.append(time.perf_counter() - self.started)
                self.started = None
                if self.profiler is not None:
                    self.profiler.disable()
            found = TO_TAG.search(data)
            self.to_tag = found.group(1).decode() if found else ""
        self.transport.sendto(data, addr)


async def feed(phone: Phone, args: argparse.Namespace, gap: float, sink: socket.socket,
               profiler: cProfile.Profile | None) -> list[float]:
    network = phone.network
    watch = Watch(network._udp, profiler, args.marked)  # type: ignore[arg-type]
    network._udp = watch  # type: ignore[assignment]
    port, sport = phone.ports()["udp"], sink.getsockname()[1]
    source = Peer("udp", HOST, sport)
    await asyncio.sleep(1.0)  # the media libraries load after start
    for n in range(args.calls):
        await asyncio.sleep(gap)
        counted = n >= args.skip
        if counted and profiler is not None:
            profiler.enable()
        if counted and args.flush:
            FLUSH[::64] = bytes(len(FLUSH) // 64)  # a write to every line: the caches hold nothing of the phone
        watch.started = time.perf_counter() if counted else None
        invite = request("INVITE", n, 1, port, sport)
        if counted and args.marked:  # under callgrind: functools.reduce marks each counted INVITE
            functools.reduce(lambda _a, _b: network.received(invite, source), [0, 0])
        else:
            network.received(invite, source)
        if profiler is not None:
            profiler.disable()
        await asyncio.sleep(0.002)  # the call's media starts, as it would
        network.received(request("ACK", n, 1, port, sport, watch.to_tag), source)
        network.received(request("BYE", n, 2, port, sport, watch.to_tag), source)
    await asyncio.sleep(0.2)
    return watch.times


def print_profile(profiler: cProfile.Profile, invites: int) -> None:
    stats = pstats.Stats(profiler, stream=io.StringIO())
    per_file: collections.Counter[str] = collections.Counter()
    calls: collections.Counter[str] = collections.Counter()
    for (path, _, _), (_, ncalls, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        name = "(built-in functions)" if path == "~" else path.replace(str(ROOT) + os.sep, "")
        per_file[name] += own
        calls[name] += ncalls
    total = sum(per_file.values()) or 1.0
    print(f"profile of the path to the 200 ({invites} INVITEs; {sum(calls.values()) / invites:.0f} calls each):")
    for name, own in per_file.most_common(15):
        print(f"  {own / total * 100:5.1f} %  {calls[name] / invites:6.1f} calls/INVITE  {name}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(15)
    print(out.getvalue())


def run(args: argparse.Namespace, gap_ms: float, profiler: cProfile.Profile | None) -> list[float]:
    results: list[float] = []
    original = Phone.start

    async def start(phone: Phone) -> None:
        await original(phone)
        task = asyncio.get_running_loop().create_task(feed(phone, args, gap_ms / 1000, sink, profiler))

        def done(t: asyncio.Task[list[float]]) -> None:
            results.extend(t.result())
            os.kill(os.getpid(), signal.SIGINT)  # ends `answer` as Ctrl-C would

        task.add_done_callback(done)

    with tempfile.TemporaryDirectory(prefix="softphone-bench-") as work, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind((HOST, 0))  # where the responses go, never read
        rc = Path(work) / "softphone.rc"
        rc.write_text("[sip]\nmax_requests_per_second=0\nmax_transactions=0\nmax_dialogs=0\n")
        Phone.start = start  # type: ignore[method-assign]
        stdout, sys.stdout = sys.stdout, open(os.devnull, "w")  # the phone's JSON event lines
        try:
            cli.main(["--json", "-c", str(rc), "--bind", HOST, "--sip-port", "0", "--rtp-port", "0",
                      "answer", "--auto", "--delay", "0", "--max-calls", "100000"])
        finally:
            sys.stdout.close()
            sys.stdout = stdout
            Phone.start = original  # type: ignore[method-assign]
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--calls", type=int, default=150, help="INVITEs fed (default 150)")
    p.add_argument("--skip", type=int, default=5, help="first INVITEs not counted (default 5)")
    p.add_argument("--gap-ms", type=float, nargs="+", default=[1.0, 50.0],
                   help="ms between calls, one run each (default 1 50)")
    p.add_argument("--profile", action="store_true", help="cProfile the path to the 200 (slows it down)")
    p.add_argument("--instructions", action="store_true",
                   help="count the path's instructions under valgrind's callgrind (30 calls, 200 ms apart)")
    p.add_argument("--cache-lines", action="store_true",
                   help="the same with callgrind's cache simulation, the caches emptied before each INVITE")
    p.add_argument("--marked", action="store_true", help=argparse.SUPPRESS)  # the run that callgrind counts
    p.add_argument("--flush", action="store_true", help=argparse.SUPPRESS)  # empties the caches before each
    args = p.parse_args(argv)
    if args.calls <= args.skip:
        p.error("--calls must be above --skip")
    if args.flush:
        FLUSH.extend(bytes(96 << 20))
    if args.instructions or args.cache_lines:
        return count_instructions(caches=args.cache_lines)
    print(f"datagram -> 200 handed to the socket, SIPp's audio+video INVITE, {args.calls - args.skip} calls")
    for gap in args.gap_ms:
        profiler = cProfile.Profile() if args.profile else None
        times = sorted(t * 1e6 for t in run(args, gap, profiler))
        if not times:
            print(f"gap {gap:g} ms: no 200 seen")
            return 1
        print(f"gap {gap:6g} ms: median {statistics.median(times):7.1f} us  p10 {times[len(times) // 10]:7.1f}  "
              f"p90 {times[len(times) * 9 // 10]:7.1f}  ({len(times)} answers)")
        if profiler is not None:
            print_profile(profiler, len(times))
    return 0


def count_instructions(calls: int = 30, skip: int = 10, caches: bool = False) -> int:
    """This script under callgrind, a profile dumped at each mark: a dump that ends at a 200
    (zlib.crc32) holds what the phone's thread did since its INVITE (functools.reduce). With
    ``caches``, callgrind simulates the caches and the script empties them before each INVITE."""
    with tempfile.TemporaryDirectory(prefix="softphone-callgrind-") as work:
        cmd = ["valgrind", "--tool=callgrind", *(CACHES if caches else []), "--separate-threads=yes",
               "--dump-before=functools_reduce", "--dump-before=zlib_crc32", sys.executable,
               str(Path(__file__).resolve()), "--marked", *(["--flush"] if caches else []),
               "--calls", str(calls), "--skip", str(skip), "--gap-ms", "200"]
        try:
            done = subprocess.run(cmd, cwd=work, capture_output=True, text=True, timeout=900)
        except FileNotFoundError:
            print("valgrind is not installed")
            return 1
        counts: list[list[int]] = []
        for dump in Path(work).glob("callgrind.out.*-01"):  # thread 1: the event loop's
            text = dump.read_text()
            if "Trigger: --dump-before=zlib_crc32" in text:
                found = re.search(r"^summary: ([\d ]+)$", text, re.M)
                if found:
                    counts.append([int(n) for n in found.group(1).split()])
    if not counts:
        print("no 200 counted:", done.stderr[-2000:])
        return 1
    ir = sorted(c[0] for c in counts)
    print(f"INVITE datagram -> 200 handed to the socket: median {statistics.median(ir) / 1e6:.3f} M "
          f"instructions (min {ir[0] / 1e6:.3f} M, max {ir[-1] / 1e6:.3f} M, {len(counts)} answers)")
    if caches:  # events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw
        code, read, written = (statistics.median(c[i] for c in counts) for i in (6, 7, 8))
        lines = code + read + written
        print(f"lines fetched into the emptied caches (median): {code:.0f} of instructions, {read:.0f} read, "
              f"{written:.0f} written: {lines:.0f} lines, {lines * 64 / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
