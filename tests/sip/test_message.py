from __future__ import annotations

import pytest

from softphone.errors import ParseError
from softphone.sip.headers import CSeq, NameAddress, Via
from softphone.sip.message import (
    MAX_MESSAGE_SIZE,
    Headers,
    Message,
    MessageParseError,
    Request,
    Response,
    parse_message,
)
from softphone.sip.uri import SipUri


def wire(*lines: str, body: bytes = b"", length: bool = True) -> bytes:
    """A message from header lines; adds a correct Content-Length unless told not to."""
    all_lines = list(lines)
    if length:
        all_lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(all_lines) + "\r\n\r\n").encode("utf-8") + body


SDP = (
    b"v=0\r\no=- 1 1 IN IP4 127.0.1.1\r\ns=-\r\nc=IN IP4 127.0.1.1\r\nt=0 0\r\n"
    b"m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)

SIPP_INVITE = wire(
    "INVITE sip:service@127.0.0.1:5060 SIP/2.0",
    "Via: SIP/2.0/UDP 127.0.1.1:5061;branch=z9hG4bK-12345-1-0",
    "From: sipp <sip:sipp@127.0.1.1:5061>;tag=12345SIPpTag001",
    "To: service <sip:service@127.0.0.1:5060>",
    "Call-ID: 1-12345@127.0.1.1",
    "CSeq: 1 INVITE",
    "Contact: sip:sipp@127.0.1.1:5061",
    "Max-Forwards: 70",
    "Subject: Performance Test",
    "Content-Type: application/sdp",
    body=SDP,
)

LINPHONE_REGISTER = wire(
    "REGISTER sip:sip.linphone.org SIP/2.0",
    "Via: SIP/2.0/TLS 192.168.1.20:38021;alias;branch=z9hG4bK.Xyz1;rport",
    "From: <sip:alice@sip.linphone.org>;tag=Dk2yN~",
    "To: sip:alice@sip.linphone.org",
    "CSeq: 20 REGISTER",
    "Call-ID: 8pGgPQJ6Bd",
    "Max-Forwards: 70",
    "Supported: replaces, outbound, gruu, path",
    "Accept: application/sdp",
    "Accept: text/plain",
    'Contact: <sip:alice@192.168.1.20:38021;transport=tls>;+sip.instance="<urn:uuid:a1b2c3d4-'
    '0000-0000-0000-000000000001>";+org.linphone.specs="lime"',
    "Expires: 600",
    "User-Agent: LinphoneAndroid/4.6 (Pixel) LinphoneSDK/5.0 (tags/5.0.0)",
)

PJSUA_200_IPV6 = wire(
    "SIP/2.0 200 OK",
    "Via: SIP/2.0/UDP [2001:db8::10]:5070;rport=5070;received=2001:db8::10;branch=z9hG4bKPj1",
    "Record-Route: <sip:[2001:db8::1];lr>, <sip:proxy.example.com;lr>",
    "Call-ID: 6e0a2b8f@2001:db8::10",
    'From: "Alice \\"A\\" Smith" <sip:alice@[2001:db8::10]:5070>;tag=abc',
    "To: <sip:bob@[2001:db8::20]>;tag=xyz",
    "CSeq: 2 INVITE",
    "Contact: <sip:bob@[2001:db8::20]:5060;ob>",
    "Allow: PRACK, INVITE, ACK, BYE, CANCEL, UPDATE, INFO, SUBSCRIBE, NOTIFY, REFER, MESSAGE",
    "Supported: replaces, 100rel, timer, norefersub",
    "Session-Expires: 1800;refresher=uac",
    "Content-Type: application/sdp",
    body=SDP,
)

BARESIP_BYE = wire(
    "BYE sip:alice@10.0.0.1:5060;transport=tcp SIP/2.0",
    "Via: SIP/2.0/TCP 10.0.0.2:45678;branch=z9hG4bK9a1b2c3;rport",
    "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1, SIP/2.0/UDP 10.0.0.9:5062;branch=z9hG4bKp2",
    "Route: <sip:proxy.example.com;lr>",
    "Max-Forwards: 70",
    "To: <sip:alice@example.com>;tag=1",
    'From: "Bob" <sip:bob@example.com>;tag=2',
    "Call-ID: 0123abcd",
    "CSeq: 101 BYE",
    "User-Agent: baresip v3.10.0 (x86_64/linux)",
)

TEL_MESSAGE = wire(
    "MESSAGE tel:+1-201-555-0123;phone-context=example.com SIP/2.0",
    "Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKm1",
    "From: <sip:alice@example.com>;tag=9",
    "To: <tel:+1-201-555-0123;phone-context=example.com>",
    "Call-ID: m1@192.0.2.4",
    "CSeq: 1 MESSAGE",
    "Content-Type: text/plain;charset=UTF-8",
    body="héllo".encode(),
)

NOTIFY_EMPTY_REASON = wire(
    "SIP/2.0 299 ",
    "Via: SIP/2.0/WS df7jal23ls0d.invalid;branch=z9hG4bKx",
    "From: <sip:a@h>;tag=1",
    "To: <sip:b@h>;tag=2",
    "Call-ID: x",
    "CSeq: 5 NOTIFY",
)

CANONICAL = [
    SIPP_INVITE,
    LINPHONE_REGISTER,
    PJSUA_200_IPV6,
    BARESIP_BYE,
    TEL_MESSAGE,
    NOTIFY_EMPTY_REASON,
]


@pytest.mark.parametrize("data", CANONICAL)
def test_canonical_messages_round_trip(data: bytes) -> None:
    message = parse_message(data)
    assert bytes(message) == data
    assert parse_message(bytes(message)) == message
    assert parse_message(data, stream=True) == message


def test_sipp_invite_fields() -> None:
    request = parse_message(SIPP_INVITE)
    assert isinstance(request, Request)
    assert request.method == "INVITE"
    assert request.uri == SipUri(user="service", host="127.0.0.1", port=5060)
    assert request.call_id == "1-12345@127.0.1.1"
    assert request.cseq == CSeq(1, "INVITE")
    assert request.from_addr.tag == "12345SIPpTag001"
    assert request.from_addr.display_name == "sipp"
    assert request.to_addr.tag is None
    assert request.top_via.branch == "z9hG4bK-12345-1-0"
    assert request.contacts == [
        NameAddress(SipUri(user="sipp", host="127.0.1.1", port=5061))
    ]
    assert request.max_forwards == 70
    assert request.content_type == "application/sdp"
    assert request.body == SDP
    assert request.expires is None
    assert request.routes == []


def test_linphone_register_fields() -> None:
    request = parse_message(LINPHONE_REGISTER)
    assert isinstance(request, Request)
    assert request.top_via.transport == "TLS"
    assert request.top_via.has_rport
    assert request.to_addr.uri == SipUri(user="alice", host="sip.linphone.org")
    assert request.headers.get_all("Supported") == [
        "replaces",
        "outbound",
        "gruu",
        "path",
    ]
    assert request.headers.get_all("Accept") == ["application/sdp", "text/plain"]
    [contact] = request.contacts
    assert (
        contact.param("+sip.instance")
        == '"<urn:uuid:a1b2c3d4-0000-0000-0000-000000000001>"'
    )
    assert contact.uri.as_sip().transport == "tls"
    assert request.expires == 600
    assert request.body == b""


def test_pjsua_response_fields() -> None:
    response = parse_message(PJSUA_200_IPV6)
    assert isinstance(response, Response)
    assert (response.status, response.reason) == (200, "OK")
    via = response.top_via
    assert via.sent_by == ("2001:db8::10", 5070)
    assert (via.rport, via.received) == (5070, "2001:db8::10")
    assert [str(r.uri) for r in response.record_routes] == [
        "sip:[2001:db8::1];lr",
        "sip:proxy.example.com;lr",
    ]
    assert response.from_addr.display_name == 'Alice "A" Smith'
    assert response.to_addr.uri.as_sip().host == "2001:db8::20"
    assert len(response.headers.get_all("Allow")) == 11
    assert response.headers.get("Session-Expires") == "1800;refresher=uac"
    assert response.cseq.method == "INVITE"


def test_multiple_vias_in_one_line_and_many_lines() -> None:
    request = parse_message(BARESIP_BYE)
    assert [v.branch for v in request.vias] == [
        "z9hG4bK9a1b2c3",
        "z9hG4bKp1",
        "z9hG4bKp2",
    ]
    assert request.top_via.transport == "TCP"
    assert request.routes[0].uri.as_sip().has_param("lr")


def test_tel_request_uri() -> None:
    request = parse_message(TEL_MESSAGE)
    assert isinstance(request, Request)
    assert request.uri.scheme == "tel"
    assert request.uri.as_sip().user == "+1-201-555-0123"
    assert request.content_type == "text/plain"
    assert request.body.decode() == "héllo"


def test_empty_reason_phrase() -> None:
    response = parse_message(NOTIFY_EMPTY_REASON)
    assert isinstance(response, Response)
    assert (response.status, response.reason) == (299, "")


def test_status_line_without_reason_separator() -> None:
    data = NOTIFY_EMPTY_REASON.replace(b"SIP/2.0 299 \r\n", b"SIP/2.0 180\r\n")
    response = parse_message(data)
    assert isinstance(response, Response)
    assert (response.status, response.reason) == (180, "")


def test_reason_phrase_with_spaces_and_utf8() -> None:
    data = NOTIFY_EMPTY_REASON.replace(b"299 ", "486 Busy Here – très".encode())
    response = parse_message(data)
    assert isinstance(response, Response)
    assert response.reason == "Busy Here – très"
    assert bytes(response) == data


COMPACT = (
    b"INVITE sip:bob@10.0.0.2 SIP/2.0\r\n"
    b"v: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK9a1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"t: <sip:bob@10.0.0.2>\r\n"
    b'f: "Alice" <sip:alice@10.0.0.1>;tag=1\r\n'
    b"i: abc@10.0.0.1\r\n"
    b"CSeq: 100 INVITE\r\n"
    b"m: <sip:alice@10.0.0.1:5060;transport=tcp>\r\n"
    b"k: replaces\r\n"
    b"c: application/sdp\r\n"
    b"l: 4\r\n"
    b"\r\n"
    b"v=0\n"
)


def test_compact_forms() -> None:
    request = parse_message(COMPACT)
    assert request.call_id == "abc@10.0.0.1"
    assert request.to_addr.uri.as_sip().user == "bob"
    assert request.from_addr.tag == "1"
    assert request.content_type == "application/sdp"
    assert request.headers.get("Supported") == "replaces"
    assert request.headers.get("k") == "replaces"
    assert request.body == b"v=0\n"
    names = [name for name, _ in request.headers.items]
    assert names[:3] == ["Via", "Max-Forwards", "To"]
    assert "Content-Length" in names and "l" not in names
    again = parse_message(bytes(request))
    assert again == request
    assert b"\r\nCall-ID: abc@10.0.0.1\r\n" in bytes(request)


WSINV_BODY = (
    b"v=0\r\no=mhandley 29739 7272939 IN IP4 192.0.2.3\r\ns=-\r\nc=IN IP4 192.0.2.4\r\n"
    b"t=0 0\r\nm=audio 49217 RTP/AVP 0 12\r\nm=video 3227 RTP/AVP 31\r\n"
    b"a=rtpmap:31 LPC\r\n"
)

# After RFC 4475 §3.1.1.1 "wsinv": folding, odd whitespace, compact forms, escapes.
WSINV = (
    b"INVITE sip:vivekg@chair-dnrc.example.com;unknownparam SIP/2.0\r\n"
    b"TO :\r\n"
    b" sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n\r\n"
    b'from   : "J Rosenberg \\\\\\""       <sip:jdrosen@example.com>\r\n'
    b"  ;\r\n"
    b"  tag = 98asjd8\r\n"
    b"MaX-fOrWaRdS: 0068\r\n"
    b"Call-ID: wsinv.ndaksdj@192.0.2.1\r\n"
    b"Content-Length   : " + str(len(WSINV_BODY)).encode() + b"\r\n"
    b"cseq: 0009\r\n"
    b"  INVITE\r\n"
    b"Via  : SIP  /   2.0\r\n"
    b" /UDP\r\n"
    b"    192.0.2.2;branch=390skdjuw\r\n"
    b"s :\r\n"
    b"NewFangledHeader:   newfangled value\r\n"
    b" continued newfangled value\r\n"
    b"UnknownHeaderWithUnusualValue: ;;,,;;,;\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Route:\r\n"
    b" <sip:services.example.com;lr;unknownwith=value;unknown-no-value>\r\n"
    b"v:  SIP  / 2.0  / TCP     spindle.example.com   ;\r\n"
    b"  branch  =   z9hG4bK9ikj8  ,\r\n"
    b" SIP  /    2.0   / UDP  192.168.255.111   ; branch=\r\n"
    b" z9hG4bK30239\r\n"
    b'm:"Quoted string \\"\\"" <sip:jdrosen@example.com> ; newparam =\r\n'
    b"      newvalue ;\r\n"
    b"  secondparam ; q = 0.33\r\n"
    b"\r\n" + WSINV_BODY
)


def test_wsinv_torture_message() -> None:
    request = parse_message(WSINV)
    assert isinstance(request, Request)
    assert request.uri.as_sip().has_param("unknownparam")
    assert request.to_addr.tag == "1918181833n"
    assert request.from_addr.display_name == 'J Rosenberg \\"'
    assert request.from_addr.tag == "98asjd8"
    assert request.max_forwards == 68
    assert request.cseq == CSeq(9, "INVITE")
    assert (
        request.headers.get("NewFangledHeader")
        == "newfangled value continued newfangled value"
    )
    assert request.headers.get("Subject") == ""
    assert [(v.transport, v.host, v.branch) for v in request.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    [contact] = request.contacts
    assert contact.display_name == 'Quoted string ""'
    assert contact.params == (
        ("newparam", "newvalue"),
        ("secondparam", None),
        ("q", "0.33"),
    )
    assert request.routes[0].uri.as_sip().param("unknownwith") == "value"
    assert request.body == WSINV_BODY
    assert parse_message(bytes(request)) == request


def test_escaped_uris() -> None:
    # After RFC 4475 §3.1.1.2 "esc01".
    data = wire(
        "INVITE sip:sips%3Auser%40example.com@example.net SIP/2.0",
        "To: sip:%75se%72@example.com",
        "From: <sip:I%20have%20spaces@example.net>;tag=938",
        "Max-Forwards: 87",
        "i: esc01.239409asdfakjkn23onasd0-3234",
        "CSeq: 234234 INVITE",
        "Via: SIP/2.0/UDP host5.example.net;branch=z9hG4bKkdjuw",
        "C: application/sdp",
        "Contact: <sip:cal%6Cer@host5.example.net;%6C%72;n%61me=v%61lue%25%34%31>",
    )
    request = parse_message(data)
    assert isinstance(request, Request)
    assert request.uri.as_sip().user == "sips:user@example.com"
    assert request.uri.as_sip().host == "example.net"
    assert request.to_addr.uri.as_sip().user == "user"
    assert request.from_addr.uri.as_sip().user == "I have spaces"
    assert request.contacts[0].uri.as_sip().user == "caller"
    assert str(request.uri) == "sip:sips%3Auser%40example.com@example.net"


def test_bare_lf_line_endings() -> None:
    head, _, body = BARESIP_BYE.partition(b"\r\n\r\n")
    data = head.replace(b"\r\n", b"\n") + b"\n\n" + body
    request = parse_message(data)
    assert request == parse_message(BARESIP_BYE)
    assert bytes(request) == BARESIP_BYE


def test_bare_lf_with_exact_length() -> None:
    lines = BARESIP_BYE.decode().split("\r\n")[:-3]
    data = ("\n".join(lines) + "\nContent-Length: 3\n\nabc").encode()
    request = parse_message(data)
    assert request.body == b"abc"
    assert request.cseq == CSeq(101, "BYE")


def test_leading_crlf_is_ignored() -> None:
    assert parse_message(b"\r\n\r\n" + SIPP_INVITE) == parse_message(SIPP_INVITE)
    assert parse_message(b"\n" + SIPP_INVITE) == parse_message(SIPP_INVITE)


def test_whitespace_around_colon() -> None:
    data = SIPP_INVITE.replace(b"Call-ID: ", b"Call-ID   :   ").replace(
        b"CSeq: ", b"CSeq\t:"
    )
    request = parse_message(data)
    assert request.call_id == "1-12345@127.0.1.1"
    assert request.cseq == CSeq(1, "INVITE")


def test_extra_datagram_bytes_after_body_are_discarded() -> None:
    request = parse_message(SIPP_INVITE + b"garbage after body")
    assert request.body == SDP
    assert bytes(request) == SIPP_INVITE


def test_datagram_without_content_length_takes_the_rest() -> None:
    data = wire(*BARESIP_BYE.decode().split("\r\n")[:-3], length=False) + b"xyz"
    request = parse_message(data)
    assert request.body == b"xyz"
    assert request.headers.get("Content-Length") == "3"


def test_stream_without_content_length_is_an_error() -> None:
    data = wire(*BARESIP_BYE.decode().split("\r\n")[:-3], length=False)
    with pytest.raises(ParseError, match="missing Content-Length"):
        parse_message(data, stream=True)


def test_truncated_body() -> None:
    with pytest.raises(
        ParseError, match=f"truncated body: Content-Length {len(SDP)}, got 10"
    ):
        parse_message(SIPP_INVITE[: -len(SDP) + 10])


@pytest.mark.parametrize(
    "value", [b"-1", b"abc", b"1.5", b"", b"12345678901", b"\xd9\xa3"]
)
def test_bad_content_length(value: bytes) -> None:
    data = BARESIP_BYE.replace(b"Content-Length: 0", b"Content-Length: " + value)
    with pytest.raises(ParseError, match="Content-Length"):
        parse_message(data)


def test_conflicting_content_lengths() -> None:
    data = BARESIP_BYE.replace(b"Content-Length: 0", b"Content-Length: 0\r\nl: 4")
    with pytest.raises(ParseError, match="conflicting Content-Length"):
        parse_message(data + b"abcd")


def _drop_header(data: bytes, prefix: bytes) -> bytes:
    lines = data.split(b"\r\n")
    return b"\r\n".join(line for line in lines if not line.startswith(prefix))


@pytest.mark.parametrize("name", ["Via", "From", "To", "Call-ID", "CSeq"])
@pytest.mark.parametrize("data", [SIPP_INVITE, PJSUA_200_IPV6])
def test_missing_mandatory_header(name: str, data: bytes) -> None:
    broken = _drop_header(data, name.encode() + b":")
    with pytest.raises(
        MessageParseError, match=f"missing mandatory header: {name}"
    ) as info:
        parse_message(broken)
    assert info.value.headers is not None
    assert info.value.partial is info.value.headers
    assert name not in info.value.headers
    assert "From" in info.value.headers or name == "From"


def test_error_attributes_for_a_request() -> None:
    broken = _drop_header(SIPP_INVITE, b"Call-ID:")
    with pytest.raises(MessageParseError) as info:
        parse_message(broken)
    error = info.value
    assert error.is_request
    assert error.method == "INVITE"
    assert isinstance(error.partial, Headers)
    assert (
        error.partial.get("Via")
        == "SIP/2.0/UDP 127.0.1.1:5061;branch=z9hG4bK-12345-1-0"
    )
    assert error.status == 400


def test_error_attributes_for_a_response() -> None:
    with pytest.raises(MessageParseError) as info:
        parse_message(_drop_header(PJSUA_200_IPV6, b"CSeq:"))
    assert not info.value.is_request
    assert info.value.method is None


def test_error_before_headers_has_no_partial() -> None:
    with pytest.raises(MessageParseError) as info:
        parse_message(b"INVITE sip:a@h SIP/2.0\r\nVia: x\r\n\xff\xfe: y\r\n\r\n")
    assert info.value.headers is None
    assert info.value.partial is None
    assert info.value.is_request
    assert info.value.method == "INVITE"


def test_missing_max_forwards_is_accepted() -> None:
    request = parse_message(_drop_header(SIPP_INVITE, b"Max-Forwards:"))
    assert request.max_forwards is None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"CSeq: 1 INVITE", b"CSeq: abc INVITE", "bad CSeq: 'abc INVITE'"),
        (b"CSeq: 1 INVITE", b"CSeq: -1 INVITE", "bad CSeq"),
        (b"CSeq: 1 INVITE", b"CSeq: 2147483648 INVITE", "bad CSeq"),
        (b"CSeq: 1 INVITE", b"CSeq: 1 BYE", "differs from 'INVITE'"),
        (b"CSeq: 1 INVITE", b"CSeq: 1 invite", "differs"),
        (b"Max-Forwards: 70", b"Max-Forwards: seventy", "bad Max-Forwards"),
        (b"Via: SIP/2.0/UDP", b"Via: SIP/3.0/UDP", "bad Via"),
        (b"From: sipp <sip:", b"From: sipp <", "bad From"),
        (b"From: sipp <sip", b"From: sipp <ht tp", "bad From"),
        (b"To: service <", b"To: service ", "bad To"),
        (b"Contact: sip:sipp", b"Contact: <sip:sipp", "bad Contact"),
        (b"Call-ID: 1-12345@127.0.1.1", b"Call-ID:", "bad Call-ID: empty"),
        (b"Subject: Performance Test", b"To: <sip:x@h>", "more than one To"),
        (b"Subject: Performance Test", b"Call-ID: again", "more than one Call-ID"),
        (b"Subject: Performance Test", b"No colon here", "bad header line"),
        (b"Subject: Performance Test", b"Bad Name: x", "bad header line"),
        (b"Subject: Performance Test", b": x", "bad header line"),
    ],
)
def test_bad_header_values(old: bytes, new: bytes, message: str) -> None:
    assert old in SIPP_INVITE
    with pytest.raises(MessageParseError, match=message) as info:
        parse_message(SIPP_INVITE.replace(old, new, 1))
    assert info.value.is_request


