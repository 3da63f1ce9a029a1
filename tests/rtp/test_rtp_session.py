"""RtpSender numbering, the RTCP interval and RtpSession bookkeeping."""
from __future__ import annotations

import random
from typing import Any

import pytest

from softphone.rtp.packet import RtpPacket
from softphone.rtp.rtcp import (
    Bye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    middle_32,
    ntp_from_unix,
    parse_compound,
    serialize_compound,
)
from softphone.rtp.session import RtcpScheduler, RtpSender, RtpSession

# --- RtpSender -----------------------------------------------------------------


def sent(sender: RtpSender, payload: bytes, **options: Any) -> RtpPacket:
    """The packet ``sender.data`` builds, parsed back."""
    data, stamp = sender.data(payload, **options)
    packet = RtpPacket.parse(data)
    assert packet.timestamp == stamp
    return packet


def test_sender_numbering() -> None:
    sender = RtpSender(0, 8000, ssrc=0xABCDEF, rng=random.Random(1))
    first = sent(sender, b"a", samples=160)
    second = sent(sender, b"b", samples=160, marker=True)
    assert first.ssrc == second.ssrc == 0xABCDEF
    assert second.sequence == (first.sequence + 1) % 65536
    assert second.timestamp == (first.timestamp + 160) % 2**32
    assert sender.next_timestamp == (first.timestamp + 320) % 2**32
    assert (first.marker, second.marker, first.payload, first.payload_type) == (False, True, b"a", 0)


def test_sender_random_initial_values_come_from_the_rng() -> None:
    a = sent(RtpSender(0, 8000, rng=random.Random(7)), b"", samples=160)
    b = sent(RtpSender(0, 8000, rng=random.Random(7)), b"", samples=160)
    c = sent(RtpSender(0, 8000, rng=random.Random(8)), b"", samples=160)
    assert (a.ssrc, a.sequence, a.timestamp) == (b.ssrc, b.sequence, b.timestamp)
    assert (a.ssrc, a.sequence, a.timestamp) != (c.ssrc, c.sequence, c.timestamp)


def test_sender_sequence_and_timestamp_wrap() -> None:
    sender = RtpSender(0, 8000, rng=random.Random(1))
    sender.sequence = 65534
    sender._timestamp = 2**32 - 160
    packets = [sent(sender, b"", samples=160) for _ in range(4)]
    assert [p.sequence for p in packets] == [65534, 65535, 0, 1]
    assert [p.timestamp for p in packets] == [2**32 - 160, 0, 160, 320]


def test_sender_explicit_timestamp_and_payload_type() -> None:
    sender = RtpSender(0, 8000, rng=random.Random(1))
    start = sender.next_timestamp
    event = [sent(sender, b"e", samples=160, payload_type=101, timestamp=start) for _ in range(3)]
    assert [p.timestamp for p in event] == [start] * 3
    assert [p.payload_type for p in event] == [101] * 3
    # the stream clock kept running during the event
    assert sent(sender, b"a", samples=160).timestamp == (start + 480) % 2**32


# --- RtcpScheduler ----------------------------------------------------------------


class EdgeRandom(random.Random):
    def __init__(self, pick: str) -> None:
        super().__init__(0)
        self.pick = pick

    def uniform(self, a: float, b: float) -> float:
        return a if self.pick == "low" else b


def test_first_report_after_half_the_minimum() -> None:
    assert RtcpScheduler(EdgeRandom("low")).next_time(100.0) == pytest.approx(101.25)
    assert RtcpScheduler(EdgeRandom("high")).next_time(100.0) == pytest.approx(103.75)


def test_interval_bounds_use_the_injected_rng() -> None:
    low, high = RtcpScheduler(EdgeRandom("low")), RtcpScheduler(EdgeRandom("high"))
    low.sent(10.0)
    high.sent(10.0)
    assert low.next_time(10.0) == pytest.approx(12.5)
    assert high.next_time(10.0) == pytest.approx(17.5)


def test_intervals_stay_within_half_and_one_and_a_half_minimum() -> None:
    scheduler = RtcpScheduler(random.Random(3), minimum=5.0)
    now = 0.0
    intervals = []
    for _ in range(500):
        scheduler.sent(now)
        nxt = scheduler.next_time(now)
        intervals.append(nxt - now)
        now = nxt
    assert min(intervals) >= 2.5 and max(intervals) <= 7.5
    assert min(intervals) < 3.0 and max(intervals) > 7.0  # really randomized
    assert sum(intervals) / len(intervals) == pytest.approx(5.0, rel=0.05)


