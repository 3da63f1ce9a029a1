"""Property tests of every parser that reads what the network sends: valid messages survive
a parse/serialise round trip, and arbitrary bytes raise nothing but the parser's own error."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from softphone.errors import ParseError, SdpError
from softphone.rtp.packet import RtpError, RtpPacket
from softphone.rtp.payload import h264, h265, vp8
from softphone.rtp.payload.base import EncodedFrame, PayloadError
from softphone.rtp.payload.h264 import H264Depacketizer
from softphone.rtp.payload.h265 import H265Depacketizer
from softphone.rtp.payload.jpeg import JpegDepacketizer
from softphone.rtp.payload.vp8 import Vp8Depacketizer, Vp8Packetizer
from softphone.rtp.rtcp import (
    Bye,
    FullIntraRequest,
    GenericNack,
    PictureLossIndication,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    SenderReport,
    SourceDescription,
    parse_compound,
    serialize_compound,
)
from softphone.sdp.model import SessionDescription
from softphone.sip.endpoint import Endpoint, Peer
from softphone.sip.message import Request, parse_message

CI = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
token = st.text(string.ascii_letters + string.digits + "-.!%*_+`'~", min_size=1, max_size=12)
word = st.text(string.ascii_letters + string.digits, min_size=1, max_size=10)
host = st.one_of(
    st.builds("{}.{}.{}.{}".format, u8, u8, u8, u8),
    st.builds("{}.example".format, st.text(string.ascii_lowercase, min_size=1, max_size=8)),
)
# header values without CR/LF and without leading or trailing blanks
value = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=30)


# ---------------------------------------------------------------- SIP


@st.composite
def sip_requests(draw: st.DrawFn) -> bytes:
    method = draw(st.sampled_from(["INVITE", "OPTIONS", "BYE", "CANCEL", "INFO", "MESSAGE"]) | token.map(str.upper))
    user, domain, port = draw(word), draw(host), draw(st.integers(1, 65535))
    body = draw(st.binary(max_size=200))
    lines = [
        f"{method} sip:{user}@{domain}:{port} SIP/2.0",
        f"Via: SIP/2.0/UDP {draw(host)}:{port};branch=z9hG4bK{draw(word)};rport",
        f"From: <sip:{draw(word)}@{draw(host)}>;tag={draw(word)}",
        f"To: \"{draw(word)}\" <sip:{user}@{domain}>",
        f"Call-ID: {draw(word)}@{draw(host)}",
        f"CSeq: {draw(st.integers(0, 2**31 - 1))} {method}",
        f"Max-Forwards: {draw(st.integers(0, 255))}",
    ]
    for _ in range(draw(st.integers(0, 4))):
        lines.append(f"X-{draw(word)}: {draw(value)}")
    if body:
        lines.append("Content-Type: application/octet-stream")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@CI
@given(sip_requests())
def test_sip_messages_survive_a_round_trip(data: bytes) -> None:
    message = parse_message(data)
    assert isinstance(message, Request)
    again = parse_message(bytes(message))
    assert again == message
    assert bytes(again) == bytes(message)
    assert parse_message(bytes(message), stream=True) == message


def _read_fields(data: bytes) -> None:
    message = parse_message(data)
    _ = (message.call_id, message.cseq, message.top_via, message.from_addr, message.to_addr, message.contacts)


@CI
@given(st.binary(max_size=600))
@example(b"INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nCSeq: x INVITE\r\n\r\n")
def test_arbitrary_bytes_raise_only_parse_error(data: bytes) -> None:
    try:
        _read_fields(data)
    except ParseError:
        pass


@CI
@given(sip_requests(), st.data())
def test_mutated_sip_messages_raise_only_parse_error_and_never_out_of_the_endpoint(data: bytes,
                                                                                   more: st.DataObject) -> None:
    position = more.draw(st.integers(0, len(data)))
    cut = more.draw(st.integers(0, 20))
    insert = more.draw(st.binary(max_size=8) | st.sampled_from([b"\r\n", b":", b";", b"<", b">", b"\"", b"\x00"]))
    mutated = data[:position] + insert + data[position + cut:]
    try:
        _read_fields(mutated)
    except ParseError:
        pass
    Endpoint().receive(mutated, Peer("udp", "127.0.0.1", 5060), 0.0)  # never raises


# ---------------------------------------------------------------- SDP


@st.composite
def sdp_texts(draw: st.DrawFn) -> str:
    address = draw(st.builds("{}.{}.{}.{}".format, u8, u8, u8, u8))
    lines = [
        "v=0",
        f"o={draw(word)} {draw(st.integers(0, 2**62))} {draw(st.integers(0, 2**62))} IN IP4 {address}",
        f"s={draw(word)}",
        f"c=IN IP4 {address}",
        "t=0 0",
    ]
    for kind in draw(st.lists(st.sampled_from(["audio", "video"]), min_size=1, max_size=3)):
        pts = draw(st.lists(st.integers(0, 127), min_size=1, max_size=4, unique=True))
        lines.append(f"m={kind} {draw(u16)} RTP/AVP {' '.join(map(str, pts))}")
        for pt in pts:
            lines.append(f"a=rtpmap:{pt} {draw(word)}/{draw(st.sampled_from([8000, 16000, 48000, 90000]))}")
        if draw(st.booleans()):
            lines.append(f"a=fmtp:{pts[0]} {draw(word)}={draw(word)}")
        lines.append("a=" + draw(st.sampled_from(["sendrecv", "sendonly", "recvonly", "inactive"])))
    return "\r\n".join(lines) + "\r\n"


@CI
@given(sdp_texts())
def test_sdp_survives_a_round_trip(text: str) -> None:
    session = SessionDescription.parse(text)
    assert SessionDescription.parse(str(session)) == session
    assert SessionDescription.parse(bytes(session)) == session


@CI
@given(st.binary(max_size=400) | st.text(max_size=300).map(str.encode))
@example(b"v=0\r\nm=audio x RTP/AVP 0\r\n")
def test_arbitrary_sdp_raises_only_sdp_error(data: bytes) -> None:
    try:
        SessionDescription.parse(data)
    except SdpError:
        pass


@CI
@given(sdp_texts(), st.data())
def test_mutated_sdp_raises_only_sdp_error(text: str, more: st.DataObject) -> None:
    lines = text.split("\r\n")
    index = more.draw(st.integers(0, len(lines) - 1))
    lines[index] = more.draw(st.sampled_from(["", "=", "m=", "c=IN", "a=rtpmap:", "o=x", "t=a b", "m=audio 1 RTP/AVP"])
                             | st.text(max_size=20))
    try:
        SessionDescription.parse("\r\n".join(lines))
    except SdpError:
        pass


# ---------------------------------------------------------------- RTP and RTCP


rtp_packets = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127),
    sequence=u16,
    timestamp=u32,
    ssrc=u32,
    payload=st.binary(max_size=64),
    marker=st.booleans(),
    csrcs=st.lists(u32, max_size=15).map(tuple),
    extension=st.none() | st.tuples(u16, st.binary(max_size=16).map(lambda b: b[: len(b) // 4 * 4])),
    padding=st.integers(0, 255),
)


@CI
@given(rtp_packets)
def test_rtp_packets_survive_a_round_trip(packet: RtpPacket) -> None:
    assert RtpPacket.parse(bytes(packet)) == packet


@CI
@given(st.binary(max_size=200))
def test_arbitrary_rtp_raises_only_rtp_error(data: bytes) -> None:
    try:
        RtpPacket.parse(data)
    except RtpError:
        pass


blocks = st.builds(ReportBlock, u32, u8, st.integers(-0x800000, 0x7FFFFF), u32, u32, u32, u32)
sdes_text = st.text(string.ascii_letters + string.digits + "@.-", min_size=1, max_size=30)
rtcp_packets = st.one_of(
    st.builds(SenderReport, u32, st.integers(0, 2**64 - 1), u32, u32, u32, st.lists(blocks, max_size=3).map(tuple)),
    st.builds(ReceiverReport, u32, st.lists(blocks, max_size=3).map(tuple)),
    st.builds(SourceDescription, st.lists(st.tuples(u32, st.lists(st.tuples(st.integers(1, 8), sdes_text),
                                                                  min_size=1, max_size=2).map(tuple)),
                                          min_size=1, max_size=2).map(tuple)),
    st.builds(Bye, st.lists(u32, max_size=3).map(tuple), st.none() | sdes_text),
    st.builds(PictureLossIndication, u32, u32),
    st.builds(FullIntraRequest, u32, u32, st.lists(st.tuples(u32, u8), max_size=3).map(tuple)),
    st.builds(GenericNack, u32, u32, st.lists(u16, min_size=1, max_size=10, unique=True).map(sorted).map(tuple)),
)


@CI
@given(st.lists(rtcp_packets, min_size=1, max_size=4))
def test_rtcp_compound_packets_survive_a_round_trip(packets: list) -> None:
    data = serialize_compound(packets)
    parsed = parse_compound(data)
    assert serialize_compound(parsed) == data
    assert [type(p) for p in parsed] == [type(p) for p in packets]


@CI
@given(st.binary(max_size=200))
@example(b"\x81\xc9\x00\x07" + b"\x00" * 28)
def test_arbitrary_rtcp_raises_only_rtcp_error(data: bytes) -> None:
    try:
        parse_compound(data)
    except RtcpError:
        pass


# ---------------------------------------------------------------- video payloads


@CI
@given(st.binary(max_size=100))
def test_payload_parsers_raise_only_payload_error(data: bytes) -> None:
    for parse in (vp8.parse_descriptor, h264.parse_payload, h265.parse_payload):
        try:
            parse(data)
        except PayloadError:
            pass


@CI
@given(st.lists(st.tuples(st.binary(max_size=80), st.booleans(), st.integers(0, 40)), max_size=12))
def test_depacketizers_never_raise_on_hostile_payloads(packets: list[tuple[bytes, bool, int]]) -> None:
    for depacketizer in (Vp8Depacketizer(), H264Depacketizer(), H265Depacketizer(), JpegDepacketizer()):
        for n, (payload, marker, step) in enumerate(packets):
            depacketizer.push(RtpPacket(96, (n * 7 + step) & 0xFFFF, (step // 4) * 3000, 1, payload, marker))


@CI
@given(st.binary(min_size=1, max_size=5000), st.integers(200, 1500), st.booleans())
def test_vp8_frames_survive_packetizing(data: bytes, mtu: int, keyframe: bool) -> None:
    packets = Vp8Packetizer(picture_id=5).packetize(EncodedFrame(data, keyframe), mtu)
    depacketizer = Vp8Depacketizer()
    frames = []
    for n, (payload, marker) in enumerate(packets):
        assert len(payload) <= mtu - 12
        frames += depacketizer.push(RtpPacket(96, n, 9000, 1, payload, marker))
    assert [f.data for f in frames] == [data]


# ---------------------------------------------------------------- inputs the fuzzers found


def test_a_bare_cr_inside_a_header_is_refused_and_the_400_stays_well_formed() -> None:
    data = (b"OPTIONS sip:0@a.example:10 SIP/2.0\r\nVia: SIP/2.0/UDP 10.1.1.1:10;branch=z9hG4bK00;rport\r\n"
            b"From: <sip:0@a.example>;tag=0\r\x00\n\nTo: <sip:0@a.example>\r\nCall-ID: 0@0.0.0.0\r\n"
            b"CSeq: 0 OPTIONS\r\nMax-Forwards: 0\r\nContent-Length: 0\r\n\r\n")
    try:
        parse_message(data)
        raise AssertionError("a bare CR inside a header was accepted")
    except ParseError:
        pass
    endpoint = Endpoint()
    endpoint.receive(data, Peer("udp", "127.0.0.1", 5060), 0.0)
    (answer,) = endpoint.datagrams_to_send()
    response = parse_message(answer.data)
    assert not isinstance(response, Request) and response.status == 400
