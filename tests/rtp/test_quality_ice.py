"""The status line and the per-second JSON name the ICE pair type when ICE ran."""

from __future__ import annotations

from softphone.rtp.quality import QualitySample, StreamCounters, StreamMeter


def _audio() -> QualitySample:
    audio = StreamMeter("audio", "PCMU", start=0.0).sample(
        StreamCounters(tx_octets=8000, rx_octets=8000, rx_packets=50, expected=50), 1.0)
    return QualitySample(at=3.0, audio=audio)


def test_the_status_line_ends_with_the_pair_type_when_ice_ran() -> None:
    base = _audio()
    relayed = QualitySample(at=base.at, audio=base.audio, ice="relay")
    assert relayed.status_line() == base.status_line() + " | ice relay"
    assert relayed.to_json()["ice"] == "relay"


def test_without_ice_the_status_line_and_json_are_as_before() -> None:
    sample = _audio()
    assert "ice" not in sample.status_line() and "ice" not in sample.to_json()
