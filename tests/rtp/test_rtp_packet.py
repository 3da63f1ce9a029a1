"""RTP packet layout (RFC 3550 §5.1) and RTP/RTCP demultiplexing (RFC 5761 §4)."""
from __future__ import annotations

import pytest

from softphone.rtp.packet import RtpError, RtpPacket, is_rtcp

# V=2 P=0 X=0 CC=0 | M=1 PT=0 | seq 0x1234 | ts 0xdeadbeef | ssrc 0x01020304 | payload
SIMPLE = bytes.fromhex("80 80 1234 deadbeef 01020304") + b"\xaa\xbb\xcc"


def test_parse_hand_made_header() -> None:
    packet = RtpPacket.parse(SIMPLE)
    assert packet == RtpPacket(
        payload_type=0, sequence=0x1234, timestamp=0xDEADBEEF, ssrc=0x01020304, payload=b"\xaa\xbb\xcc", marker=True
    )


def test_bytes_of_hand_made_header() -> None:
    packet = RtpPacket(0, 0x1234, 0xDEADBEEF, 0x01020304, b"\xaa\xbb\xcc", marker=True)
    assert bytes(packet) == SIMPLE


def test_payload_type_without_marker() -> None:
    data = bytes.fromhex("80 08 0001 00000000 00000000")
    packet = RtpPacket.parse(data)
    assert (packet.payload_type, packet.marker, packet.payload) == (8, False, b"")


def test_full_header_round_trip_against_known_bytes() -> None:
    # V=2 P=1 X=1 CC=2 -> 0xb2; M=0 PT=96 -> 0x60
    data = (
        bytes.fromhex("b2 60 ffff 00000010 cafebabe")
        + bytes.fromhex("00000001 00000002")  # CSRCs
        + bytes.fromhex("bede 0001 11223344")  # extension profile 0xbede, 1 word
        + b"payload"
        + bytes.fromhex("0000 03")  # 3 octets of padding, count last
    )
    packet = RtpPacket.parse(data)
    assert packet.csrcs == (1, 2)
    assert packet.extension == (0xBEDE, bytes.fromhex("11223344"))
    assert packet.payload == b"payload"
    assert packet.padding == 3
    assert packet.sequence == 0xFFFF and packet.timestamp == 16 and packet.payload_type == 96
    assert bytes(packet) == data


@pytest.mark.parametrize(
    "packet",
    [
        RtpPacket(0, 0, 0, 0),
        RtpPacket(127, 65535, 2**32 - 1, 2**32 - 1, b"x" * 160, marker=True),
        RtpPacket(111, 7, 960, 42, b"opus", csrcs=tuple(range(15))),
        RtpPacket(96, 1, 2, 3, b"", extension=(1, b"")),
        RtpPacket(96, 1, 2, 3, b"\x01", padding=1),
    ],
)
def test_round_trip(packet: RtpPacket) -> None:
    assert RtpPacket.parse(bytes(packet)) == packet


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "too short"),
        (bytes.fromhex("80 00 0001 00000000 000000"), "too short"),
        (bytes.fromhex("40 00 0001 00000000 00000000"), "version 1"),
        (bytes.fromhex("00 00 0001 00000000 00000000"), "version 0"),
        (bytes.fromhex("82 00 0001 00000000 00000000 00000001"), "CSRC count 2"),
        (bytes.fromhex("90 00 0001 00000000 00000000 bede"), "extension header"),
        (bytes.fromhex("90 00 0001 00000000 00000000 bede 0002 11223344"), "extension length 2"),
        (bytes.fromhex("a0 00 0001 00000000 00000000 aa 05"), "padding count 5"),
        (bytes.fromhex("a0 00 0001 00000000 00000000 aa 00"), "padding count 0"),
        (bytes.fromhex("a1 00 0001 00000000 00000000 00000001 05"), "CSRC count 1"),
    ],
)
def test_malformed_packets_raise(data: bytes, message: str) -> None:
    with pytest.raises(RtpError, match=message):
        RtpPacket.parse(data)


def test_rtp_error_is_a_value_error() -> None:
    assert issubclass(RtpError, ValueError)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"payload_type": 128},
        {"sequence": 65536},
        {"timestamp": -1},
        {"ssrc": 2**32},
        {"csrcs": tuple(range(16))},
        {"extension": (1, b"abc")},
        {"padding": 256},
    ],
)
def test_out_of_range_fields_are_refused(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"payload_type": 0, "sequence": 0, "timestamp": 0, "ssrc": 0}
    fields.update(kwargs)
    with pytest.raises(ValueError):
        RtpPacket(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("second_octet", "rtcp"),
    [(200, True), (201, True), (192, True), (223, True), (206, True), (0, False), (0x80 | 8, False),
     (191, False), (224, False), (96, False), (0x80 | 111, False)],
)
def test_is_rtcp_demultiplexes_on_the_second_octet(second_octet: int, rtcp: bool) -> None:
    assert is_rtcp(bytes([0x80, second_octet, 0, 1])) is rtcp


def test_is_rtcp_on_real_packets() -> None:
    assert is_rtcp(bytes.fromhex("80c8 0006")) is True
    assert is_rtcp(SIMPLE) is False
    assert is_rtcp(b"\x80") is False
