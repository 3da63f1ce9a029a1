from __future__ import annotations

import pytest

from softphone.errors import ParseError
from softphone.sip.uri import SipUri, format_host


def test_parse_full_sip_uri() -> None:
    uri = SipUri.parse("sip:alice:secret@Atlanta.COM:5061;transport=TCP;lr?subject=x")
    assert uri == SipUri(
        scheme="sip",
        user="alice",
        password="secret",
        host="atlanta.com",
        port=5061,
        params=(("transport", "TCP"), ("lr", None)),
        headers=(("subject", "x"),),
    )


def test_scheme_is_lower_cased() -> None:
    assert SipUri.parse("SIPS:bob@example.com").scheme == "sips"


def test_host_only() -> None:
    uri = SipUri.parse("sip:10.0.0.1")
    assert (uri.user, uri.host, uri.port) == (None, "10.0.0.1", None)


def test_ipv6_reference_is_stored_without_brackets() -> None:
    uri = SipUri.parse("sip:[2001:DB8::10]:5070")
    assert uri.host == "2001:db8::10"
    assert uri.port == 5070
    assert str(uri) == "sip:[2001:db8::10]:5070"
    assert uri.host_port == "[2001:db8::10]:5070"


def test_ipv6_without_port() -> None:
    uri = SipUri.parse("sip:bob@[::1];transport=tcp")
    assert (uri.host, uri.port, uri.transport) == ("::1", None, "tcp")
    assert str(uri) == "sip:bob@[::1];transport=tcp"


def test_tel_uri() -> None:
    uri = SipUri.parse("tel:+1-201-555-0123;phone-context=example.com")
    assert uri.scheme == "tel"
    assert uri.user == "+1-201-555-0123"
    assert uri.host == ""
    assert uri.param("phone-context") == "example.com"
    assert str(uri) == "tel:+1-201-555-0123;phone-context=example.com"


def test_uri_headers() -> None:
    uri = SipUri.parse("sip:bob@h?subject=x&priority=urgent")
    assert uri.headers == (("subject", "x"), ("priority", "urgent"))
    assert uri.params == ()
    assert str(uri) == "sip:bob@h?subject=x&priority=urgent"


def test_header_with_raw_at_sign_after_user() -> None:
    uri = SipUri.parse("sip:bob@h?Replaces=1234@10.0.0.1%3Bto-tag%3Da")
    assert (uri.user, uri.host) == ("bob", "h")
    assert uri.headers == (("Replaces", "1234@10.0.0.1%3Bto-tag%3Da"),)


def test_escaped_user_is_unescaped_and_re_escaped() -> None:
    uri = SipUri.parse("sip:sips%3Auser%40example.com@example.net")
    assert uri.user == "sips:user@example.com"
    assert uri.host == "example.net"
    assert str(uri) == "sip:sips%3Auser%40example.com@example.net"


def test_unreserved_escapes_are_decoded() -> None:
    uri = SipUri.parse("sip:%75se%72@example.com")
    assert uri.user == "user"
    assert str(uri) == "sip:user@example.com"


def test_user_may_contain_semicolon_and_question_mark() -> None:
    uri = SipUri.parse("sip:user;par=u%40example.net@example.com")
    assert uri.user == "user;par=u@example.net"
    assert uri.host == "example.com"
    assert uri.params == ()


def test_user_with_space_and_unicode_is_escaped() -> None:
    uri = SipUri(user="jo ë", host="example.com")
    assert str(uri) == "sip:jo%20%C3%AB@example.com"
    assert SipUri.parse(str(uri)) == uri


def test_escaped_null_in_user() -> None:
    uri = SipUri.parse("sip:null-%00-null@example.com")
    assert uri.user == "null-\x00-null"
    assert str(uri) == "sip:null-%00-null@example.com"


def test_password_escaping() -> None:
    uri = SipUri(user="a", password="p@ss:w", host="h")
    assert str(uri) == "sip:a:p%40ss%3Aw@h"
    assert SipUri.parse(str(uri)) == uri