def test_due() -> None:
    scheduler = RtcpScheduler(EdgeRandom("low"))
    assert not scheduler.due(0.0)
    assert not scheduler.due(1.2)
    assert scheduler.due(1.25)
    scheduler.sent(1.25)
    assert not scheduler.due(3.7)
    assert scheduler.due(3.75)


# --- RtpSession -------------------------------------------------------------------


def session(seed: int, cname: str = "a@host") -> RtpSession:
    return RtpSession(payload_type=0, clock_rate=8000, cname=cname, rng=random.Random(seed))


def kinds(packets: list[RtcpPacket]) -> list[type]:
    return [type(p) for p in packets]


def test_two_sessions_exchange_media_and_reports() -> None:
    alice, bob = session(1, "alice@a"), session(2, "bob@b")
    delay = 0.050
    lost = 0
    for i in range(500):  # 10 s of 20 ms frames both ways
        now = i * 0.02
        data = alice.prepare(b"\x00" * 160, samples=160, now=now)
        if i > 1 and i % 10 == 5:
            lost += 1  # 10 % of alice's packets never reach bob
        else:
            # alternating +-5 ms of network jitter
            bob.receive_rtp(data, now + delay + (0.005 if i % 2 else -0.005))
        alice.receive_rtp(bob.prepare(b"\x00" * 160, samples=160, now=now), now + delay)
    # alice reports first; bob answers one second later with LSR/DLSR about alice's SR
    now = 10.0
    sr = alice.rtcp_report(now, wallclock=1_700_000_000.0 + now)
    received = bob.receive_rtcp(sr, now + delay)
    assert kinds(received) == [SenderReport, SourceDescription]
    reply = bob.rtcp_report(now + 1.0, wallclock=5_000.0 + now)  # bob's clock is unrelated
    packets = alice.receive_rtcp(reply, now + 1.0 + delay)

    bob_sr = packets[0]
    assert isinstance(bob_sr, SenderReport)
    (block,) = bob_sr.reports
    assert block.ssrc == alice.ssrc
    assert block.cumulative_lost == lost
    assert block.fraction_lost == (lost << 8) // 499  # the first packet is on probation
    assert alice.rtt_ms == pytest.approx(2 * delay * 1000, abs=0.1)
    assert bob.rtt_ms is None  # alice's report had no LSR yet

    assert bob.summary()["rx_packets"] == 499 - lost
    assert bob.summary()["lost"] == lost
    # |D| is 10 ms between neighbours, 0 ms around each lost packet (same jitter sign)
    assert 8.0 < bob.summary()["jitter_ms"] < 10.0  # type: ignore[operator]
    summary = alice.summary()
    assert summary["tx_packets"] == 500 and summary["tx_octets"] == 500 * 160
    assert summary["rx_packets"] == 499 and summary["lost"] == 0 and summary["jitter_ms"] == 0.0
    assert summary["rtt_ms"] == pytest.approx(100.0, abs=0.1)


def test_report_is_rr_with_empty_block_list_before_anything_happens() -> None:
    s = session(1)
    packets = parse_compound(s.rtcp_report(0.0, 1000.0))
    assert packets == [ReceiverReport(s.ssrc, ()), SourceDescription(((s.ssrc, ((1, "a@host"),)),))]


def test_sender_report_contents() -> None:
    s = session(1)
    first_ts = s.sender.next_timestamp
    for i in range(50):
        s.prepare(b"x" * 20, samples=160, now=i * 0.02)
    packets = parse_compound(s.rtcp_report(1.48, wallclock=1_700_000_001.48))
    sr = packets[0]
    assert isinstance(sr, SenderReport)
    assert (sr.packet_count, sr.octet_count) == (50, 1000)
    assert sr.ntp_timestamp == ntp_from_unix(1_700_000_001.48)
    # 0.5 s after the last packet's timestamp (49 * 160): same clock, same offset
    assert sr.rtp_timestamp == (first_ts + 49 * 160 + 4000) % 2**32