@pytest.mark.parametrize(
    ("start_line", "message"),
    [
        (b"INVITE sip: SIP/2.0", "bad Request-URI 'sip:': empty host"),
        (b"INVITE example.com SIP/2.0", "bad Request-URI 'example.com': no scheme"),
        (b"INVITE http:/a<b> SIP/2.0", "bad Request-URI"),
        (b"INVITE x-foo: SIP/2.0", "bad Request-URI 'x-foo:': empty x-foo: URI"),
        (b"INVITE sip:a@h SIP/3.0", "unsupported SIP version"),
        (b"INVITE sip:a@h HTTP/1.1", "unsupported SIP version"),
        (b"INVITE  sip:a@h SIP/2.0", "bad request line"),
        (b"INVITE sip:a@h", "bad request line"),
        (b"INVITE sip:a@h SIP/2.0 extra", "bad request line"),
        (b"IN(VITE sip:a@h SIP/2.0", "bad method"),
        (b"SIP/2.0 99 Too Low", "bad status line"),
        (b"SIP/2.0 700 Too High", "bad status line"),
        (b"SIP/2.0 20x OK", "bad status line"),
        (b"SIP/2.0", "bad status line"),
        (b"SIP/1.0 200 OK", "unsupported SIP version"),
    ],
)
def test_bad_start_lines(start_line: bytes, message: str) -> None:
    data = start_line + SIPP_INVITE[SIPP_INVITE.index(b"\r\n") :]
    with pytest.raises(ParseError, match=message):
        parse_message(data)


