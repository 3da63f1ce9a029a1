#!/usr/bin/env python3
"""A userspace link impairer: delay, jitter and random loss through NFQUEUE.

Run it inside the network namespace whose packets an iptables rule sends to
the queue, e.g.

    iptables -A OUTPUT -o veth0 -j NFQUEUE --queue-num 0 --queue-bypass
    python impairer.py --queue 0 --delay 40 --jitter 20 --loss 5 --seconds 120

Each packet is dropped with probability --loss %, otherwise held for
--delay +- --jitter ms (uniform, per packet) before it is accepted.  With
--keep-order a packet never leaves before the one queued ahead of it (its
release time is at least the previous one's), else packets may be reordered
as on a real path with per-packet jitter.  The run is bounded by --seconds;
SIGTERM or SIGINT end it early.  On exit every held packet is released and
one JSON line of counters is printed on stdout.
"""
from __future__ import annotations

import argparse
import heapq
import json
import random
import select
import signal
import sys
import time

from netfilterqueue import COPY_META, NetfilterQueue


class Impairer:
    def __init__(self, delay_ms: float, jitter_ms: float, loss_pct: float, keep_order: bool,
                 seed: int | None) -> None:
        self.delay = delay_ms / 1000.0
        self.jitter = jitter_ms / 1000.0
        self.loss = loss_pct / 100.0
        self.keep_order = keep_order
        self.rnd = random.Random(seed)
        self.held: list[tuple[float, int, object]] = []
        self.seq = 0
        self.last_release = 0.0
        self.stats = {"seen": 0, "dropped": 0, "accepted": 0, "reordered_allowed": not keep_order}

    def on_packet(self, pkt) -> None:  # called by NetfilterQueue.run()
        self.stats["seen"] += 1
        if self.rnd.random() < self.loss:
            pkt.drop()
            self.stats["dropped"] += 1
            return
        hold = max(0.0, self.delay + self.rnd.uniform(-self.jitter, self.jitter))
        release = time.monotonic() + hold
        if self.keep_order:
            release = max(release, self.last_release)
            self.last_release = release
        self.seq += 1
        heapq.heappush(self.held, (release, self.seq, pkt))

    def release_due(self, now: float) -> None:
        while self.held and self.held[0][0] <= now:
            heapq.heappop(self.held)[2].accept()  # type: ignore[attr-defined]
            self.stats["accepted"] += 1

    def release_all(self) -> None:
        while self.held:
            heapq.heappop(self.held)[2].accept()  # type: ignore[attr-defined]
            self.stats["accepted"] += 1

    def next_wait(self, now: float) -> float:
        return min(0.2, max(0.0, self.held[0][0] - now)) if self.held else 0.2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--queue", type=int, default=0, help="NFQUEUE number")
    ap.add_argument("--delay", type=float, default=40.0, help="mean one-way delay (ms)")
    ap.add_argument("--jitter", type=float, default=20.0, help="+- uniform jitter (ms)")
    ap.add_argument("--loss", type=float, default=5.0, help="random loss (percent)")
    ap.add_argument("--keep-order", action="store_true", help="never reorder packets")
    ap.add_argument("--seconds", type=float, default=120.0, help="bounded lifetime (s)")
    ap.add_argument("--seed", type=int, default=None)
    a = ap.parse_args()

    imp = Impairer(a.delay, a.jitter, a.loss, a.keep_order, a.seed)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))

    nfq = NetfilterQueue()
    nfq.bind(a.queue, imp.on_packet, max_len=10000, mode=COPY_META)
    fd = nfq.get_fd()
    print(json.dumps({"ready": True, "queue": a.queue}), flush=True)
    end = time.monotonic() + a.seconds
    try:
        while not stop and time.monotonic() < end:
            try:
                readable, _, _ = select.select([fd], [], [], imp.next_wait(time.monotonic()))
            except InterruptedError:
                continue
            if readable:
                nfq.run(block=False)
            imp.release_due(time.monotonic())
    finally:
        imp.release_all()
        nfq.unbind()
        print(json.dumps({"done": True, **imp.stats}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
