"""RTCP packets (RFC 3550 §6, RFC 4585 §6, RFC 5104 §4.3.1) and compound packets."""
from __future__ import annotations

import pytest

from softphone.rtp.rtcp import (
    Bye,
    FullIntraRequest,
    GenericNack,
    PictureLossIndication,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    middle_32,
    ntp_from_unix,
    parse_compound,
    serialize_compound,
    unix_from_ntp,
)

# A compound packet as a peer sends it: SR with one report block, then SDES CNAME.
PEER_SR = bytes.fromhex(
    "81c8000c"  # V=2 RC=1 PT=200 length=12 words
    "5b3c2a10"  # SSRC of sender
    "e8a1b2c3 80000000"  # NTP timestamp
    "0001e240"  # RTP timestamp 123456
    "00000064"  # sender's packet count 100
    "00003e80"  # sender's octet count 16000
    "11223344"  # report block: SSRC_1
    "19 00000a"  # fraction lost 25/256, cumulative lost 10
    "00010064"  # extended highest sequence number: 1 cycle, seq 100
    "00000020"  # interarrival jitter 32
    "b2c38000"  # LSR
    "00018000"  # DLSR 1.5 s
)
PEER_SDES = bytes.fromhex(
    "81ca0004"  # V=2 SC=1 PT=202 length=4 words
    "5b3c2a10"  # SSRC
    "0109 75736572 40686f73 74"  # CNAME "user@host"
    "00"  # end of items, already on a 32-bit boundary
)
BLOCK = ReportBlock(0x11223344, 25, 10, 0x10064, 32, 0xB2C38000, 0x18000)


def test_compound_from_a_peer() -> None:
    packets = parse_compound(PEER_SR + PEER_SDES)
    assert packets == [
        SenderReport(0x5B3C2A10, 0xE8A1B2C380000000, 123456, 100, 16000, (BLOCK,)),
        SourceDescription(((0x5B3C2A10, ((1, "user@host"),)),)),
    ]
    assert serialize_compound(packets) == PEER_SR + PEER_SDES


def test_receiver_report_known_bytes() -> None:
    rr = ReceiverReport(0x01020304, (BLOCK,))
    data = bytes.fromhex("81c90007 01020304") + PEER_SR[28:52]
    assert bytes(rr) == data
    assert parse_compound(data) == [rr]


def test_empty_receiver_report() -> None:
    assert bytes(ReceiverReport(1)) == bytes.fromhex("80c90001 00000001")
    assert parse_compound(bytes.fromhex("80c90001 00000001")) == [ReceiverReport(1, ())]


def test_negative_cumulative_lost_is_signed_24_bit() -> None:
    block = ReportBlock(1, 0, -1, 5, 0, 0, 0)
    assert bytes(block)[4:8] == bytes.fromhex("00ffffff")
    assert parse_compound(bytes(ReceiverReport(2, (block,))))[0] == ReceiverReport(2, (block,))


def test_cumulative_lost_is_clamped() -> None:
    assert bytes(ReportBlock(1, 0, 1 << 30, 5, 0, 0, 0))[5:8] == bytes.fromhex("7fffff")
    assert bytes(ReportBlock(1, 0, -(1 << 30), 5, 0, 0, 0))[5:8] == bytes.fromhex("800000")


def test_sdes_padding_to_32_bits() -> None:
    sdes = SourceDescription(((7, ((1, "ab"),)),))
    # ssrc, 01 02 'a' 'b', null, then padded to the boundary
    assert bytes(sdes) == bytes.fromhex("81ca0003 00000007 01026162 00000000")
    sdes2 = SourceDescription(((7, ((1, "abc"),)), (8, ((1, "x"), (2, "Name")))))
    assert parse_compound(bytes(sdes2)) == [sdes2]


def test_bye_known_bytes() -> None:
    assert bytes(Bye((0x5B3C2A10,))) == bytes.fromhex("81cb0001 5b3c2a10")
    with_reason = bytes.fromhex("81cb0002 5b3c2a10 03627965")
    assert bytes(Bye((0x5B3C2A10,), "bye")) == with_reason
    assert parse_compound(with_reason) == [Bye((0x5B3C2A10,), "bye")]


def test_bye_reason_padding() -> None:
    bye = Bye((1, 2), "done")
    data = bytes(bye)
    assert len(data) % 4 == 0 and data.endswith(b"\x04done\x00\x00\x00")
    assert parse_compound(data) == [bye]


def test_pli_known_bytes() -> None:
    data = bytes.fromhex("81ce0002 00000001 00000002")
    assert bytes(PictureLossIndication(1, 2)) == data
    assert parse_compound(data) == [PictureLossIndication(1, 2)]


