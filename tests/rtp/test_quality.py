"""Per-second call figures from a stream's running counters (pure: time is given)."""

from __future__ import annotations

import pytest

from softphone.call.states import CallResult, Direction, EndCause
from softphone.events import CallSummary
from softphone.rtp.packet import RtpPacket
from softphone.rtp.quality import QualitySample, StreamCounters, StreamMeter, format_duration
from softphone.rtp.stats import ReceiverStatistics


def test_bitrates_and_loss_over_an_interval() -> None:
    meter = StreamMeter("audio", "PCMU", ptime_ms=20, start=10.0)
    one = StreamCounters(tx_packets=50, tx_octets=8000, rx_packets=50, rx_octets=8000, expected=50,
                         jitter_ms=1.0, rtt_ms=2.0, buffer_ms=40.0)
    q1 = meter.sample(one, 11.0)
    assert (q1.tx_kbps, q1.rx_kbps, q1.loss_pct) == (64.0, 64.0, 0.0)
    assert q1.jitter_ms == 1.0 and q1.rtt_ms == 2.0
    assert q1.mos is not None and q1.mos > 4.3
    # the next second: 5 of 50 packets lost, 45 received
    two = StreamCounters(tx_packets=100, tx_octets=16000, rx_packets=95, rx_octets=15200, expected=100,
                         jitter_ms=3.0, rtt_ms=2.0, buffer_ms=40.0)
    q2 = meter.sample(two, 12.0)
    assert q2.rx_kbps == 57.6 and q2.loss_pct == 10.0
    assert q2.mos is not None and q2.mos < q1.mos - 0.5
    # over the whole stream: 5 of 100
    whole = meter.overall(two, 12.0)
    assert whole.loss_pct == 5.0 and whole.tx_kbps == 64.0
    assert whole.mos is not None and q2.mos < whole.mos < q1.mos


def test_concealed_late_packets_count_as_lost_for_the_mos_only() -> None:
    meter = StreamMeter("audio", "PCMA", start=0.0)
    on_time = meter.sample(StreamCounters(rx_packets=50, expected=50, buffer_ms=40.0), 1.0)
    late = meter.sample(StreamCounters(rx_packets=100, expected=100, concealed=5, buffer_ms=40.0), 2.0)
    assert on_time.loss_pct == late.loss_pct == 0.0
    assert late.mos is not None and on_time.mos is not None and late.mos < on_time.mos


def test_sender_octet_count_wraps() -> None:
    meter = StreamMeter("video", "VP8", start=0.0)
    meter.sample(StreamCounters(tx_octets=(1 << 32) - 1000), 1.0)
    q = meter.sample(StreamCounters(tx_octets=24000), 2.0)
    assert q.tx_kbps == 200.0


def test_video_frame_rate_and_size_without_mos() -> None:
    meter = StreamMeter("video", "VP8", start=0.0)
    q = meter.sample(StreamCounters(frames=15, width=640, height=480), 0.5)
    assert (q.fps, q.width, q.height, q.mos) == (30.0, 640, 480, None)


def test_nothing_expected_is_no_loss_figure() -> None:
    q = StreamMeter("audio", "opus", start=0.0).sample(StreamCounters(), 1.0)
    assert q.loss_pct is None and q.mos is None
    assert "loss -" in q.figures() and "rtt -" in q.figures()


def test_receiver_statistics_count_payload_octets() -> None:
    stats = ReceiverStatistics(8000)
    for seq in range(10):
        stats.update(RtpPacket(payload_type=0, sequence=seq, timestamp=seq * 160, ssrc=7, payload=bytes(160)),
                     seq * 0.02)
    assert stats.received == 9  # the first packet of a source waits for validation (RFC 3550 A.1)
    assert stats.octets == 9 * 160


def test_status_line_and_json() -> None:
    meter = StreamMeter("audio", "PCMU", start=0.0)
    audio = meter.sample(StreamCounters(tx_octets=8000, rx_octets=8000, rx_packets=50, expected=50,
                                        rtt_ms=12.4, buffer_ms=40.0), 1.0)
    video = StreamMeter("video", "VP8", start=0.0).sample(
        StreamCounters(tx_octets=100_000, frames=30, width=640, height=480), 1.0)
    sample = QualitySample(at=75.2, audio=audio, video=video)
    line = sample.status_line()
    assert line.startswith("01:15 | audio PCMU tx 64 rx 64 kbit/s loss 0.0% jitter 0.0 ms rtt 12 ms MOS ")
    assert line.endswith("| video VP8 tx 800 rx 0.0 kbit/s loss - jitter 0.0 ms rtt - 30 fps 640x480")
    data = sample.to_json()
    assert data["at"] == 75.2 and data["audio"]["mos"] == audio.mos and data["video"]["fps"] == 30.0
    assert format_duration(3725) == "1:02:05"


def test_the_summary_reads_as_lines() -> None:
    summary = CallSummary(
        CallResult.COMPLETED, 200, EndCause.LOCAL_HANGUP, "abc", Direction.OUTGOING, "sip:bob@example.com",
        timeline={"answered": 1.0, "bye": 73.5},
        audio={"codec": "PCMU", "media": "rtp", "tx_kbps": 64.0, "rx_kbps": 63.9, "rx_packets": 3590, "lost": 10,
               "loss_pct": 0.28, "jitter_ms": 1.25, "rtt_ms": 20.0, "mos": 4.35},
        video={"codec": "VP8", "media": "none"},
    )
    lines = summary.human().splitlines()
    assert lines[0] == "call ended: completed 200, 01:12 in call"
    assert lines[1] == ("  audio PCMU    tx 64.0 kbit/s  rx 63.9 kbit/s  lost 10/3600 (0.3 %)  jitter 1.2 ms  "
                        "RTT 20.0 ms  MOS 4.35")
    assert len(lines) == 2  # the video stream did not run


@pytest.mark.parametrize("at, text", [(0, "00:00"), (59.9, "00:59"), (600, "10:00")])
def test_format_duration(at: float, text: str) -> None:
    assert format_duration(at) == text
