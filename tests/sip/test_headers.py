from __future__ import annotations

import pytest

from softphone.errors import ParseError
from softphone.sip.headers import (
    COMPACT_FORMS,
    CSeq,
    NameAddress,
    Via,
    canonical_name,
    format_params,
    parse_params,
    quote_string,
    split_header_values,
    unquote_string,
)
from softphone.sip.uri import SipUri


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("call-id", "Call-ID"),
        ("CALL-ID", "Call-ID"),
        ("cseq", "CSeq"),
        ("www-authenticate", "WWW-Authenticate"),
        ("rack", "RAck"),
        ("mime-version", "MIME-Version"),
        ("max-forwards", "Max-Forwards"),
        ("MaX-fOrWaRdS", "Max-Forwards"),
        ("record-route", "Record-Route"),
        ("x-custom-thing", "X-Custom-Thing"),
        ("via", "Via"),
        (" Via ", "Via"),
        ("v", "Via"),
        ("V", "Via"),
        ("i", "Call-ID"),
        ("m", "Contact"),
        ("l", "Content-Length"),
        ("x", "Session-Expires"),
        ("n", "Identity-Info"),
    ],
)
def test_canonical_name(name: str, expected: str) -> None:
    assert canonical_name(name) == expected


def test_compact_forms_table() -> None:
    assert len(COMPACT_FORMS) == 20
    assert all(len(key) == 1 and key.islower() for key in COMPACT_FORMS)
    for long_name in COMPACT_FORMS.values():
        assert canonical_name(long_name.lower()) == long_name


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a, b,c", ["a", "b", "c"]),
        ('"Doe, John" <sip:j@h>, <sip:k@h>', ['"Doe, John" <sip:j@h>', "<sip:k@h>"]),
        ('"a \\", b" <sip:x@h>, c', ['"a \\", b" <sip:x@h>', "c"]),
        ("<sip:a@h?x=1,2>, <sip:b@h>", ["<sip:a@h?x=1,2>", "<sip:b@h>"]),
        ("one", ["one"]),
        ("", []),
        (" , ,a,, ", ["a"]),
        (
            "SIP/2.0/UDP a;branch=1, SIP/2.0/TCP b:5060;branch=2",
            ["SIP/2.0/UDP a;branch=1", "SIP/2.0/TCP b:5060;branch=2"],
        ),
    ],
)
def test_split_header_values(value: str, expected: list[str]) -> None:
    assert split_header_values(value) == expected


def test_parse_params() -> None:
    assert parse_params(';a=b;LR;x="q;1"') == (("a", "b"), ("lr", None), ("x", '"q;1"'))
    assert parse_params("") == ()
    assert parse_params(" ; tag = 98asjd8 ; q = 0.33 ") == (
        ("tag", "98asjd8"),
        ("q", "0.33"),
    )
    assert parse_params("a=b") == (("a", "b"),)


@pytest.mark.parametrize(
    "text", [";=x", ";a b=1", ';x="unterminated', ';x="a"b', ";x="]
)
def test_bad_params(text: str) -> None:
    with pytest.raises(ParseError):
        parse_params(text)


def test_format_params() -> None:
    assert format_params((("tag", "1"), ("lr", None))) == ";tag=1;lr"
    assert format_params(()) == ""
    params = parse_params(';a=b;lr;x="q"')
    assert parse_params(format_params(params)) == params


def test_quote_and_unquote() -> None:
    assert quote_string('say "hi" \\o/') == '"say \\"hi\\" \\\\o/"'
    assert unquote_string(quote_string('say "hi" \\o/')) == 'say "hi" \\o/'
    assert unquote_string("token") == "token"
    assert unquote_string('"<urn:uuid:1>"') == "<urn:uuid:1>"


def test_name_addr_with_quoted_display_name() -> None:
    addr = NameAddress.parse('"Bob" <sip:b@h;lr>;tag=1')
    assert addr.display_name == "Bob"
    assert addr.uri == SipUri(user="b", host="h", params=(("lr", None),))
    assert addr.params == (("tag", "1"),)
    assert addr.tag == "1"


def test_name_addr_with_token_display_name() -> None:
    addr = NameAddress.parse("Bob Smith <sip:b@h>")
    assert addr.display_name == "Bob Smith"
    assert str(addr) == "Bob Smith <sip:b@h>"


