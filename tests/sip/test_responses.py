"""Responses copy Via, From, To, Call-ID and CSeq byte for byte (RFC 3261 §8.2.6.2), and
a malformed request gets a 400 whose reason phrase names the header at fault."""

from __future__ import annotations

import pytest

from softphone.sip.endpoint import Endpoint, MessageDropped, Peer, RequestReceived, build_response
from softphone.sip.headers import NameAddress
from softphone.sip.message import Request, Response, parse_message
from softphone.sip.transaction import Timers

SOURCE = Peer("udp", "192.0.2.7", 40000)


def wire(*lines: str, body: bytes = b"") -> bytes:
    return ("\r\n".join([*lines, f"Content-Length: {len(body)}"]) + "\r\n\r\n").encode() + body


# Odd but legal spellings everywhere: compact forms, spacing around ";" and "=",
# quoted display names, a leading-zero CSeq, two Vias on one line.
ODD_INVITE = wire(
    "INVITE sip:bob@192.0.2.9 SIP/2.0",
    "v: SIP/2.0/UDP 10.1.1.1:5070 ; branch = z9hG4bKodd ; rport",
    "Via: SIP/2.0/TCP  proxy.example.com;branch=z9hG4bKp1 ,SIP/2.0/UDP [2001:db8::9]:5062;branch=z9hG4bKp2",
    "Record-Route: <sip:proxy.example.com;lr;ftag=a1>, <sip:edge.example.com;lr>",
    "Record-Route: <sip:core.example.com;lr>",
    "Max-Forwards: 69",
    'f: "J Rosenberg \\\\\\"" <sip:jdrosen@example.com>  ;  tag = 98asjd8 ; x-Odd="a;b"',
    "t: Bob <sip:%62ob@Biloxi.Example.COM;user=phone> ; Purpose = test",
    "i: odd.ndaksdj@192.0.2.1",
    "CSeq: 0009\t INVITE",
    "Contact: <sip:jdrosen@10.1.1.1:5070>",
)


def line(data: bytes, name: bytes) -> list[bytes]:
    """The header lines called ``name`` in ``data``, as sent."""
    return [raw.split(b":", 1)[1].strip() for raw in data.split(b"\r\n")[1:] if raw.split(b":", 1)[0].strip() == name]


def test_response_copies_headers_byte_for_byte() -> None:
    request = parse_message(ODD_INVITE)
    assert isinstance(request, Request)
    for status in (100, 180, 200, 486):
        data = bytes(build_response(request, status))
        assert line(data, b"Via") == line(ODD_INVITE, b"v") + line(ODD_INVITE, b"Via")
        assert line(data, b"From") == line(ODD_INVITE, b"f")
        assert line(data, b"To") == line(ODD_INVITE, b"t")
        assert line(data, b"Call-ID") == line(ODD_INVITE, b"i")
        assert line(data, b"CSeq") == [b"0009\t INVITE"]
        response = parse_message(data)
        assert isinstance(response, Response) and response.status == status


def test_record_route_is_copied_in_order_for_101_to_299_only() -> None:
    request = parse_message(ODD_INVITE)
    assert isinstance(request, Request)
    for status in (180, 200):
        assert line(bytes(build_response(request, status)), b"Record-Route") == line(ODD_INVITE, b"Record-Route")
    for status in (100, 404):
        assert line(bytes(build_response(request, status)), b"Record-Route") == []


def test_to_tag_is_appended_and_the_rest_kept() -> None:
    request = parse_message(ODD_INVITE)
    assert isinstance(request, Request)
    data = bytes(build_response(request, 180, to_tag="b1"))
    assert line(data, b"To") == [b"Bob <sip:%62ob@Biloxi.Example.COM;user=phone> ; Purpose = test;tag=b1"]
    response = parse_message(data)
    assert response.to_addr.tag == "b1"
    assert response.to_addr.uri.matches(request.to_addr.uri)