@pytest.mark.parametrize(
    "text",
    [
        "sip:alice@atlanta.com",
        "sips:alice@atlanta.com:5061;transport=tcp",
        "sip:+12125551212@phone2net.com;user=phone",
        "sip:alice;day=tuesday@atlanta.com",
        "sip:atlanta.com;method=REGISTER?to=alice%40atlanta.com",
        "sip:[2001:db8::10]:5070;lr",
        "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
        "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
        "tel:+358-555-1234567;postd=pp22",
        "tel:7042;phone-context=example.com",
        "sip:user@host;maddr=239.255.255.1;ttl=15",
        "sip:x@y.example.com.:5060",
    ],
)
def test_canonical_uris_round_trip(text: str) -> None:
    assert str(SipUri.parse(text)) == text
    assert SipUri.parse(str(SipUri.parse(text))) == SipUri.parse(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sip:", "empty host"),
        ("bob@example.com", "no scheme"),
        ("http://example.com", "unsupported URI scheme 'http'"),
        ("sip:@example.com", "empty user"),
        ("sip:bob@", "empty host"),
        ("sip:bob@host:", "bad port"),
        ("sip:bob@host:99999", "bad port"),
        ("sip:bob@host:50a", "bad port"),
        ("sip:bob@[2001:db8::1", "unterminated IPv6"),
        ("sip:bob@[zz::1]", "bad IPv6"),
        ("sip:bob@[::1]x", "unexpected text"),
        ("sip:bob@2001:db8::1", "bad"),
        ("sip:bob@ho st", "bad host"),
        ("sip:bob@host;", "empty URI parameter"),
        ("sip:bob@host;a;;b", "bad URI parameter"),
        ("sip:bob@host?subject", "bad URI header"),
        ("sip:b%zzob@host", "bad %-escape"),
        ("sip:b%ffob@host", "not UTF-8"),
        ("tel:", "empty telephone number"),
        ("tel:abc-xyz", "bad telephone number"),
    ],
)
def test_bad_uris(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        SipUri.parse(text)


def test_param_accessors() -> None:
    uri = SipUri.parse("sip:p.example.com;LR;Transport=TLS;maddr=10.0.0.1")
    assert uri.has_param("lr")
    assert uri.param("lr") == ""
    assert uri.param("LR") == ""
    assert uri.param("maddr") == "10.0.0.1"
    assert uri.param("ttl") is None
    assert not uri.has_param("ttl")
    assert uri.transport == "tls"


def test_with_params_replaces_in_place_and_appends() -> None:
    uri = SipUri.parse("sip:h;transport=udp;lr")
    changed = uri.with_params(transport="tcp", ob=None)
    assert str(changed) == "sip:h;transport=tcp;lr;ob"
    assert str(uri) == "sip:h;transport=udp;lr"
    assert str(uri.with_param("+sip.x", "1")) == "sip:h;transport=udp;lr;+sip.x=1"


def test_without_params() -> None:
    uri = SipUri.parse("sip:h;transport=udp;lr;maddr=x")
    assert str(uri.without_params("LR", "maddr")) == "sip:h;transport=udp"


def test_transport_defaults() -> None:
    assert SipUri.parse("sip:h").transport == "udp"
    assert SipUri.parse("sips:h").transport == "tls"
    assert SipUri.parse("sip:h;transport=TCP").transport == "tcp"


def test_host_port() -> None:
    assert SipUri.parse("sip:10.0.0.1:5060").host_port == "10.0.0.1:5060"
    assert SipUri.parse("sip:[::1]:5070").host_port == "[::1]:5070"
    assert SipUri.parse("sip:bob@Example.com").host_port == "example.com"


def test_format_host() -> None:
    assert format_host("::1") == "[::1]"
    assert format_host("[::1]") == "[::1]"
    assert format_host("10.0.0.1") == "10.0.0.1"
    assert format_host("example.com") == "example.com"


# RFC 3261 §19.1.4 examples.
@pytest.mark.parametrize(
    ("a", "b"),
    [
        (
            "sip:%61lice@atlanta.com;transport=TCP",
            "sip:alice@AtLanTa.CoM;Transport=tcp",
        ),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
        ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
        (
            "sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
            "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com",
        ),
        (
            "sip:alice@atlanta.com?subject=project%20x&priority=urgent",
            "sip:alice@atlanta.com?priority=urgent&subject=project%20x",
        ),
        ("sip:[2001:db8:0::1]:5060", "sip:[2001:DB8::1]:5060"),
        ("tel:+1-201-555-0123", "tel:+1.201.555.0123"),
    ],
)
def test_equivalent_uris_match(a: str, b: str) -> None:
    assert SipUri.parse(a).matches(SipUri.parse(b))
    assert SipUri.parse(b).matches(SipUri.parse(a))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;user=phone"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;maddr=10.0.0.1"),
        ("sip:carol@chicago.com", "sips:carol@chicago.com"),
        ("sip:a:x@h", "sip:a:y@h"),
        ("tel:+1-201-555-0123", "tel:+1-201-555-0124"),
    ],
)
def test_different_uris_do_not_match(a: str, b: str) -> None:
    assert not SipUri.parse(a).matches(SipUri.parse(b))
    assert not SipUri.parse(b).matches(SipUri.parse(a))


def test_uri_is_hashable() -> None:
    """And frozen for the type checker (tests/test_frozen.py): assigning its host is an error."""
    uri = SipUri.parse("sip:a@h")
    assert {uri: 1}[SipUri.parse("sip:a@h")] == 1
    assert SipUri.parse("sip:a@h") == uri != SipUri.parse("sip:b@h")