def test_fir_known_bytes() -> None:
    data = bytes.fromhex("84ce0004 00000001 00000000 00000002 05000000")
    fir = FullIntraRequest(1, 0, ((2, 5),))
    assert bytes(fir) == data
    assert parse_compound(data) == [fir]


def test_generic_nack_known_bytes() -> None:
    nack = GenericNack(1, 2, (100, 101, 103, 116, 200))
    data = bytes.fromhex("81cd0004 00000001 00000002 00648005 00c80000")
    assert bytes(nack) == data
    assert parse_compound(data) == [nack]


def test_generic_nack_across_sequence_wrap() -> None:
    nack = GenericNack(1, 2, (65535, 0, 1))
    assert bytes(nack)[12:] == bytes.fromhex("ffff0003")
    assert parse_compound(bytes(nack)) == [nack]


@pytest.mark.parametrize(
    "packets",
    [
        [SenderReport(1, ntp_from_unix(1.7e9), 2, 3, 4), SourceDescription(((1, ((1, "me@here"),)),))],
        [ReceiverReport(9, tuple(ReportBlock(i, i, -i, i, i, i, i) for i in range(31)))],
        [ReceiverReport(9), PictureLossIndication(9, 10), FullIntraRequest(9, 0, ((10, 1), (11, 255)))],
        [ReceiverReport(9), SourceDescription(((9, ((1, "é ü"),)),)), Bye((9,), "")],
        [ReceiverReport(9), GenericNack(9, 10, tuple(range(40)))],
    ],
)
def test_round_trip(packets: list[RtcpPacket]) -> None:
    assert parse_compound(serialize_compound(packets)) == packets


def test_unknown_packet_types_are_skipped() -> None:
    app = bytes.fromhex("80cc0002 00000001 6e616d65")  # APP
    xr = bytes.fromhex("80cf0001 00000001")  # XR (207)
    remb = bytes.fromhex("8fce0003 00000001 00000000 52454d42")  # PSFB FMT 15
    twcc = bytes.fromhex("8fcd0002 00000001 00000002")  # RTPFB FMT 15
    assert parse_compound(PEER_SR + app + xr + remb + twcc + PEER_SDES) == parse_compound(PEER_SR + PEER_SDES)


def test_padding_in_last_packet_is_stripped() -> None:
    # BYE with the P bit: 4 octets of padding, the last one counting them
    data = bytes.fromhex("a1cb0002 00000001 00000004")
    assert parse_compound(data) == [Bye((1,))]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (bytes.fromhex("81c8"), "truncated"),
        (bytes.fromhex("41c90001 00000001"), "version 1"),
        (bytes.fromhex("81c90007 00000001"), "length 7"),
        (bytes.fromhex("81c90001 00000001"), "report blocks too short"),
        (bytes.fromhex("80c80001 00000001"), "SR too short"),
        (bytes.fromhex("81ca0002 00000001 0109ab00"), "SDES item too short"),
        (bytes.fromhex("82ca0002 00000001 00000000"), "SDES chunk too short"),
        (bytes.fromhex("82cb0001 00000001"), "BYE too short"),
        (bytes.fromhex("81cb0002 00000001 09414243"), "BYE reason too short"),
        (bytes.fromhex("a0c90001 00000009"), "padding count 9"),
        (bytes.fromhex("a0c90001 00000000"), "padding count 0"),
        (bytes.fromhex("81ce0001 00000001"), "PSFB too short"),
        (bytes.fromhex("81cd0001 00000001"), "RTPFB too short"),
        (PEER_SR + PEER_SDES[:-4], "length 4"),
    ],
)
def test_malformed_compound_raises(data: bytes, message: str) -> None:
    with pytest.raises(RtcpError, match=message):
        parse_compound(data)


def test_serializing_refuses_more_than_31_blocks() -> None:
    with pytest.raises(ValueError):
        bytes(ReceiverReport(1, tuple(ReportBlock(i, 0, 0, 0, 0, 0, 0) for i in range(32))))


def test_ntp_timestamps() -> None:
    assert ntp_from_unix(0.0) == 2208988800 << 32
    assert ntp_from_unix(0.5) == (2208988800 << 32) | 0x80000000
    assert ntp_from_unix(1.25) == (2208988801 << 32) | 0x40000000
    assert unix_from_ntp(ntp_from_unix(1_700_000_000.75)) == pytest.approx(1_700_000_000.75, abs=1e-6)


def test_middle_32_is_the_lsr() -> None:
    assert middle_32(0xE8A1B2C380000000) == 0xB2C38000
    assert middle_32(ntp_from_unix(0.5)) == ((2208988800 & 0xFFFF) << 16) | 0x8000