def test_version_is_case_insensitive() -> None:
    data = SIPP_INVITE.replace(b"SIP/2.0\r\n", b"sip/2.0\r\n", 1)
    assert parse_message(data).call_id == "1-12345@127.0.1.1"


def test_methods_are_case_sensitive_and_kept() -> None:
    data = SIPP_INVITE.replace(b"INVITE sip:", b"invite sip:").replace(
        b"1 INVITE", b"1 invite"
    )
    request = parse_message(data)
    assert isinstance(request, Request)
    assert request.method == "invite"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n\r\n",
        b"\x00\x01\x02\x03",
        b"garbage",
        b"garbage\r\n\r\n",
        b"INVITE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n",
        b" folded first\r\n\r\n",
        b"INVITE sip:a@h SIP/2.0\r\n folded\r\n\r\n",
        bytes(range(256)),
    ],
)
def test_garbage(data: bytes) -> None:
    with pytest.raises(ParseError):
        parse_message(data)


def test_non_utf8_header_section() -> None:
    data = SIPP_INVITE.replace(b"Performance Test", b"Perf\xe9rmance")
    with pytest.raises(ParseError, match="not valid UTF-8"):
        parse_message(data)


def test_non_utf8_body_is_kept() -> None:
    data = wire(*BARESIP_BYE.decode().split("\r\n")[:-3], body=b"\xff\xfe\x00")
    assert parse_message(data).body == b"\xff\xfe\x00"


