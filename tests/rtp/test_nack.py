"""Generic NACK bookkeeping: what is missing, when to ask, the order packets go on in, and resending."""
from __future__ import annotations

from softphone.rtp.nack import MAX_GAP, NackTracker, ReorderBuffer, SentHistory, hold_time, retry_time, seq_diff
from softphone.rtp.packet import RtpPacket
from softphone.rtp.rtcp import GenericNack, parse_compound, serialize_compound


def pkt(seq: int, ts: int = 0) -> RtpPacket:
    return RtpPacket(payload_type=96, sequence=seq & 0xFFFF, timestamp=ts, ssrc=1, payload=b"x")


def seqs(packets: list[RtpPacket]) -> list[int]:
    return [p.sequence for p in packets]


# ------------------------------------------------------------------ tracker


def test_gap_is_asked_for_at_once_then_after_a_round_trip():
    t = NackTracker(max_requests=3)
    for seq in (10, 11, 14):
        t.received(seq, 0.0)
    assert t.due(0.0, rtt=0.05) == [12, 13]
    assert t.due(0.01, rtt=0.05) == []  # asked already, a round trip has not passed
    assert t.due(0.0 + retry_time(0.05), rtt=0.05) == [12, 13]
    t.received(12, 0.1)
    assert t.recovered == 1
    assert t.due(1.0 * retry_time(0.05) * 3, rtt=0.05) == [13]
    # three requests at most, then it is forgotten
    assert t.due(10 * retry_time(0.05), rtt=0.05) == []
    assert t.missing == {}
    assert t.requested == 5


def test_tracker_across_the_sequence_wrap():
    t = NackTracker()
    t.received(0xFFFE, 0.0)
    t.received(1, 0.0)
    assert t.due(0.0, None) == [0xFFFF, 0]


def test_an_outage_is_not_repaired():
    t = NackTracker()
    assert t.received(100, 0.0) is False
    assert t.received(100 + MAX_GAP + 1, 0.0) is True
    assert t.due(0.0, None) == []
    assert t.received(100 + 2 * MAX_GAP + 1, 0.0) is False
    assert len(t.due(0.0, None)) == MAX_GAP - 1


def test_old_entries_expire():
    t = NackTracker(max_requests=100, max_age=0.5)
    t.received(1, 0.0)
    t.received(3, 0.0)
    assert t.due(0.0, None) == [2]
    assert t.due(0.6, None) == []
    assert t.next_due() is None


def test_given_up_packets_are_not_asked_for():
    t = NackTracker()
    t.received(1, 0.0)
    t.received(4, 0.0)
    t.give_up(2)
    assert t.due(0.0, None) == [3]


# ------------------------------------------------------------------ reorder buffer


def test_in_order_packets_go_straight_through():
    b = ReorderBuffer()
    assert seqs(b.push(pkt(5), 0.0)) == [5]
    assert seqs(b.push(pkt(6), 0.0)) == [6]
    assert b.deadline(0.1) is None


def test_reordered_packets_are_put_back_in_order():
    b = ReorderBuffer()
    b.push(pkt(1), 0.0)
    assert b.push(pkt(3), 0.0) == []
    assert b.push(pkt(4), 0.0) == []
    assert seqs(b.push(pkt(2), 0.01)) == [2, 3, 4]
    assert b.deadline(0.1) is None


def test_a_hole_is_skipped_when_its_wait_is_over():
    b = ReorderBuffer()
    b.push(pkt(1), 0.0)
    b.push(pkt(4), 0.0)
    b.push(pkt(5), 0.0)
    assert b.deadline(0.1) == 0.1
    assert b.expire(0.05, 0.1) == ([], [])
    released, skipped = b.expire(0.1, 0.1)
    assert seqs(released) == [4, 5] and skipped == [2, 3]
    assert b.skipped == 2
    # the retransmission that comes too late is dropped
    assert b.push(pkt(2), 0.2) == [] and b.late == 1


def test_a_second_hole_starts_its_own_wait():
    b = ReorderBuffer()
    b.push(pkt(1), 0.0)
    b.push(pkt(3), 0.0)
    b.push(pkt(5), 0.05)
    released, skipped = b.expire(0.1, 0.1)
    assert seqs(released) == [3] and skipped == [2]
    assert b.deadline(0.1) == 0.2
    released, skipped = b.expire(0.2, 0.1)
    assert seqs(released) == [5] and skipped == [4]


def test_duplicates_and_wrap():
    b = ReorderBuffer()
    assert seqs(b.push(pkt(0xFFFF), 0.0)) == [0xFFFF]
    assert b.push(pkt(1), 0.0) == []
    assert b.push(pkt(1), 0.0) == [] and b.duplicates == 1
    assert seqs(b.push(pkt(0), 0.0)) == [0, 1]


def test_a_restarted_stream_is_followed():
    b = ReorderBuffer()
    b.push(pkt(100), 0.0)
    b.push(pkt(102), 0.0)
    assert seqs(b.push(pkt(30000), 0.0)) == [102, 30000]


def test_the_buffer_is_bounded():
    b = ReorderBuffer(capacity=8)
    b.push(pkt(0), 0.0)
    out = []
    for seq in range(2, 12):
        out += b.push(pkt(seq), 0.0)
    # the ninth packet held gives up on the hole: everything goes on, then in order again
    assert seqs(out) == list(range(2, 12))
    assert b.skipped == 1 and not b.held


# ------------------------------------------------------------------ sender history


def test_history_resends_what_is_asked_once_per_interval():
    h = SentHistory(size=4, min_interval=0.02)
    sent = [bytes(pkt(seq)) for seq in range(10, 16)]
    for data in sent:
        h.add(data)
    assert h.resend([10, 11], 0.0) == []  # fell out of the history
    assert h.resend([12, 15, 99], 0.0) == [sent[2], sent[5]]
    assert h.resend([12], 0.01) == []  # asked twice at once: sent once
    assert h.resend([12], 0.05) == [sent[2]]
    assert h.retransmitted == 3


def test_nack_on_the_wire_round_trip():
    lost = (7, 8, 9, 30, 0xFFFF)
    wire = serialize_compound([GenericNack(1, 2, lost)])
    (nack,) = parse_compound(wire)
    assert isinstance(nack, GenericNack) and sorted(nack.lost) == sorted(lost)


def test_wait_and_retry_follow_the_round_trip():
    assert abs(hold_time(None) - 0.24) < 1e-9
    assert hold_time(0.001) == 0.06
    assert hold_time(5.0) == 0.4
    assert retry_time(0.05) < hold_time(0.05)
    assert seq_diff(0, 0xFFFF) == 1 and seq_diff(0xFFFF, 0) == -1