def test_name_addr_without_display_name() -> None:
    addr = NameAddress.parse("<sip:b@h>")
    assert addr.display_name is None
    assert addr.params == ()
    assert str(addr) == "<sip:b@h>"


def test_addr_spec_params_are_header_params() -> None:
    addr = NameAddress.parse("sip:b@h;tag=1")
    assert addr.uri == SipUri(user="b", host="h")
    assert addr.tag == "1"
    assert str(addr) == "<sip:b@h>;tag=1"


def test_escaped_quotes_in_display_name() -> None:
    addr = NameAddress.parse(
        '"J Rosenberg \\\\\\"" <sip:jdrosen@example.com>;tag=98asjd8'
    )
    assert addr.display_name == 'J Rosenberg \\"'
    assert NameAddress.parse(str(addr)) == addr


def test_display_name_quoted_when_needed() -> None:
    uri = SipUri(user="a", host="h")
    assert str(NameAddress(uri, 'Doe, "J"')) == '"Doe, \\"J\\"" <sip:a@h>'
    assert str(NameAddress(uri, "")) == '"" <sip:a@h>'
    assert str(NameAddress(uri, "Zoë")) == '"Zoë" <sip:a@h>'
    assert str(NameAddress(uri, "Alice")) == "Alice <sip:a@h>"


def test_display_name_with_angle_bracket_inside_quotes() -> None:
    addr = NameAddress.parse('"a <b>" <sip:x@h>')
    assert addr.display_name == "a <b>"
    assert addr.uri.as_sip().user == "x"


def test_instance_param_with_angle_brackets() -> None:
    text = '<sip:a@10.0.0.1;transport=tls>;+sip.instance="<urn:uuid:1-2>";expires=600'
    addr = NameAddress.parse(text)
    assert addr.param("+sip.instance") == '"<urn:uuid:1-2>"'
    assert addr.param("expires") == "600"
    assert str(addr) == text


def test_addr_spec_with_quoted_angle_param() -> None:
    addr = NameAddress.parse('sip:a@h;+sip.instance="<urn:x>"')
    assert addr.uri == SipUri(user="a", host="h")
    assert addr.param("+sip.instance") == '"<urn:x>"'


def test_tel_name_addr() -> None:
    addr = NameAddress.parse("<tel:+1-201-555-0123;phone-context=example.com>;tag=9")
    assert addr.uri.scheme == "tel"
    assert addr.uri.as_sip().param("phone-context") == "example.com"
    assert addr.tag == "9"


def test_with_tag_and_params() -> None:
    addr = NameAddress.parse("<sip:b@h>")
    tagged = addr.with_tag("abc")
    assert tagged.tag == "abc"
    assert addr.tag is None
    assert (
        str(tagged.with_params(tag="def", expires="30"))
        == "<sip:b@h>;tag=def;expires=30"
    )
    assert str(tagged.with_param("+sip.instance", '"<urn:x>"')).endswith(
        ';+sip.instance="<urn:x>"'
    )
    assert tagged.without_params("tag") == addr


@pytest.mark.parametrize(
    "text",
    [
        "",
        "*",
        '"unterminated <sip:a@h>',
        '"Bob" sip:a@h',
        "<sip:a@h",
        "<sip:a@h> junk",
        "<http:>",
        "<http://a b>",
        "<1http://a>",
        "<noscheme@example.com>",
        "mailto:a@example.com,b@example.com",
        "<sip:a@h>, <sip:b@h>",
        "sip:b@h, sip:c@h",
    ],
)
def test_bad_name_addr(text: str) -> None:
    with pytest.raises(ParseError):
        NameAddress.parse(text)


@pytest.mark.parametrize(
    "text",
    [
        "Bob <sip:b@h;lr>;tag=1",
        '"Bob Smith, Jr." <sip:b@h>',
        "<sip:alice@[2001:db8::1]:5070;transport=tcp>;expires=3600;q=0.7",
        '"Alice \\"A\\" Smith" <sip:alice@atlanta.com>;tag=x',
        "<sips:b@h?subject=hi>",
    ],
)
def test_name_addr_round_trip(text: str) -> None:
    assert str(NameAddress.parse(text)) == text
    assert NameAddress.parse(str(NameAddress.parse(text))) == NameAddress.parse(text)


