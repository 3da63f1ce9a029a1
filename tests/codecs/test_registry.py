"""The codec table: names, RTP parameters, look-ups and errors for unknown names."""

from __future__ import annotations

import pytest

from softphone.codecs import registry
from softphone.codecs.registry import AUDIO_CODECS, VIDEO_CODECS, find, lookup, names
from softphone.errors import ConfigError


def test_default_preference_order() -> None:
    assert names("audio") == ["opus", "G722", "PCMU", "PCMA", "telephone-event"]
    assert names("video") == ["VP8", "H264", "H265", "JPEG"]
    assert [c.name for c in AUDIO_CODECS] == names("audio")
    assert all(c.kind == "audio" for c in AUDIO_CODECS)
    assert all(c.kind == "video" for c in VIDEO_CODECS)


def test_g722_has_the_rfc3551_clock_rate_quirk() -> None:
    g722 = lookup("g722")
    assert (g722.rtp_clock_rate, g722.sample_rate, g722.static_payload_type) == (8000, 16000, 9)


@pytest.mark.parametrize(
    ("name", "encoding", "clock", "channels", "pt"),
    [
        ("PCMU", "PCMU", 8000, 1, 0),
        ("PCMA", "PCMA", 8000, 1, 8),
        ("opus", "opus", 48000, 2, None),
        ("telephone-event", "telephone-event", 8000, 1, None),
        ("VP8", "VP8", 90000, 1, None),
        ("H264", "H264", 90000, 1, None),
        ("H265", "H265", 90000, 1, None),
        ("JPEG", "JPEG", 90000, 1, 26),
    ],
)
def test_rtp_parameters(name: str, encoding: str, clock: int, channels: int, pt: int | None) -> None:
    codec = lookup(name)
    assert (codec.encoding, codec.rtp_clock_rate, codec.channels) == (encoding, clock, channels)
    assert codec.static_payload_type == pt


def test_default_fmtp_and_feedback() -> None:
    assert lookup("opus").default_fmtp is None  # no useinbandfec=1: our decoder cannot use FEC
    assert lookup("telephone-event").default_fmtp == "0-16"
    h264 = lookup("H264")
    assert h264.default_fmtp is not None and "packetization-mode=1" in h264.default_fmtp
    assert "nack pli" in lookup("VP8").rtcp_fb
    assert lookup("PCMU").rtcp_fb == ()


def test_rtpmap_text() -> None:
    assert lookup("opus").rtpmap == "opus/48000/2"
    assert lookup("PCMU").rtpmap == "PCMU/8000"


def test_implementations_are_import_paths() -> None:
    for codec in AUDIO_CODECS + VIDEO_CODECS:
        module, _, attr = codec.implementation.partition(":")
        assert module.startswith("softphone.codecs.") and attr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pcmu", "PCMU"),
        ("PCMU/8000", "PCMU"),
        ("opus/48000/2", "opus"),
        ("OPUS", "opus"),
        ("g722", "G722"),
        ("g722/8000", "G722"),
        ("h264", "H264"),
        (" vp8 ", "VP8"),
    ],
)
def test_lookup_accepts_names_and_rtpmap_forms(text: str, expected: str) -> None:
    assert lookup(text).name == expected


def test_lookup_restricted_to_a_kind() -> None:
    assert lookup("VP8", "video").kind == "video"
    with pytest.raises(ConfigError, match="unknown audio codec 'VP8'"):
        lookup("VP8", "audio")


def test_unknown_codec_lists_what_is_available() -> None:
    with pytest.raises(ConfigError) as info:
        lookup("x", "audio")
    assert info.value.message == (
        "unknown audio codec 'x'; available: opus, G722, PCMU, PCMA, telephone-event"
    )
    assert info.value.exit_code == 2
    with pytest.raises(ConfigError, match="available: VP8, H264, H265, JPEG"):
        lookup("theora", "video")


@pytest.mark.parametrize("text", ["PCMU/16000", "opus/48000/1", "pcmu/x", "PCMU/8000/1/1"])
def test_lookup_with_wrong_rates_is_unknown(text: str) -> None:
    with pytest.raises(ConfigError, match="unknown codec"):
        lookup(text)


def test_unknown_kind() -> None:
    with pytest.raises(ConfigError, match="unknown media kind"):
        names("text")


def test_find_by_rtpmap_triple() -> None:
    assert find("pcma", 8000) is lookup("PCMA")
    assert find("opus", 48000, 2) is lookup("opus")
    assert find("opus", 48000) is None
    assert find("G722", 16000) is None
    assert find("speex", 16000) is None
    assert find("H264", 90000) is registry.lookup("H264")