def test_sender_report_only_while_sending() -> None:
    s = session(1)
    s.prepare(b"x", samples=160, now=0.0)
    reports = [parse_compound(s.rtcp_report(t, 1000.0 + t))[0] for t in (5.0, 10.0, 15.0)]
    assert kinds(reports) == [SenderReport, SenderReport, ReceiverReport]


def test_malformed_packets_are_counted() -> None:
    s = session(1)
    assert s.receive_rtp(b"\x80\x00", 0.0) is None
    assert s.receive_rtcp(b"\x81\xc9\x00\x07", 0.0) == []
    assert s.malformed == 2
    assert s.summary()["malformed"] == 2


def test_ssrc_change_restarts_the_receiver() -> None:
    s = session(1)
    for seq in range(10):
        s.receive_rtp(bytes(RtpPacket(0, seq, seq * 160, 111)), seq * 0.02)
    assert s.receiver is not None and s.receiver.received == 9
    assert s.receive_rtp(bytes(RtpPacket(0, 500, 0, 222)), 1.0) is None  # probation
    assert s.receive_rtp(bytes(RtpPacket(0, 501, 160, 222)), 1.02) is not None
    assert s.remote_ssrc == 222 and s.receiver.ssrc == 222 and s.receiver.received == 1


def test_duplicates_are_discarded() -> None:
    s = session(1)
    data = [bytes(RtpPacket(0, seq, seq * 160, 111)) for seq in range(5)]
    results = [s.receive_rtp(d, 0.0) for d in data + data[2:4]]
    assert [r is not None for r in results] == [False, True, True, True, True, False, False]
    assert s.summary()["duplicates"] == 2


def test_bye() -> None:
    alice, bob = session(1), session(2)
    data = alice.rtcp_bye(1.0, 1001.0, reason="hangup")
    packets = bob.receive_rtcp(data, 1.0)
    assert kinds(packets) == [ReceiverReport, SourceDescription, Bye]
    assert packets[-1] == Bye((alice.ssrc,), "hangup")
    assert bob.remote_bye is True
    assert alice.remote_bye is False


def test_rtt_from_a_report_about_us() -> None:
    s = session(1)
    s.prepare(b"x", samples=160, now=0.0)
    sr = parse_compound(s.rtcp_report(1.0, wallclock=2000.0))[0]
    assert isinstance(sr, SenderReport)
    # the peer held our SR for 0.25 s; it reaches us 0.5 s after we sent it
    block = ReportBlock(s.ssrc, 0, 0, 0, 0, middle_32(sr.ntp_timestamp), int(0.25 * 65536))
    s.receive_rtcp(serialize_compound([ReceiverReport(99, (block,))]), 1.5)
    assert s.rtt_ms == pytest.approx(250.0, abs=0.05)


def test_first_packet_held_during_probation_is_delivered_after_validation() -> None:
    sender = RtpSession(payload_type=0, clock_rate=8000, cname="a", rng=random.Random(1))
    receiver = RtpSession(payload_type=0, clock_rate=8000, cname="b", rng=random.Random(2))
    first = sender.prepare(b"one", samples=160, now=0.0)
    second = sender.prepare(b"two", samples=160, now=0.02)
    assert receiver.receive_rtp_packets(first, 0.0) == []
    delivered = receiver.receive_rtp_packets(second, 0.02)
    assert [p.payload for p in delivered] == [b"one", b"two"]
    third = sender.prepare(b"three", samples=160, now=0.04)
    assert [p.payload for p in receiver.receive_rtp_packets(third, 0.04)] == [b"three"]


def test_sender_data_is_what_an_rtp_packet_of_its_fields_gives() -> None:
    sender = RtpSender(0, 8000, ssrc=0x1234, rng=random.Random(3))
    for payload, marker, payload_type, timestamp in [(b"a", False, None, None), (b"bc", True, 101, 7),
                                                     (b"", False, 127, None), (b"d" * 160, False, None, 2**32 + 5)]:
        sequence, clock = sender.sequence, sender.next_timestamp
        data, stamp = sender.data(payload, samples=160, marker=marker, payload_type=payload_type, timestamp=timestamp)
        assert stamp == (clock if timestamp is None else timestamp % 2**32)
        expected = RtpPacket(0 if payload_type is None else payload_type, sequence, stamp, 0x1234, payload, marker)
        assert data == bytes(expected)
    with pytest.raises(ValueError, match="payload_type 128"):
        sender.data(b"", samples=160, payload_type=128)
