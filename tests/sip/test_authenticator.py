"""The challenge policy over a sequence of requests: a stale nonce is retried, refused credentials are not."""

from __future__ import annotations

import pytest

from softphone.sip.auth import AuthError, Credentials
from softphone.sip.authenticator import MAX_ROUNDS, Authenticator
from softphone.sip.endpoint import build_response
from softphone.sip.headers import NameAddress
from softphone.sip.message import Headers, Request, Response
from softphone.sip.uri import SipUri

REALM = "example.com"


def request(cseq: int = 1) -> Request:
    aor = NameAddress(SipUri("sip", "alice", None, REALM))
    headers = Headers.of(
        ("Via", "SIP/2.0/UDP 192.0.2.10:5070;branch=z9hG4bK-test"),
        ("From", str(aor.with_tag("t1"))),
        ("To", str(aor)),
        ("Call-ID", "auth-test"),
        ("CSeq", f"{cseq} REGISTER"),
    )
    return Request("REGISTER", SipUri("sip", None, None, REALM), headers)


def challenge(nonce: str, *, stale: bool = False, status: int = 401, realm: str = REALM) -> Response:
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    value = f'Digest realm="{realm}", nonce="{nonce}", qop="auth", algorithm=MD5'
    if stale:
        value += ", stale=true"
    return build_response(request(), status, extra=((name, value),))


def nonce_sent(auth: Authenticator, cseq: int = 2) -> str:
    header = auth.authorize(request(cseq)).headers.get("Authorization") or ""
    return header.split('nonce="', 1)[1].split('"', 1)[0]


def authenticator() -> Authenticator:
    return Authenticator((Credentials("alice", "secret"),))


def test_first_challenge_is_answered() -> None:
    auth = authenticator()
    assert not auth.sent_credentials
    auth.challenged(challenge("n1"))
    assert auth.sent_credentials and nonce_sent(auth) == "n1"


def test_same_nonce_again_means_refused() -> None:
    auth = authenticator()
    auth.challenged(challenge("n1"))
    with pytest.raises(AuthError, match="authentication failed"):
        auth.challenged(challenge("n1"))


def test_new_nonce_without_stale_means_refused() -> None:
    """RFC 7616 §3.3: without stale=true, the username or password is wrong; no retry."""
    auth = authenticator()
    auth.challenged(challenge("n1"))
    with pytest.raises(AuthError, match="authentication failed"):
        auth.challenged(challenge("n2"))


def test_stale_nonce_is_answered_with_the_new_nonce() -> None:
    auth = authenticator()
    auth.challenged(challenge("n1"))
    auth.challenged(challenge("n2", stale=True))
    header = auth.authorize(request(3)).headers.get("Authorization") or ""
    assert 'nonce="n2"' in header and "nc=00000001" in header


def test_stale_with_the_nonce_we_answered_is_refused() -> None:
    auth = authenticator()
    auth.challenged(challenge("n1"))
    with pytest.raises(AuthError, match="authentication failed"):
        auth.challenged(challenge("n1", stale=True))


def test_stale_nonce_on_a_later_request_is_retried() -> None:
    """A refresh after a success: the registrar's nonce expired, the credentials are still good."""
    auth = authenticator()
    auth.challenged(challenge("n1"))
    auth.answered()  # 200 OK
    auth.challenged(challenge("n2", stale=True))
    assert nonce_sent(auth, 4) == "n2"
    auth.answered()
    auth.challenged(challenge("n3", stale=True))
    assert nonce_sent(auth, 6) == "n3"


def test_a_registrar_that_calls_every_nonce_stale_is_given_up() -> None:
    auth = authenticator()
    auth.challenged(challenge("n0"))
    for index in range(1, MAX_ROUNDS):
        auth.challenged(challenge(f"n{index}", stale=True))
    with pytest.raises(AuthError, match="still challenged"):
        auth.challenged(challenge("n-last", stale=True))


def test_proxy_and_server_challenges_are_answered_separately() -> None:
    auth = authenticator()
    auth.challenged(challenge("p1", status=407))
    auth.challenged(challenge("w1"))
    sent = auth.authorize(request(3))
    assert 'nonce="p1"' in (sent.headers.get("Proxy-Authorization") or "")
    assert 'nonce="w1"' in (sent.headers.get("Authorization") or "")


def test_no_credentials_for_the_realm() -> None:
    auth = Authenticator((Credentials("alice", "secret", realm="elsewhere"),))
    with pytest.raises(AuthError, match="no credentials"):
        auth.challenged(challenge("n1"))


def test_forget_starts_over() -> None:
    auth = authenticator()
    auth.challenged(challenge("n1"))
    auth.forget()
    assert not auth.sent_credentials
    auth.challenged(challenge("n1"))
    assert nonce_sent(auth) == "n1"