def test_size_limits() -> None:
    padding = "x" * (MAX_MESSAGE_SIZE - len(BARESIP_BYE) + 1)
    big = BARESIP_BYE.replace(b"User-Agent: ", f"User-Agent: {padding}".encode())
    with pytest.raises(ParseError, match="too large"):
        parse_message(big)
    long_line = BARESIP_BYE.replace(b"User-Agent: ", b"User-Agent: " + b"x" * 8200)
    with pytest.raises(ParseError, match="longer than 8192"):
        parse_message(long_line)
    many = BARESIP_BYE.replace(b"User-Agent: ", b"X-A: 1\r\n" * 260 + b"User-Agent: ")
    with pytest.raises(ParseError, match="more than 256 header lines"):
        parse_message(many)
    folded = BARESIP_BYE.replace(
        b"User-Agent: ", b"User-Agent: " + (b"x" * 100 + b"\r\n ") * 90
    )
    with pytest.raises(ParseError, match="longer than 8192"):
        parse_message(folded)


def test_just_under_the_limits_is_fine() -> None:
    line = BARESIP_BYE.replace(b"User-Agent: ", b"User-Agent: " + b"x" * 8000)
    assert (
        parse_message(line).headers.get("User-Agent")
        == "x" * 8000 + BARESIP_BYE.split(b"User-Agent: ")[1].split(b"\r\n")[0].decode()
    )
    many = BARESIP_BYE.replace(b"User-Agent: ", b"X-A: 1\r\n" * 240 + b"User-Agent: ")
    assert len(parse_message(many).headers.get_all("X-A")) == 240


