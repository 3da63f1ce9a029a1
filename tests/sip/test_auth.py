from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

import pytest

from softphone.sip.auth import (
    SUPPORTED_ALGORITHMS,
    AuthError,
    Challenge,
    Credentials,
    DigestSession,
    apply,
    challenges,
    choose,
    choose_per_realm,
    is_stale_retry,
)
from softphone.sip.message import Headers, Request, Response, parse_message
from softphone.sip.uri import SipUri

PASSWORD = "s3cret-Pa55"


def md5(text: str | bytes) -> str:
    return hashlib.md5(text.encode() if isinstance(text, str) else text).hexdigest()


def sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def fixed(*values: str) -> Callable[[], str]:
    """A cnonce factory returning these values in turn."""
    it = iter(values)
    return lambda: next(it)


def params_of(value: str) -> dict[str, str]:
    """An independent reading of an Authorization value: name -> unquoted value."""
    scheme, _, rest = value.partition(" ")
    assert scheme == "Digest"
    out: dict[str, str] = {}
    for part in rest.split(", "):
        name, _, raw = part.partition("=")
        out[name] = raw[1:-1] if raw.startswith('"') else raw
    return out


def response(status: int, *headers: tuple[str, str]) -> Response:
    base = (
        ("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1"),
        ("From", "<sip:alice@example.com>;tag=1"),
        ("To", "<sip:alice@example.com>;tag=2"),
        ("Call-ID", "abc"),
        ("CSeq", "1 REGISTER"),
    )
    reason = "Unauthorized" if status == 401 else "Proxy Authentication Required"
    return Response(status, reason, Headers.of(*base, *headers))


def register() -> Request:
    return Request(
        "REGISTER",
        SipUri.parse("sip:example.com"),
        Headers.of(
            ("Via", "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK2"),
            ("From", "<sip:alice@example.com>;tag=1"),
            ("To", "<sip:alice@example.com>"),
            ("Call-ID", "abc"),
            ("CSeq", "2 REGISTER"),
            ("Content-Length", "0"),
        ),
    )


# --- published examples ----------------------------------------------------------