def test_responses_to_one_request_each_get_their_own_tag_and_routes() -> None:
    """A 180 and its 200 copy the request's lines once; another tag or status class does not
    reuse them."""
    request = parse_message(ODD_INVITE)
    assert isinstance(request, Request)
    to = b"Bob <sip:%62ob@Biloxi.Example.COM;user=phone> ; Purpose = test"
    routes = line(ODD_INVITE, b"Record-Route")
    for status, tag, expected_to, expected_routes in (
        (100, "b1", to, []),
        (180, "b1", to + b";tag=b1", routes),
        (200, "b1", to + b";tag=b1", routes),
        (200, "b2", to + b";tag=b2", routes),
        (486, "b2", to + b";tag=b2", []),
        (180, None, to, routes),
        (100, "b1", to, []),
    ):
        data = bytes(build_response(request, status, to_tag=tag))
        assert (line(data, b"To"), line(data, b"Record-Route")) == ([expected_to], expected_routes), (status, tag)
        assert line(data, b"Via") == line(ODD_INVITE, b"v") + line(ODD_INVITE, b"Via")


def test_no_to_tag_on_100_trying() -> None:
    request = parse_message(ODD_INVITE)
    assert isinstance(request, Request)
    assert line(bytes(build_response(request, 100, to_tag="b1")), b"To") == line(ODD_INVITE, b"t")


def test_existing_to_tag_is_kept() -> None:
    data = ODD_INVITE.replace(b"Purpose = test", b"Purpose = test ;TAG = x9")
    request = parse_message(data)
    assert isinstance(request, Request)
    assert line(bytes(build_response(request, 200, to_tag="b1")), b"To") == line(data, b"t")


@pytest.mark.parametrize(
    ("to", "expected"),
    [
        (b"sip:bob@h", b"sip:bob@h;tag=b1"),
        (b"mailto:bob@example.com", b"mailto:bob@example.com;tag=b1"),
        (b"<http://example.com/bob;x=y>", b"<http://example.com/bob;x=y>;tag=b1"),
        (b"<urn:uuid:1> ;", b"<urn:uuid:1>;tag=b1"),
    ],
)
def test_to_tag_with_addr_spec_and_other_schemes(to: bytes, expected: bytes) -> None:
    request = parse_message(ODD_INVITE.replace(line(ODD_INVITE, b"t")[0], to))
    assert isinstance(request, Request)
    data = bytes(build_response(request, 200, to_tag="b1"))
    assert line(data, b"To") == [expected]
    response = parse_message(data)
    assert (str(response.to_addr.uri), response.to_addr.tag) == (str(request.to_addr.uri), "b1")


def test_endpoint_responses_keep_the_lower_vias_and_other_headers() -> None:
    endpoint = Endpoint(Timers())
    events = endpoint.receive(ODD_INVITE, SOURCE, 0.0)
    assert isinstance(events[0], RequestReceived)
    (trying,) = endpoint.datagrams_to_send()
    # the top Via gets received and rport (RFC 3261 §18.2.1, RFC 3581 §4); the others,
    # and From, To, Call-ID and CSeq, come back as sent
    assert line(trying.data, b"Via")[1:] == [v.strip() for v in line(ODD_INVITE, b"Via")[0].split(b",")]
    for ours, theirs in ((b"From", b"f"), (b"To", b"t"), (b"Call-ID", b"i"), (b"CSeq", b"CSeq")):
        assert line(trying.data, ours) == line(ODD_INVITE, theirs)


# ---------------------------------------------------------------- 400 Bad Request


def bad_request(data: bytes) -> Response:
    endpoint = Endpoint(Timers())
    events = endpoint.receive(data, SOURCE, 0.0)
    assert len(events) == 1 and isinstance(events[0], MessageDropped)
    (sent,) = endpoint.datagrams_to_send()
    response = parse_message(sent.data)
    assert isinstance(response, Response) and response.status == 400
    assert (response.headers.get("Warning") or "").startswith('399 softphone "')
    return response


INVITE = wire(
    "INVITE sip:bob@192.0.2.9 SIP/2.0",
    "Via: SIP/2.0/UDP 10.1.1.1:5070;branch=z9hG4bKabc",
    "Max-Forwards: 70",
    'From: "Alice" <sip:alice@10.1.1.1> ;tag=a1',
    "To: <sip:bob@192.0.2.9>",
    "Call-ID: c1@10.1.1.1",
    "CSeq: 7 INVITE",
    "Contact: <sip:alice@10.1.1.1:5070>",
)


