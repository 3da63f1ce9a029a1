"""RFC 3550 Appendix A.1 (sequence validation), A.3 (loss) and A.8 (jitter)."""
from __future__ import annotations

import pytest

from softphone.rtp.packet import RtpPacket
from softphone.rtp.rtcp import ReportBlock
from softphone.rtp.stats import ReceiverStatistics, SenderStatistics, round_trip_time

SSRC = 0x1234


def rtp(seq: int, ts: int = 0, payload: bytes = b"") -> RtpPacket:
    return RtpPacket(0, seq % 65536, ts % 2**32, SSRC, payload)


def feed(stats: ReceiverStatistics, seqs: list[int]) -> list[bool]:
    return [stats.update(rtp(seq), arrival=0.0) for seq in seqs]


# --- A.1 sequence validation ---------------------------------------------------


def test_probation_discards_the_first_packet() -> None:
    stats = ReceiverStatistics(8000)
    assert feed(stats, [100, 101, 102]) == [False, True, True]
    assert (stats.received, stats.expected, stats.lost) == (2, 2, 0)
    assert stats.ssrc == SSRC


def test_probation_restarts_on_a_gap() -> None:
    stats = ReceiverStatistics(8000)
    assert feed(stats, [10, 20, 21, 22]) == [False, False, True, True]
    assert stats.expected == 2


def test_no_statistics_before_probation_ends() -> None:
    stats = ReceiverStatistics(8000)
    feed(stats, [10])
    assert (stats.received, stats.expected, stats.lost) == (0, 0, 0)


def test_sequence_wrap_counts_a_cycle() -> None:
    stats = ReceiverStatistics(8000)
    seqs = list(range(65530, 65536)) + list(range(0, 6))
    assert all(feed(stats, seqs)[1:])
    assert stats.cycles == 65536
    assert stats.extended_max_sequence == 65536 + 5
    assert (stats.received, stats.expected, stats.lost) == (11, 11, 0)


def test_big_jump_is_discarded_once_then_accepted_as_a_restart() -> None:
    stats = ReceiverStatistics(8000)
    feed(stats, list(range(100, 110)))
    assert feed(stats, [5000, 5001, 5002]) == [False, True, True]
    # "two sequential packets -- assume that the other side restarted"
    assert (stats.received, stats.expected, stats.extended_max_sequence) == (2, 2, 5002)


def test_a_stray_big_jump_does_not_disturb_the_stream() -> None:
    stats = ReceiverStatistics(8000)
    feed(stats, list(range(100, 110)))
    assert feed(stats, [9000, 110, 111]) == [False, True, True]
    assert (stats.received, stats.expected, stats.lost) == (11, 11, 0)


def test_dropout_below_max_dropout_counts_as_loss() -> None:
    stats = ReceiverStatistics(8000)
    feed(stats, [1, 2, 3])
    assert feed(stats, [2003]) == [True]
    assert (stats.received, stats.expected, stats.lost) == (3, 2002, 1999)


def test_duplicates_are_discarded_and_counted() -> None:
    stats = ReceiverStatistics(8000)
    assert feed(stats, [1, 2, 3, 3, 4, 2]) == [True if i not in (0, 3, 5) else False for i in range(6)]
    assert stats.duplicates == 2
    assert (stats.received, stats.expected, stats.lost) == (3, 3, 0)


def test_reordered_packets_are_accepted() -> None:
    stats = ReceiverStatistics(8000)
    assert feed(stats, [1, 2, 4, 3, 5]) == [False, True, True, True, True]
    assert (stats.received, stats.lost, stats.extended_max_sequence) == (4, 0, 5)


def test_reordering_across_the_wrap() -> None:
    stats = ReceiverStatistics(8000)
    assert feed(stats, [65533, 65534, 0, 65535, 1]) == [False, True, True, True, True]
    assert (stats.received, stats.lost, stats.extended_max_sequence) == (4, 0, 65536 + 1)
    assert stats.update(rtp(65535), 0.0) is False  # a duplicate from before the wrap
    assert stats.duplicates == 1


def test_other_ssrc_is_ignored() -> None:
    stats = ReceiverStatistics(8000, ssrc=99)
    assert stats.update(rtp(1), 0.0) is False


# --- A.3 expected, lost, fraction ---------------------------------------------------


def test_ten_percent_loss_gives_fraction_25() -> None:
    stats = ReceiverStatistics(8000)
    feed(stats, [1000, 1001])
    stats.report_block(0.0, None)  # starts the interval
    feed(stats, [seq for seq in range(1002, 1102) if seq % 10 != 5])
    block = stats.report_block(1.0, None)
    assert block.fraction_lost == 25  # (10 << 8) // 100
    assert block.cumulative_lost == 10
    assert block.highest_sequence == 1101
    assert block.ssrc == SSRC
    # the next interval has no loss
    feed(stats, list(range(1102, 1110)))
    assert stats.report_block(2.0, None).fraction_lost == 0
    assert stats.report_block(3.0, None).fraction_lost == 0  # empty interval