# Headers


def test_headers_of_canonicalises() -> None:
    headers = Headers.of(("call-id", "x"), ("v", "SIP/2.0/UDP h"), ("cseq", "1 BYE"))
    assert headers.items == (
        ("Call-ID", "x"),
        ("Via", "SIP/2.0/UDP h"),
        ("CSeq", "1 BYE"),
    )


def test_headers_get() -> None:
    headers = Headers.of(("Via", "a"), ("Via", "b"), ("Call-ID", "c"))
    assert headers.get("via") == "a"
    assert headers.get("v") == "a"
    assert headers.get("I") == "c"
    assert headers.get("To") is None
    assert "CALL-ID" in headers
    assert "i" in headers
    assert "To" not in headers
    assert 5 not in headers


def test_get_all_splits_list_headers_only() -> None:
    headers = Headers.of(
        ("Via", "SIP/2.0/UDP a;branch=1, SIP/2.0/UDP b;branch=2"),
        ("Via", "SIP/2.0/UDP c;branch=3"),
        ("Allow", "INVITE, ACK,BYE"),
        ("WWW-Authenticate", 'Digest realm="a, b", nonce="n"'),
        ("Contact", "*"),
        ("Subject", "hello, world"),
    )
    assert len(headers.get_all("Via")) == 3
    assert headers.get_all("Allow") == ["INVITE", "ACK", "BYE"]
    assert headers.get_all("WWW-Authenticate") == ['Digest realm="a, b", nonce="n"']
    assert headers.get_all("Contact") == ["*"]
    assert headers.get_all("Subject") == ["hello, world"]
    assert headers.get_all("Route") == []