@pytest.mark.parametrize(
    ("old", "new", "phrase"),
    [
        (b"CSeq: 7 INVITE", b"CSeq: seven INVITE", "Bad CSeq"),
        (b"CSeq: 7 INVITE", b"CSeq: 7 BYE", "Bad CSeq"),
        (b"Call-ID: c1@10.1.1.1\r\n", b"", "Missing Call-ID"),
        (b"Call-ID: c1@10.1.1.1", b"Call-ID: ", "Bad Call-ID"),
        (b"From: \"Alice\" <sip:", b"From: \"Alice\" <", "Bad From Header"),
        (b"To: <sip:bob@192.0.2.9>", b"To: <sip:bob@192.0.2.9", "Bad To Header"),
        (b"To: <sip:bob@192.0.2.9>\r\n", b"", "Missing To Header"),
        (b"Max-Forwards: 70", b"To: <sip:carol@h>", "Duplicate To Header"),
        (b"Contact: <sip:", b"Contact: <x y:", "Bad Contact"),
        (b"Max-Forwards: 70", b"Max-Forwards: many", "Bad Max-Forwards"),
        (b"Max-Forwards: 70", b"Route: <sip:p;lr", "Bad Route"),
        (b"Max-Forwards: 70", b"Record-Route: <sip:p;lr>, sip p", "Bad Record-Route"),
        (b"Max-Forwards: 70", b"Via: SIP/2.0/UDP", "Bad Via"),
        (b"Content-Length: 0", b"Content-Length: x", "Bad Content-Length"),
        (b"INVITE sip:bob@192.0.2.9 SIP", b"INVITE bob@192.0.2.9 SIP", "Bad Request-URI"),
        (b"INVITE sip:bob@192.0.2.9 SIP/2.0", b"INVITE sip:bob@192.0.2.9  SIP/2.0", "Bad Request Line"),
        (b"Max-Forwards: 70", b"Max Forwards: 70", "Bad Header Line"),
        (b"Max-Forwards: 70", b"X-Name: caf\xe9", "Header Not UTF-8"),
    ],
)
def test_400_reason_phrase_names_the_header(old: bytes, new: bytes, phrase: str) -> None:
    assert old in INVITE
    response = bad_request(INVITE.replace(old, new, 1))
    assert response.reason == phrase


def test_400_copies_what_it_can_read_and_adds_a_to_tag() -> None:
    data = INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: many")
    response = bad_request(data)
    sent = bytes(response)
    for name in (b"Via", b"From", b"Call-ID", b"CSeq"):
        assert line(sent, name) == line(data, name)
    # "the UAS MUST add a tag to the To header field in the response" (RFC 3261 §8.2.6.2)
    (to,) = line(sent, b"To")
    assert to.startswith(b"<sip:bob@192.0.2.9>;tag=") and len(to) > len(b"<sip:bob@192.0.2.9>;tag=") + 7
    assert response.headers.get("Warning") == "399 softphone \"bad Max-Forwards: 'many': not a number\""


def test_400_copies_the_vias_up_to_one_it_cannot_read() -> None:
    data = INVITE.replace(
        b"Max-Forwards: 70", b"Via: SIP/2.0/TCP  p1.example.com;branch=z9hG4bK1, SIP/2.0/UDP, SIP/2.0/UDP p3"
    )
    response = bad_request(data)
    assert response.reason == "Bad Via"
    assert line(bytes(response), b"Via") == [line(data, b"Via")[0], b"SIP/2.0/TCP  p1.example.com;branch=z9hG4bK1"]


def test_400_keeps_a_to_that_has_a_tag() -> None:
    data = INVITE.replace(b"To: <sip:bob@192.0.2.9>", b"To: <sip:bob@192.0.2.9>;tag=b7").replace(b"7 INVITE", b"7 BYE")
    response = bad_request(data.replace(b"INVITE sip:", b"BYE sip:", 1).replace(b"CSeq: 7 BYE", b"CSeq: 7 BYE x"))
    assert response.reason == "Bad CSeq"
    assert line(bytes(response), b"To") == [b"<sip:bob@192.0.2.9>;tag=b7"]


