"""Retransmission of lost video packets (RFC 4585 generic NACK), both ends, without I/O.

The receiver puts packets back in sequence order (:class:`ReorderBuffer`) and, when a
sequence number is missing, asks the sender for it (:class:`NackTracker`), again after
a round trip if it has not come, a few times at most. The buffer holds the packets
after a hole until the missing one arrives or its time is up, so a frame is only
handed on with a hole when retransmission failed. The sender keeps what it sent for a
while (:class:`SentHistory`) and sends a packet again, unchanged, when it is asked for
it: same SSRC, same sequence number (no RTX stream), as baresip and linphone do.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .packet import RtpPacket
from .packet import serial_diff as seq_diff
from .stats import MAX_DROPOUT as RESTART_DISTANCE  # this far from the expected one starts over

# More packets missing at once than this is an outage, not loss to repair packet by
# packet: a keyframe (a PLI) costs less than sending it all again, and comes sooner.
MAX_GAP = 32


def hold_time(rtt: float | None) -> float:
    """How long to wait for a missing packet: two round trips and a margin, within 60-400 ms."""
    return min(0.4, max(0.06, 2 * (rtt if rtt is not None else 0.1) + 0.04))


def retry_time(rtt: float | None) -> float:
    """How long after a NACK to ask again for a packet still missing."""
    return min(0.3, max(0.02, 1.2 * (rtt if rtt is not None else 0.1) + 0.01))


@dataclass
class _Missing:
    since: float
    asked: int = 0
    next_ask: float = 0.0


class NackTracker:
    """Which sequence numbers are missing, and which of them to ask for now."""

    def __init__(self, max_requests: int = 3, max_age: float = 1.0) -> None:
        self.max_requests = max_requests
        self.max_age = max_age
        self.highest: int | None = None
        self.missing: dict[int, _Missing] = {}
        self.requested = 0  # sequence numbers asked for, counting each NACK
        self.recovered = 0  # missing packets that came after all

    def received(self, seq: int, now: float) -> bool:
        """Note a packet; True when it ends an outage (more than MAX_GAP missing before it)."""
        if self.highest is None:
            self.highest = seq
            return False
        ahead = seq_diff(seq, self.highest)
        outage = ahead > MAX_GAP
        if ahead > 0:
            if outage:
                self.missing.clear()
            else:
                for offset in range(1, ahead):
                    self.missing[(self.highest + offset) & 0xFFFF] = _Missing(now, next_ask=now)
            self.highest = seq
        elif self.missing.pop(seq, None) is not None:
            self.recovered += 1
        elif -ahead > RESTART_DISTANCE:
            self.highest, self.missing = seq, {}
        return outage

    def due(self, now: float, rtt: float | None) -> list[int]:
        """The sequence numbers to put in a NACK now; forgets the ones asked for too often."""
        out: list[int] = []
        for seq, entry in list(self.missing.items()):
            if entry.asked >= self.max_requests or now - entry.since > self.max_age:
                del self.missing[seq]
            elif entry.next_ask <= now:
                entry.asked += 1
                entry.next_ask = now + retry_time(rtt)
                out.append(seq)
        self.requested += len(out)
        return out

    def give_up(self, seq: int) -> None:
        """The receiver went on without this packet: no use asking for it any more."""
        self.missing.pop(seq, None)

    def next_due(self) -> float | None:
        pending = [e.next_ask for e in self.missing.values() if e.asked < self.max_requests]
        return min(pending) if pending else None


class ReorderBuffer:
    """Hands packets on in sequence order, waiting at a hole for a while.

    ``push`` returns the packets that are now in order; ``expire`` skips a hole whose
    wait is over and returns what follows it. A packet older than what was already
    handed on is dropped and counted as ``late``; one seen twice, as ``duplicates``.
    """

    def __init__(self, capacity: int = 1024) -> None:
        self.capacity = capacity
        self.expected: int | None = None
        self.held: dict[int, RtpPacket] = {}
        self.hole_since: float | None = None  # when the packet we wait for was first missed
        self.late = 0
        self.duplicates = 0
        self.skipped = 0  # sequence numbers given up on

    def push(self, packet: RtpPacket, now: float) -> list[RtpPacket]:
        seq = packet.sequence
        if self.expected is None:
            self.expected = seq
        behind = seq_diff(self.expected, seq)
        if abs(behind) > RESTART_DISTANCE:
            out = self._flush()  # a restarted stream: hand on what is held, start over
            self.expected = seq
            return out + self.push(packet, now)
        if behind > 0:
            self.late += 1
            return []
        if seq in self.held:
            self.duplicates += 1
            return []
        self.held[seq] = packet
        out = self._release()
        if self.held and self.hole_since is None:
            self.hole_since = now
        if len(self.held) > self.capacity:
            out += self._skip_hole()[0]
            self.hole_since = now if self.held else None
        return out

    def deadline(self, wait: float) -> float | None:
        """When the current hole's wait is over (None when nothing is held)."""
        return None if self.hole_since is None else self.hole_since + wait

    def expire(self, now: float, wait: float) -> tuple[list[RtpPacket], list[int]]:
        """Skip the hole if its wait is over: (packets now in order, sequence numbers given up).

        The next hole, if any, starts its own wait now."""
        if self.hole_since is None or now < self.hole_since + wait:
            return [], []
        out, skipped = self._skip_hole()
        self.hole_since = now if self.held else None
        return out, skipped

    def _release(self) -> list[RtpPacket]:
        out: list[RtpPacket] = []
        while self.expected in self.held:
            out.append(self.held.pop(self.expected))
            self.expected = (self.expected + 1) & 0xFFFF
        if out:
            self.hole_since = None
        return out

    def _skip_hole(self) -> tuple[list[RtpPacket], list[int]]:
        """Go on past the hole at the head, to the oldest packet held."""
        expected = self.expected
        if not self.held or expected is None:
            return [], []
        oldest = min(self.held, key=lambda s: seq_diff(s, expected))
        skipped = [(expected + i) & 0xFFFF for i in range(seq_diff(oldest, expected))]
        self.skipped += len(skipped)
        self.expected = oldest
        return self._release(), skipped

    def _flush(self) -> list[RtpPacket]:
        out: list[RtpPacket] = []
        while self.held:
            out += self._skip_hole()[0]
        self.hole_since = None
        return out


class SentHistory:
    """The packets sent lately, by sequence number, to send again on request."""

    def __init__(self, size: int = 1024, min_interval: float = 0.02) -> None:
        self.size = size
        self.min_interval = min_interval
        self._packets: OrderedDict[int, tuple[bytes, float]] = OrderedDict()
        self.retransmitted = 0

    def add(self, packet: bytes) -> None:
        seq = int.from_bytes(packet[2:4], "big")
        self._packets[seq] = (packet, float("-inf"))
        self._packets.move_to_end(seq)
        while len(self._packets) > self.size:
            self._packets.popitem(last=False)

    def resend(self, lost: tuple[int, ...] | list[int], now: float) -> list[bytes]:
        """The packets to send again for a NACK; one asked for twice within ``min_interval`` goes once."""
        out: list[bytes] = []
        for seq in lost:
            entry = self._packets.get(seq)
            if entry is None or now - entry[1] < self.min_interval:
                continue
            self._packets[seq] = (entry[0], now)
            out.append(entry[0])
        self.retransmitted += len(out)
        return out
