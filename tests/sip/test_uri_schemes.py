"""URIs of every scheme in From, To, Contact, Route, Refer-To and the Request-URI
(RFC 3261 §19, §20, §25.1): sip, sips and tel are SipUri, every other absoluteURI is an
AbsoluteUri kept byte for byte."""

from __future__ import annotations

import random
import string

import pytest

from softphone.errors import ParseError
from softphone.sip.headers import NameAddress
from softphone.sip.message import Request, parse_message
from softphone.sip.uri import AbsoluteUri, SipUri, Uri, parse_uri

# One URI per scheme family, each written the way it is sent.
FAMILIES: dict[str, list[str]] = {
    "sip": ["sip:alice@atlanta.com", "sip:bob@[2001:db8::1]:5070;transport=tcp;lr"],
    "sips": ["sips:alice@atlanta.com:5061", "sips:registrar.example.com;maddr=10.0.0.1"],
    "tel": ["tel:+1-201-555-0123", "tel:7042;phone-context=example.com"],
    "http": ["http://www.example.com", "http://example.com:8080/a/b;c?d=e&f=%20g"],
    "https": ["https://[2001:db8::1]:8443/path", "https://user:pw@example.com/x?y=1"],
    "mailto": ["mailto:bob@example.com", "mailto:bob@example.com?subject=hi%20there"],
    "urn": ["urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6", "urn:service:sos.fire"],
    "isbn": ["isbn:2983792873", "isbn:0-395-36341-1"],
    "im": ["im:alice@example.com", "im:fred@example.com"],
    "pres": ["pres:alice@example.com", "pres:bob@biloxi.example.com"],
    "unknown": ["x-foo:bar", "soap.beep://192.0.2.103:3002", "X-Foo+v2.1:A/B'C(D)*!~$,"],
}
ALL = [(family, uri) for family, uris in FAMILIES.items() for uri in uris]
SIP_SCHEMES = ("sip", "sips", "tel")


@pytest.mark.parametrize(("family", "text"), ALL)
def test_uri_round_trips_byte_for_byte(family: str, text: str) -> None:
    uri = parse_uri(text)
    assert str(uri) == text
    assert parse_uri(str(uri)) == uri
    expected_type = SipUri if family in SIP_SCHEMES else AbsoluteUri
    assert isinstance(uri, expected_type)
    assert uri.scheme == text.partition(":")[0].lower()


def test_absolute_uri_fields() -> None:
    uri = parse_uri("HTTP://Example.COM/A%2fb")
    assert uri == AbsoluteUri("http", "//Example.COM/A%2fb")
    assert str(uri) == "HTTP://Example.COM/A%2fb"  # the scheme as written
    assert uri.scheme == "http"


def test_sip_scheme_in_upper_case_is_still_a_sip_uri() -> None:
    assert parse_uri("SIP:bob@h") == SipUri(user="bob", host="h")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no scheme"),
        ("example.com", "no scheme"),
        (":x", "bad URI scheme"),
        ("1http://a", "bad URI scheme"),
        ("ht tp://a", "bad URI scheme"),
        ("x_y:z", "bad URI scheme"),
        ("http:", "empty http: URI"),
        ("http://a b", "character ' ' not allowed"),
        ("http://a/#frag", "character '#' not allowed"),
        ("mailto:<a@b>", "character '<' not allowed"),
        ('urn:"x"', "character '\"' not allowed"),
        ("http://example.com/caf\u00e9", "not allowed"),
        ("http://a/%zz", "bad %-escape"),
        ("http://a/%4", "bad %-escape"),
        ("sip:", "empty host"),
        ("tel:abc-xyz", "bad telephone number"),
    ],
)
def test_bad_uris(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_uri(text)


def test_absolute_uri_parse_refuses_sip_schemes() -> None:
    with pytest.raises(ParseError, match="SipUri.parse"):
        AbsoluteUri.parse("sip:bob@h")


def test_sip_uri_parse_still_refuses_other_schemes() -> None:
    with pytest.raises(ParseError, match="unsupported URI scheme 'http'"):
        SipUri.parse("http://example.com")


def test_as_sip_fails_clearly_for_other_schemes() -> None:
    sip = parse_uri("sip:bob@h")
    assert sip.as_sip() is sip
    with pytest.raises(ParseError, match="mailto: URI 'mailto:bob@h' where a sip:, sips: or tel: URI"):
        parse_uri("mailto:bob@h").as_sip()


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("http://a/%7e", "HTTP://a/%7E", True),
        ("urn:x:y", "urn:x:y", True),
        ("http://a/b", "http://A/b", False),  # only the scheme and %-escapes are normalised
        ("im:a@h", "pres:a@h", False),
        ("sip:a@h", "im:a@h", False),
    ],
)
def test_matches(a: str, b: str, same: bool) -> None:
    assert parse_uri(a).matches(parse_uri(b)) is same
    assert parse_uri(b).matches(parse_uri(a)) is same