def test_headers_add_set_remove() -> None:
    headers = Headers.of(("Via", "a"), ("To", "t"), ("Via", "b"))
    assert headers.add("via", "z", first=True).items[0] == ("Via", "z")
    assert headers.add("route", "r").items[-1] == ("Route", "r")
    assert headers.set("Via", "only").items == (("Via", "only"), ("To", "t"))
    assert headers.set("From", "f").items[-1] == ("From", "f")
    assert headers.remove("v").items == (("To", "t"),)
    assert headers.items == (("Via", "a"), ("To", "t"), ("Via", "b"))


def test_contact_star() -> None:
    data = LINPHONE_REGISTER.replace(
        LINPHONE_REGISTER[LINPHONE_REGISTER.index(b"Contact:") :].split(b"\r\n")[0],
        b"Contact: *",
    ).replace(b"Expires: 600", b"Expires: 0")
    request = parse_message(data)
    assert request.contacts == []
    assert request.expires == 0


# Constructed messages


def _invite() -> Request:
    headers = Headers.of(
        (
            "Via",
            str(
                Via(
                    "UDP", "10.0.0.1", 5060, (("branch", "z9hG4bKabc"), ("rport", None))
                )
            ),
        ),
        ("Max-Forwards", "70"),
        (
            "From",
            str(
                NameAddress(
                    SipUri(user="alice", host="10.0.0.1"), "Alice", (("tag", "a1"),)
                )
            ),
        ),
        ("To", str(NameAddress(SipUri(user="bob", host="2001:db8::2", port=5070)))),
        ("Call-ID", "abc@10.0.0.1"),
        ("CSeq", str(CSeq(1, "INVITE"))),
        ("Contact", "<sip:alice@10.0.0.1:5060>"),
    )
    return Request("INVITE", SipUri(user="bob", host="2001:db8::2", port=5070), headers)