def test_needless_quotes_are_dropped() -> None:
    assert str(NameAddress.parse('"Bob" <sip:b@h>')) == "Bob <sip:b@h>"


def test_via_parse() -> None:
    via = Via.parse("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport")
    assert via.transport == "UDP"
    assert via.sent_by == ("10.0.0.1", 5060)
    assert via.branch == "z9hG4bK1"
    assert via.has_rport
    assert via.rport is None
    assert via.received is None
    assert str(via) == "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport"


def test_via_rport_and_received() -> None:
    via = Via.parse("SIP/2.0/udp h;received=192.0.2.1;rport=5070;branch=z9hG4bKx")
    assert via.transport == "UDP"
    assert via.port is None
    assert via.received == "192.0.2.1"
    assert via.rport == 5070
    assert via.has_rport


def test_via_without_rport() -> None:
    via = Via.parse("SIP/2.0/TCP h:5060;branch=z9hG4bKx")
    assert not via.has_rport
    assert via.rport is None


def test_via_ipv6() -> None:
    via = Via.parse("SIP/2.0/TLS [2001:db8::10]:5061;branch=z9hG4bKa")
    assert via.sent_by == ("2001:db8::10", 5061)
    assert str(via) == "SIP/2.0/TLS [2001:db8::10]:5061;branch=z9hG4bKa"
    assert Via.parse("SIP/2.0/UDP [::1];branch=b").sent_by == ("::1", None)


def test_via_with_unusual_whitespace() -> None:
    via = Via.parse(
        "SIP  / 2.0  / TCP     spindle.example.com   ;  branch  =   z9hG4bK9ikj8"
    )
    assert (via.transport, via.host, via.port) == ("TCP", "spindle.example.com", None)
    assert via.branch == "z9hG4bK9ikj8"
    assert Via.parse("SIP/2.0/UDP host : 5060").sent_by == ("host", 5060)


def test_via_parse_list() -> None:
    vias = Via.parse_list(
        "SIP/2.0/UDP a;branch=1, SIP/2.0/TCP b:5062;branch=2 ,SIP/2.0/WS c"
    )
    assert [(v.transport, v.host, v.port, v.branch) for v in vias] == [
        ("UDP", "a", None, "1"),
        ("TCP", "b", 5062, "2"),
        ("WS", "c", None, None),
    ]


def test_via_with_params() -> None:
    via = Via.parse("SIP/2.0/UDP h;rport;branch=z9hG4bKx")
    stamped = via.with_params(received="10.0.0.9", rport="5099")
    assert str(stamped) == "SIP/2.0/UDP h;rport=5099;branch=z9hG4bKx;received=10.0.0.9"
    assert stamped.rport == 5099


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/3.0/UDP h",
        "HTTP/1.1/TCP h",
        "SIP/2.0 h",
        "SIP/2.0/UDP h:port",
        "SIP/2.0/UDP h:70000",
        "SIP/2.0/UDP [::1",
        "SIP/2.0/UDP [::1]x",
        "SIP/2.0/UDP ;branch=1",
        "SIP/2.0/UDP h;branch=",
    ],
)
def test_bad_via(text: str) -> None:
    with pytest.raises(ParseError):
        Via.parse(text)


def test_cseq() -> None:
    assert CSeq.parse("314159 INVITE") == CSeq(314159, "INVITE")
    assert CSeq.parse("  0009\t INVITE ") == CSeq(9, "INVITE")
    assert CSeq.parse("0 REGISTER").number == 0
    assert CSeq.parse(f"{2**31 - 1} BYE").number == 2**31 - 1
    assert str(CSeq(1, "ACK")) == "1 ACK"


@pytest.mark.parametrize(
    "text",
    [
        "abc INVITE",
        "-1 INVITE",
        f"{2**31} INVITE",
        "99999999999999999999 INVITE",
        "1",
        "INVITE",
        "1 IN VITE",
        "",
    ],
)
def test_bad_cseq(text: str) -> None:
    with pytest.raises(ParseError, match="bad CSeq"):
        CSeq.parse(text)