# ---------------------------------------------------------------- in header values


@pytest.mark.parametrize(("family", "text"), ALL)
def test_name_addr_with_every_scheme(family: str, text: str) -> None:
    for value in (f"<{text}>", f'"Someone" <{text}>;tag=1', f"Someone <{text}> ; tag = 1"):
        addr = NameAddress.parse(value)
        assert str(addr.uri) == text
    assert NameAddress.parse(f'"Someone" <{text}>;tag=1').tag == "1"
    assert str(NameAddress.parse(f"<{text}>;expires=60")) == f"<{text}>;expires=60"


@pytest.mark.parametrize(
    ("value", "uri", "params"),
    [
        # "If the URI is not enclosed in angle brackets, any semicolon-delimited
        # parameters are header-parameters, not URI parameters." (RFC 3261 §20)
        ("isbn:2983792873", "isbn:2983792873", ()),
        ("mailto:bob@example.com;tag=7", "mailto:bob@example.com", (("tag", "7"),)),
        ("http://a/b;c=d", "http://a/b", (("c", "d"),)),
        ("tel:+1234;phone-context=x;tag=2", "tel:+1234", (("phone-context", "x"), ("tag", "2"))),
        ("x-foo:bar?baz=1;tag=3", "x-foo:bar?baz=1", (("tag", "3"),)),
    ],
)
def test_addr_spec_params_are_header_params(value: str, uri: str, params: tuple[tuple[str, str], ...]) -> None:
    addr = NameAddress.parse(value)
    assert str(addr.uri) == uri
    assert addr.params == params


def test_bracketed_uri_keeps_its_semicolons_commas_and_question_marks() -> None:
    addr = NameAddress.parse("<http://a/b;c=d,e?f=g,h>;tag=9")
    assert addr.uri == AbsoluteUri("http", "//a/b;c=d,e?f=g,h")
    assert addr.params == (("tag", "9"),)


def test_unbracketed_comma_is_refused() -> None:
    # "the "name-addr" form MUST be used if the "addr-spec" contains a comma,
    # semicolon, or question mark." (RFC 3261 §20.10)
    with pytest.raises(ParseError, match="angle brackets"):
        NameAddress.parse("mailto:a@example.com,b@example.com;tag=1")