def test_400_for_a_bad_from_invents_only_the_from() -> None:
    data = INVITE.replace(b'From: "Alice" <sip:', b'From: "Alice" <')
    response = bad_request(data)
    assert response.reason == "Bad From Header"
    assert response.from_addr.uri.as_sip().host == "invalid"
    for name in (b"Via", b"Call-ID", b"CSeq"):
        assert line(bytes(response), name) == line(data, name)


def test_400_for_an_unreadable_cseq_keeps_the_method_for_matching() -> None:
    response = bad_request(INVITE.replace(b"CSeq: 7 INVITE", b"CSeq: 99999999999 INVITE"))
    assert response.headers.get("CSeq") == "0 INVITE"
    assert response.cseq.method == "INVITE"


def test_400_from_salvaged_headers_copies_them_exactly() -> None:
    # the header section cannot be decoded, so the headers are read leniently
    data = INVITE.replace(b"Max-Forwards: 70", b"Max-Forwards: 70\r\nSubject: \xff\xfe").replace(
        b'From: "Alice" <sip:alice@10.1.1.1> ;tag=a1', b'f: "Alice"\r\n  <sip:alice@10.1.1.1> ;tag=a1'
    )
    response = bad_request(data)
    assert response.reason == "Header Not UTF-8"
    assert response.headers.get("From") == '"Alice" <sip:alice@10.1.1.1> ;tag=a1'
    assert line(bytes(response), b"Via") == line(data, b"Via")
    assert response.headers.get("Call-ID") == "c1@10.1.1.1"


@pytest.mark.parametrize(
    "header",
    [
        b"From: <http://www.example.com>;tag=3234233",
        b"To: isbn:2983792873",
        b"To: <mailto:bob@example.com>",
        b"Contact: <im:fred@example.com>, <pres:fred@example.com>",
        b"Contact: x-foo:bar;expires=60",
        b"Record-Route: <urn:example:proxy>",
    ],
)
def test_valid_requests_with_other_schemes_are_not_answered_400(header: bytes) -> None:
    name = header.split(b":", 1)[0]
    lines = [raw for raw in INVITE.split(b"\r\n") if raw.split(b":", 1)[0] != name]
    data = b"\r\n".join([*lines[:3], header, *lines[3:]])
    endpoint = Endpoint(Timers())
    events = endpoint.receive(data, SOURCE, 0.0)
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    (trying,) = endpoint.datagrams_to_send()
    response = parse_message(trying.data)
    assert isinstance(response, Response) and response.status == 100
    if name in (b"From", b"To"):
        assert line(trying.data, name) == [header.split(b":", 1)[1].strip()]


def test_request_uri_of_another_scheme_is_delivered() -> None:
    data = INVITE.replace(b"INVITE sip:bob@192.0.2.9 SIP/2.0", b"INVITE x-foo:bar SIP/2.0")
    events = Endpoint(Timers()).receive(data, SOURCE, 0.0)
    assert isinstance(events[0], RequestReceived)
    assert events[0].request.uri.scheme == "x-foo"
    assert str(events[0].request.uri) == "x-foo:bar"


def test_to_tag_in_name_addr_helper_round_trip() -> None:
    # what build_response appends parses back as the tag of the same address
    addr = NameAddress.parse("Bob <sip:bob@h> ; Purpose = test;tag=b1")
    assert (addr.tag, addr.param("purpose")) == ("b1", "test")


@pytest.mark.parametrize("status, phrase", [
    (202, "Accepted"), (406, "Not Acceptable"), (416, "Unsupported URI Scheme"), (482, "Loop Detected"),
    (489, "Bad Event"), (299, "OK"), (599, "Server Error"),
])
def test_reason_phrases_are_the_rfcs(status: int, phrase: str) -> None:
    from softphone.sip.endpoint import reason_phrase

    assert reason_phrase(status) == phrase