def test_constructed_request_gets_content_length() -> None:
    request = _invite()
    assert request.headers.get("Content-Length") == "0"
    assert bytes(request).endswith(b"\r\nContent-Length: 0\r\n\r\n")
    assert bytes(request).startswith(
        b"INVITE sip:bob@[2001:db8::2]:5070 SIP/2.0\r\nVia: "
    )


def test_content_length_is_always_len_body() -> None:
    request = _invite()
    wrong = request.with_headers(request.headers.set("Content-Length", "99"))
    assert wrong.headers.get("Content-Length") == "0"
    with_body = request.with_body(SDP, "application/sdp")
    assert with_body.headers.get("Content-Length") == str(len(SDP))
    assert with_body.content_type == "application/sdp"
    assert bytes(with_body).endswith(b"\r\n\r\n" + SDP)
    cleared = with_body.with_body(b"", None)
    assert "Content-Type" not in cleared.headers
    assert cleared.headers.get("Content-Length") == "0"


def test_constructed_round_trips() -> None:
    request = _invite()
    messages: list[Message] = [
        request,
        request.with_body(SDP, "application/sdp"),
        Response(180, "Ringing", request.headers),
        Response(200, "OK", request.headers).with_body(SDP, "application/sdp"),
        Response(486, "Busy Here", request.headers.remove("Contact")),
        Response(100, "", request.headers),
        Request(
            "BYE",
            SipUri("sips", "bob", None, "example.com"),
            request.headers.set("CSeq", "2 BYE"),
        ),
    ]
    for message in messages:
        assert parse_message(bytes(message)) == message
        assert parse_message(bytes(message), stream=True) == message
        assert bytes(parse_message(bytes(message))) == bytes(message)