def wire(request_uri: str, *headers: str, method: str = "OPTIONS") -> bytes:
    lines = [
        f"{method} {request_uri} SIP/2.0",
        "Via: SIP/2.0/UDP host9.example.com;branch=z9hG4bKkdjuw",
        "Max-Forwards: 70",
        "Call-ID: schemes.8e8a9isdfjaisda9@host9",
        f"CSeq: 8 {method}",
        *headers,
        "Content-Length: 0",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(("family", "text"), ALL)
def test_every_scheme_in_from_to_contact_and_request_uri(family: str, text: str) -> None:
    # an addr-spec with a comma, semicolon or question mark must be a name-addr (§20.10)
    to = f"<{text}>" if any(ch in text for ch in ";,?") else text
    data = wire(text, f"From: <{text}>;tag=a1", f"To: {to}", f'Contact: "x" <{text}>;expires=60, <sip:other@h>')
    request = parse_message(data)
    assert isinstance(request, Request)
    assert bytes(request) == data
    assert str(request.uri) == text
    assert request.uri.scheme == text.partition(":")[0].lower()
    assert str(request.from_addr.uri) == text and request.from_addr.tag == "a1"
    assert str(request.to_addr.uri) == text and request.to_addr.tag is None
    assert [str(c.uri) for c in request.contacts] == [text, "sip:other@h"]
    assert request.contacts[0].param("expires") == "60"


def test_unknown_request_uri_scheme_reaches_the_user_agent() -> None:
    # After RFC 4475 §3.1.1.10: a request whose Request-URI has a novel scheme is
    # well formed; the user agent answers it 416 Unsupported URI Scheme.
    request = parse_message(wire("soap.beep://192.0.2.103:3002", "To: sip:user@example.com",
                                 "From: <sip:caller@example.net>;tag=384"))
    assert isinstance(request, Request)
    assert request.uri == AbsoluteUri("soap.beep", "//192.0.2.103:3002")
    with pytest.raises(ParseError, match="where a sip:"):
        request.uri.as_sip()


def test_registered_and_unknown_schemes_in_headers() -> None:
    # After RFC 4475 §3.1.1.11/12: im:, pres:, http:, isbn: and unregistered schemes
    # in header fields are legal; the message is not rejected for them.
    data = wire(
        "sip:user@example.com",
        "To: isbn:2983792873",
        "From: <http://www.example.com>;tag=3234233",
        "Contact: <name:John_Smith>, <im:fred@example.com>, <pres:ann@example.com>",
        "Route: <x-route:proxy.example.com>",
        "Record-Route: <urn:example:rr>",
        "Reply-To: <mailto:ann@example.com>",
        method="MESSAGE",
    )
    request = parse_message(data)
    assert bytes(request) == data
    assert request.to_addr.uri == AbsoluteUri("isbn", "2983792873")
    assert [c.uri.scheme for c in request.contacts] == ["name", "im", "pres"]
    assert str(request.routes[0].uri) == "x-route:proxy.example.com"
    assert str(request.record_routes[0].uri) == "urn:example:rr"
    with pytest.raises(ParseError):
        request.routes[0].uri.as_sip()


@pytest.mark.parametrize(
    "value",
    [
        "<sip:bob@biloxi.example.com?Replaces=12345%40192.0.2.1%3Bto-tag%3D1%3Bfrom-tag%3D2>",
        "<http://www.example.com/announcement.wav>",
        '"Conference" <urn:service:conference>;method=INVITE',
        "mailto:bob@example.com",
    ],
)
def test_refer_to_style_values(value: str) -> None:
    data = wire("sip:b@h", "From: <sip:a@h>;tag=1", "To: <sip:b@h>;tag=2", f"Refer-To: {value}", method="REFER")
    request = parse_message(data)
    assert bytes(request) == data
    refer_to = NameAddress.parse(request.headers.get("r") or "")
    assert str(refer_to.uri) in value


def test_bad_refer_to_is_a_parse_error() -> None:
    data = wire("sip:b@h", "From: <sip:a@h>;tag=1", "To: <sip:b@h>;tag=2", "r: <http://a b>", method="REFER")
    with pytest.raises(ParseError, match="bad Refer-To"):
        parse_message(data)


# ---------------------------------------------------------------- a round-trip property

_UNRESERVED = string.ascii_letters + string.digits + "-_.!~*'()"
_URIC = _UNRESERVED + ";/?:@&=+$,[]"


def random_absolute_uri(rng: random.Random) -> str:
    """An absoluteURI of RFC 3261 §25.1 with a scheme that is not sip, sips or tel."""
    while True:
        scheme = rng.choice(string.ascii_letters) + "".join(
            rng.choice(string.ascii_letters + string.digits + "+-.") for _ in range(rng.randrange(0, 8))
        )
        if scheme.lower() not in SIP_SCHEMES:
            break
    parts = []
    for _ in range(rng.randrange(1, 30)):
        if rng.random() < 0.1:
            parts.append(f"%{rng.randrange(256):02{rng.choice('xX')}}")
        else:
            parts.append(rng.choice(_URIC))
    return f"{scheme}:{''.join(parts)}"


def test_generated_absolute_uris_round_trip() -> None:
    rng = random.Random(3261)
    for _ in range(500):
        text = random_absolute_uri(rng)
        uri: Uri = parse_uri(text)
        assert isinstance(uri, AbsoluteUri), text
        assert str(uri) == text
        assert uri.matches(parse_uri(text))
        addr = NameAddress.parse(f'"X" <{text}> ;tag=t')
        assert (str(addr.uri), addr.tag) == (text, "t")
        data = wire(text, f"From: <{text}>;tag=1", f"To: <{text}>", f"Contact: <{text}>")
        request = parse_message(data)
        assert isinstance(request, Request)
        assert bytes(request) == data, text
        assert str(request.uri) == text