def test_report_block_lsr_and_dlsr() -> None:
    stats = ReceiverStatistics(8000)
    feed(stats, [1, 2])
    block = stats.report_block(11.5, (0xB2C38000, 10.0))
    assert (block.lsr, block.dlsr) == (0xB2C38000, 0x18000)  # 1.5 s in 1/65536 s
    assert (stats.report_block(11.5, None).lsr, stats.report_block(11.5, None).dlsr) == (0, 0)


def test_extended_highest_sequence_in_report_includes_cycles() -> None:
    stats = ReceiverStatistics(8000)
    feed(stats, [65534, 65535, 0, 1])
    assert stats.report_block(0.0, None).highest_sequence == 0x10001


# --- A.8 interarrival jitter ---------------------------------------------------------


def feed_timed(stats: ReceiverStatistics, arrivals: list[float], start_ts: int = 0, step: int = 160) -> None:
    for i, arrival in enumerate(arrivals):
        assert stats.update(rtp(i + 1, start_ts + i * step), arrival) is (i > 0)


def test_constant_transit_gives_zero_jitter() -> None:
    stats = ReceiverStatistics(8000)
    feed_timed(stats, [0.1 + 0.02 * i for i in range(100)])
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)


def test_jitter_by_hand() -> None:
    stats = ReceiverStatistics(8000)
    # transits (arrival*8000 - ts) in timestamp units: the first packet is still on
    # probation and not counted; then 0, 40, 0, 0
    feed_timed(stats, [0.0, 0.02, 0.045, 0.06, 0.08])
    # J = 0 + (40 - 0)/16 = 2.5; J = 2.5 + (40 - 2.5)/16 = 4.84375; J = 4.84375 + (0 - 4.84375)/16
    assert stats.jitter == pytest.approx(4.84375 * 15 / 16)
    assert stats.jitter_ms == pytest.approx(4.84375 * 15 / 16 / 8)
    assert stats.report_block(1.0, None).jitter == 4


def test_alternating_20ms_converges_to_40ms() -> None:
    stats = ReceiverStatistics(8000)
    arrivals = [0.1 + 0.02 * i + (0.02 if i % 2 else -0.02) for i in range(300)]
    feed_timed(stats, arrivals)
    # |D| = 40 ms every packet, so J -> 40 ms = 320 units: J(n) = 320 (1 - (15/16)^n)
    assert stats.jitter == pytest.approx(320, rel=1e-3)
    assert stats.jitter_ms == pytest.approx(40, rel=1e-3)


def test_jitter_across_timestamp_wrap() -> None:
    stats = ReceiverStatistics(8000)
    feed_timed(stats, [0.02 * i for i in range(50)], start_ts=2**32 - 160 * 20)
    assert stats.jitter == pytest.approx(0.0, abs=1e-6)


def test_jitter_at_48khz() -> None:
    stats = ReceiverStatistics(48000)
    feed_timed(stats, [0.0, 0.02, 0.05], step=960)
    # transits 0, 0, 480 units (10 ms): J = 480 / 16 = 30 units = 0.625 ms
    assert stats.jitter == pytest.approx(30)
    assert stats.jitter_ms == pytest.approx(0.625)


# --- RTT and sender statistics --------------------------------------------------------


def test_round_trip_time_rfc3550_example() -> None:
    # RFC 3550 §6.4.1: A = 0xb710:8000 (46864.500 s), LSR = 0xb705:2000 (46853.125 s),
    # DLSR = 0x0005:4000 (5.250 s) -> delay 0x0006:2000 = 6.125 s
    block = ReportBlock(1, 0, 0, 0, 0, lsr=0xB7052000, dlsr=0x00054000)
    assert round_trip_time(block, 0xB7108000) == 6.125


def test_round_trip_time_without_lsr_is_none() -> None:
    assert round_trip_time(ReportBlock(1, 0, 0, 0, 0, 0, 0), 0xB7108000) is None


def test_round_trip_time_across_wrap_and_negative() -> None:
    block = ReportBlock(1, 0, 0, 0, 0, lsr=0xFFFF8000, dlsr=0x00008000)
    assert round_trip_time(block, 0x00008000) == 0.5
    assert round_trip_time(ReportBlock(1, 0, 0, 0, 0, lsr=0x10000, dlsr=0x20000), 0x20000) == 0.0


def test_sender_statistics_count_payload_octets() -> None:
    stats = SenderStatistics()
    stats.sent(RtpPacket(0, 1, 1000, SSRC, b"x" * 160, csrcs=(1,), padding=4), 1.0)
    stats.sent(RtpPacket(0, 2, 1160, SSRC, b"x" * 80), 1.02)
    assert (stats.packets, stats.octets, stats.last_rtp_timestamp, stats.last_sent) == (2, 240, 1160, 1.02)