def test_header_value_with_line_break_is_refused() -> None:
    request = _invite().with_headers(
        _invite().headers.set("Subject", "a\r\nVia: injected")
    )
    with pytest.raises(ValueError, match="line break"):
        bytes(request)


def test_accessors_raise_parse_error_when_missing() -> None:
    request = Request("OPTIONS", SipUri(host="h"), Headers())
    for accessor in ("call_id", "cseq", "from_addr", "to_addr", "top_via"):
        with pytest.raises(ParseError, match="missing mandatory header"):
            getattr(request, accessor)
    assert request.vias == []
    assert request.contacts == []
    assert request.content_type is None
    assert request.max_forwards is None


def test_bad_expires_accessor() -> None:
    request = _invite().with_headers(_invite().headers.add("Expires", "soon"))
    with pytest.raises(ParseError, match="bad Expires"):
        _ = request.expires


ACCESSORS = ("call_id", "cseq", "from_addr", "to_addr", "top_via", "contacts", "vias")
PARSED_TWICE = [
    # two Vias on one line and one more on the next; Contacts on two lines
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1;rport, SIP/2.0/TCP b.example.com:5070;branch=z9hG4bK2\r\n"
    "Via: SIP/2.0/UDP c.example.com;branch=z9hG4bK3\r\nMax-Forwards: 70\r\n"
    'From: "Alice" <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>\r\n'
    "Call-ID: c1@a\r\nCSeq: 7 INVITE\r\nContact: <sip:alice@a.example.com>;expires=60, <sip:alice@b.example.com>\r\n"
    "Contact: sip:alice@c.example.com\r\nContent-Length: 0\r\n\r\n",
    # Contact: * (a REGISTER removing every binding)
    "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP a.example.com;branch=z9hG4bK4\r\n"
    "From: <sip:alice@example.com>;tag=r1\r\nTo: <sip:alice@example.com>\r\nCall-ID: r1\r\nCSeq: 2 REGISTER\r\n"
    "Contact: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n",
    # a response without Contact
    "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP a.example.com;branch=z9hG4bK5;received=10.0.0.1\r\n"
    "From: <sip:alice@example.com>;tag=a1\r\nTo: <sip:bob@example.com>;tag=b1\r\nCall-ID: c2\r\n"
    "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n",
]


@pytest.mark.parametrize("text", PARSED_TWICE)
def test_what_the_parser_checked_is_what_the_accessors_give(text: str) -> None:
    """The parser's checks hand their parsed values to the message's accessors: the same
    values the accessors parse themselves from the header lines."""
    message = parse_message(text.encode())
    if isinstance(message, Request):
        fresh: Request | Response = Request(message.method, message.uri, message.headers, message.body)
    else:
        assert isinstance(message, Response)
        fresh = Response(message.status, message.reason, message.headers, message.body)
    primed = message.parsed(*ACCESSORS)
    assert {"call_id", "cseq", "from_addr", "to_addr", "top_via"} <= set(primed)  # nothing parsed twice
    assert ("contacts" in primed) == ("Contact: sip" in text or "Contact: <" in text)
    for name in ACCESSORS:
        assert getattr(message, name) == getattr(fresh, name), name