def test_rfc2617_example() -> None:
    challenge = Challenge.parse(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    session = DigestSession(Credentials("Mufasa", "Circle Of Life"), cnonce=fixed("0a4f113b"))
    name, value = session.authorize(challenge, "GET", "/dir/index.html")
    assert name == "Authorization"
    assert params_of(value) == {
        "username": "Mufasa",
        "realm": "testrealm@host.com",
        "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        "uri": "/dir/index.html",
        "response": "6629fae49393a05397450978507c4ef1",
        "algorithm": "MD5",
        "cnonce": "0a4f113b",
        "qop": "auth",
        "nc": "00000001",
        "opaque": "5ccc069c403ebaf9f0171e9517f40e41",
    }


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ],
)
def test_rfc7616_examples(algorithm: str, expected: str) -> None:
    challenge = Challenge.parse(
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    session = DigestSession(
        Credentials("Mufasa", "Circle of Life"), cnonce=fixed("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ")
    )
    _, value = session.authorize(challenge, "GET", "/dir/index.html")
    params = params_of(value)
    assert params["response"] == expected
    assert params["algorithm"] == algorithm
    assert params["opaque"] == "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
    assert (params["qop"], params["nc"]) == ("auth", "00000001")


# --- SIP, computed by hand -------------------------------------------------------


def test_sip_register_with_qop_matches_hand_computation() -> None:
    challenge = Challenge.parse('Digest realm="example.com", nonce="abc123", qop="auth"')
    session = DigestSession(Credentials("alice", PASSWORD), cnonce=fixed("c0ffee"))
    _, value = session.authorize(challenge, "REGISTER", "sip:example.com")
    ha1 = md5(f"alice:example.com:{PASSWORD}")
    ha2 = md5("REGISTER:sip:example.com")
    assert params_of(value)["response"] == md5(f"{ha1}:abc123:00000001:c0ffee:auth:{ha2}")


def test_sip_register_without_qop_uses_rfc2069_response() -> None:
    challenge = Challenge.parse('Digest algorithm=MD5, realm="asterisk", nonce="3f5ac7a4"')
    session = DigestSession(Credentials("1001", PASSWORD))
    _, value = session.authorize(challenge, "REGISTER", "sip:pbx.example.com")
    params = params_of(value)
    ha1 = md5(f"1001:asterisk:{PASSWORD}")
    assert params["response"] == md5(f"{ha1}:3f5ac7a4:{md5('REGISTER:sip:pbx.example.com')}")
    assert not {"qop", "nc", "cnonce", "opaque"} & params.keys()


def test_auth_int_when_it_is_the_only_qop() -> None:
    challenge = Challenge.parse('Digest realm="r", nonce="n", qop="auth-int"')
    body = b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\n"
    session = DigestSession(Credentials("bob", PASSWORD), cnonce=fixed("cn"))
    _, value = session.authorize(challenge, "INVITE", "sip:carol@example.com", body)
    ha1 = md5(f"bob:r:{PASSWORD}")
    ha2 = md5(f"INVITE:sip:carol@example.com:{md5(body)}")
    params = params_of(value)
    assert params["qop"] == "auth-int"
    assert params["response"] == md5(f"{ha1}:n:00000001:cn:auth-int:{ha2}")


def test_auth_preferred_over_auth_int() -> None:
    challenge = Challenge.parse('Digest realm="r", nonce="n", qop="auth-int,auth"')
    _, value = DigestSession(Credentials("bob", PASSWORD)).authorize(challenge, "INVITE", "sip:x@y")
    assert params_of(value)["qop"] == "auth"


def test_unknown_qop_only_is_refused() -> None:
    challenge = Challenge.parse('Digest realm="r", nonce="n", qop="auth-conf"')
    with pytest.raises(AuthError, match="qop"):
        DigestSession(Credentials("bob", PASSWORD)).authorize(challenge, "INVITE", "sip:x@y")


def test_sha256_sess_matches_hand_computation() -> None:
    challenge = Challenge.parse('Digest realm="r", nonce="n1", qop="auth", algorithm=sha-256-SESS')
    assert challenge.algorithm == "SHA-256-sess"
    _, value = DigestSession(Credentials("bob", PASSWORD), cnonce=fixed("cn")).authorize(challenge, "BYE", "sip:x@y")
    ha1 = sha256(f"{sha256(f'bob:r:{PASSWORD}')}:n1:cn")
    assert params_of(value)["response"] == sha256(f"{ha1}:n1:00000001:cn:auth:{sha256('BYE:sip:x@y')}")


@pytest.mark.skipif("SHA-512-256" not in SUPPORTED_ALGORITHMS, reason="no SHA-512/256 in this hashlib")
def test_sha512_256_matches_hand_computation() -> None:
    def h(text: str) -> str:
        return hashlib.new("sha512_256", text.encode()).hexdigest()

    challenge = Challenge.parse('Digest realm="r", nonce="n", qop="auth", algorithm=SHA-512-256')
    _, value = DigestSession(Credentials("bob", PASSWORD), cnonce=fixed("cn")).authorize(challenge, "REGISTER", "sip:y")
    assert params_of(value)["response"] == h(f"{h(f'bob:r:{PASSWORD}')}:n:00000001:cn:auth:{h('REGISTER:sip:y')}")


def test_userid_is_the_digest_username() -> None:
    challenge = Challenge.parse('Digest realm="r", nonce="n"')
    session = DigestSession(Credentials("alice", PASSWORD, userid="auth-7"))
    _, value = session.authorize(challenge, "REGISTER", "sip:r")
    params = params_of(value)
    assert params["username"] == "auth-7"
    assert params["response"] == md5(f"{md5(f'auth-7:r:{PASSWORD}')}:n:{md5('REGISTER:sip:r')}")


# --- nonce count and staleness --------------------------------------------------------


def test_nonce_count_increments_and_restarts_with_a_new_nonce() -> None:
    first = Challenge.parse('Digest realm="r", nonce="n1", qop="auth"')
    second = Challenge.parse('Digest realm="r", nonce="n2", qop="auth", stale=true')
    session = DigestSession(Credentials("bob", PASSWORD), cnonce=fixed("c1", "c2"))
    seen = [params_of(session.authorize(c, "REGISTER", "sip:r")[1]) for c in (first, first, first, second)]
    assert [(p["nc"], p["cnonce"]) for p in seen] == [
        ("00000001", "c1"),
        ("00000002", "c1"),
        ("00000003", "c1"),
        ("00000001", "c2"),
    ]
    assert seen[0]["response"] != seen[1]["response"]


def test_stale_flag_parsing() -> None:
    assert Challenge.parse('Digest realm="r", nonce="n", stale=TRUE').stale
    assert Challenge.parse('Digest realm="r", nonce="n", stale="true"').stale
    assert not Challenge.parse('Digest realm="r", nonce="n", stale=false').stale
    assert not Challenge.parse('Digest realm="r", nonce="n"').stale


def test_is_stale_retry() -> None:
    answered = Challenge.parse('Digest realm="r", nonce="n1"')
    refused = Challenge.parse('Digest realm="r", nonce="n2"')
    stale = Challenge.parse('Digest realm="r", nonce="n2", stale=true')
    stale_same_nonce = Challenge.parse('Digest realm="r", nonce="n1", stale=true')
    other_realm = Challenge.parse('Digest realm="other", nonce="n3"')
    assert is_stale_retry(None, answered)
    assert not is_stale_retry(answered, refused)
    assert is_stale_retry(answered, stale)
    assert not is_stale_retry(answered, stale_same_nonce)
    assert is_stale_retry(answered, other_realm)


# --- parsing real challenges -------------------------------------------------------------


def test_kamailio_challenge() -> None:
    value = 'Digest realm="127.0.0.1", nonce="Y2xPcmVhbGx5LXNvbWV0aGluZw==", qop="auth"'
    challenge = Challenge.parse(value)
    assert challenge == Challenge("Digest", "127.0.0.1", "Y2xPcmVhbGx5LXNvbWV0aGluZw==", "MD5", ("auth",))


def test_asterisk_challenge() -> None:
    challenge = Challenge.parse('Digest algorithm=MD5, realm="asterisk", nonce="3f5ac7a4"')
    assert (challenge.realm, challenge.nonce, challenge.algorithm, challenge.qop) == ("asterisk", "3f5ac7a4", "MD5", ())


def test_tolerant_parsing() -> None:
    value = (
        'digest  REALM = "a \\"quoted\\" realm" ,NONCE=abc/def==,  qop=auth,'
        ' Algorithm="md5-sess", charset=UTF-8, userhash=false, opaque="", domain="sip:a sip:b", x-new="1,2",'
    )
    challenge = Challenge.parse(value)
    assert challenge.realm == 'a "quoted" realm'
    assert challenge.nonce == "abc/def=="
    assert challenge.qop == ("auth",)
    assert challenge.algorithm == "MD5-sess"
    assert challenge.opaque == ""
    assert challenge.domain == "sip:a sip:b"


def test_multi_challenge_401_over_the_wire() -> None:
    data = (
        b"SIP/2.0 401 Unauthorized\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
        b"From: <sip:alice@example.com>;tag=1\r\n"
        b"To: <sip:alice@example.com>;tag=2\r\n"
        b"Call-ID: abc\r\n"
        b"CSeq: 1 REGISTER\r\n"
        b'WWW-Authenticate: Digest realm="example.com", nonce="n256", qop="auth", algorithm=SHA-256\r\n'
        b'WWW-Authenticate: Digest realm="example.com", nonce="nmd5", qop="auth", algorithm=MD5\r\n'
        b'WWW-Authenticate: Basic realm="example.com"\r\n'
        b'WWW-Authenticate: Digest realm="example.com"\r\n'
        b"Content-Length: 0\r\n\r\n"
    )
    message = parse_message(data)
    assert isinstance(message, Response)
    found = challenges(message)
    assert [(c.algorithm, c.nonce, c.proxy) for c in found] == [("SHA-256", "n256", False), ("MD5", "nmd5", False)]
    assert choose(found) == found[0]


def test_several_challenges_in_one_header_line() -> None:
    value = 'Digest realm="r", nonce="a", algorithm=MD5, Digest realm="r", nonce="b", algorithm=SHA-256'
    found = challenges(response(401, ("WWW-Authenticate", value)))
    assert [c.nonce for c in found] == ["a", "b"]


def test_proxy_challenge() -> None:
    found = challenges(response(407, ("Proxy-Authenticate", 'Digest realm="proxy", nonce="p", qop="auth"')))
    assert len(found) == 1 and found[0].proxy
    name, _ = DigestSession(Credentials("bob", PASSWORD)).authorize(found[0], "INVITE", "sip:x@y")
    assert name == "Proxy-Authorization"


def test_garbage_header_is_skipped() -> None:
    garbage = ("WWW-Authenticate", 'Digest realm="unterminated')
    found = challenges(response(401, garbage, ("WWW-Authenticate", 'Digest realm="r", nonce="n"')))
    assert [c.nonce for c in found] == ["n"]


@pytest.mark.parametrize(
    "value",
    [
        "",
        'Basic realm="r"',
        'Digest nonce="n"',
        'Digest realm="r"',
        'Digest realm="r", nonce=""',
        'Digest realm="r, nonce="n"',
        'realm="r", nonce="n"',
        'Digest realm="r", @nonce="n"',
    ],
)
def test_malformed_challenges(value: str) -> None:
    with pytest.raises(AuthError):
        Challenge.parse(value)


# --- choice -----------------------------------------------------------------------------


def _c(algorithm: str, realm: str = "r", nonce: str = "n") -> Challenge:
    return Challenge.parse(f'Digest realm="{realm}", nonce="{nonce}", algorithm={algorithm}')


def test_choose_prefers_sha256_over_md5_in_any_order() -> None:
    md5_challenge, sha = _c("MD5"), _c("SHA-256")
    assert choose([md5_challenge, sha]) == sha
    assert choose([sha, md5_challenge]) == sha
    assert choose([md5_challenge, sha], preferred=("MD5",)) == md5_challenge


def test_choose_topmost_among_equals_and_skips_unsupported() -> None:
    first, second = _c("MD5", nonce="1"), _c("MD5-sess", nonce="2")
    assert choose([_c("AKAv1-MD5"), first, second]) == first
    assert choose([_c("AKAv1-MD5")]) is None
    assert choose([]) is None


def test_choose_by_realm() -> None:
    a, b = _c("SHA-256", realm="a"), _c("MD5", realm="b")
    assert choose([a, b], realm="b") == b
    assert choose_per_realm([a, _c("MD5", realm="a"), b]) == [a, b]


def test_credentials_preference_follows_their_secret() -> None:
    ha1_only = Credentials("bob", ha1=md5(f"bob:r:{PASSWORD}"))
    assert choose([_c("SHA-256"), _c("MD5")], preferred=ha1_only.preferred) == _c("MD5")


# --- credentials ------------------------------------------------------------------------


def test_ha1_gives_the_same_answer_as_the_password() -> None:
    challenge = Challenge.parse('Digest realm="r", nonce="n", qop="auth", algorithm=MD5-sess')
    with_password = DigestSession(Credentials("bob", PASSWORD), cnonce=fixed("cn"))
    with_ha1 = DigestSession(Credentials("bob", ha1=md5(f"bob:r:{PASSWORD}").upper()), cnonce=fixed("cn"))
    assert with_ha1.authorize(challenge, "REGISTER", "sip:r") == with_password.authorize(challenge, "REGISTER", "sip:r")


def test_ha1_cannot_answer_sha256() -> None:
    session = DigestSession(Credentials("bob", ha1=md5(f"bob:r:{PASSWORD}")))
    with pytest.raises(AuthError, match="password"):
        session.authorize(_c("SHA-256"), "REGISTER", "sip:r")


def test_credentials_without_secret_or_for_another_realm() -> None:
    with pytest.raises(AuthError):
        DigestSession(Credentials("bob")).authorize(_c("MD5"), "REGISTER", "sip:r")
    with pytest.raises(AuthError, match="realm"):
        DigestSession(Credentials("bob", PASSWORD, realm="elsewhere")).authorize(_c("MD5"), "REGISTER", "sip:r")
    assert Credentials("bob", PASSWORD).matches("any")


def test_bad_ha1_is_refused() -> None:
    with pytest.raises(AuthError):
        Credentials("bob", ha1="not-a-digest")


def test_unsupported_algorithm_is_refused() -> None:
    challenge = _c("AKAv1-MD5")
    assert challenge.algorithm == "AKAv1-MD5"
    with pytest.raises(AuthError, match="unsupported"):
        DigestSession(Credentials("bob", PASSWORD)).authorize(challenge, "REGISTER", "sip:r")


def test_secrets_never_shown() -> None:
    ha1 = md5(f"bob:r:{PASSWORD}")
    creds = Credentials("bob", PASSWORD, realm="r")
    ha1_creds = Credentials("bob", ha1=ha1)
    session = DigestSession(creds)
    _, value = session.authorize(_c("MD5"), "REGISTER", "sip:r")
    errors: list[str] = []
    failing: list[Callable[[], object]] = [
        lambda: DigestSession(ha1_creds).authorize(_c("SHA-256"), "R", "sip:r"),
        lambda: session.authorize(_c("MD5", realm="x"), "R", "sip:r"),
    ]
    for bad in failing:
        with pytest.raises(AuthError) as info:
            bad()
        errors.append(str(info.value))
    objects = (creds, ha1_creds, session)
    shown = " ".join([*map(repr, objects), *map(str, objects), value, *errors])
    assert PASSWORD not in shown and ha1 not in shown
    assert "bob" in repr(creds)


# --- apply ------------------------------------------------------------------------------


def test_apply_adds_and_replaces_per_realm() -> None:
    session = DigestSession(Credentials("alice", PASSWORD))
    request = register()
    first = apply(request, session.authorize(_c("MD5", realm="a", nonce="1"), "REGISTER", "sip:example.com"))
    names = [name for name, _ in first.headers.items]
    assert names.index("Authorization") == names.index("Content-Length") - 1
    second = apply(first, session.authorize(_c("MD5", realm="a", nonce="2"), "REGISTER", "sip:example.com"))
    assert len(second.headers.get_all("Authorization")) == 1
    assert 'nonce="2"' in (second.headers.get("Authorization") or "")
    third = apply(second, session.authorize(_c("MD5", realm="b"), "REGISTER", "sip:example.com"))
    assert len(third.headers.get_all("Authorization")) == 2
    proxy = Challenge.parse('Digest realm="a", nonce="p"', proxy=True)
    fourth = apply(third, session.authorize(proxy, "REGISTER", "sip:example.com"))
    assert len(fourth.headers.get_all("Authorization")) == 2
    assert len(fourth.headers.get_all("Proxy-Authorization")) == 1
    assert parse_message(bytes(fourth)) == fourth
    assert "Authorization" not in request.headers


def test_apply_given_the_realm_places_the_header_as_reading_it_would() -> None:
    """The realm a caller passes (the challenge's) is the one apply would read back from the
    header, escaped quotes included; a new nonce's answer replaces the old one."""
    session = DigestSession(Credentials("alice", PASSWORD))
    first_challenge = Challenge.parse('Digest realm="a \\"b\\"", nonce="1"')
    header = session.authorize(first_challenge, "REGISTER", "sip:example.com")
    first = apply(register(), header, first_challenge.realm)
    assert first == apply(register(), header)
    renewed = session.authorize(Challenge.parse('Digest realm="a \\"b\\"", nonce="2"'), "REGISTER", "sip:example.com")
    second = apply(first, renewed, 'a "b"')
    assert second == apply(first, renewed)
    assert second.headers.get_all("Authorization") == [renewed[1]]


@pytest.mark.parametrize("value, error", [
    ('Digest realm="unterminated', "unterminated quoted string"),
    ('Digest realm="a\\"', "unterminated quoted string"),
    ('realm="a", Digest', "before the auth scheme"),
    ('Digest realm="a", (nonce="n")', "unexpected '('"),
])
def test_a_bad_challenge_value_is_refused_with_its_reason(value: str, error: str) -> None:
    with pytest.raises(AuthError, match=re.escape(error)):
        Challenge.parse(value)


def test_challenge_values_bare_quoted_escaped_and_empty() -> None:
    challenge = Challenge.parse('Digest  realm = "r\\\\x\\"y" ,nonce=abc"d,opaque=, qop="auth,auth-int"')
    assert (challenge.realm, challenge.nonce, challenge.opaque, challenge.qop) == (
        'r\\x"y', 'abc"d', "", ("auth", "auth-int"))


def test_answer_round_trips_through_challenge_parser_rules() -> None:
    """Our Authorization value is readable by a tolerant digest parser (the same
    grammar as challenges), including a realm that needs escaping."""
    challenge = Challenge.parse('Digest realm="a \\"b\\"", nonce="n", qop="auth"')
    _, value = DigestSession(Credentials("bob", PASSWORD)).authorize(challenge, "REGISTER", "sip:r")
    parsed = Challenge.parse(value)
    assert (parsed.realm, parsed.nonce, parsed.qop) == ('a "b"', "n", ("auth",))
