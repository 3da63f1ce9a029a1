"""The server side of digest authentication (softphone.sip.challenge): RFC worked examples,
nonces, the users file, and our own client (softphone.sip.authenticator) answering our challenge."""

from __future__ import annotations

import hashlib

import pytest

from softphone.sip.auth import Credentials
from softphone.sip.authenticator import Authenticator
from softphone.sip.challenge import DigestVerifier, UserSecret, UsersFileError, Verdict, parse_users
from softphone.sip.endpoint import build_response
from softphone.sip.message import Request, parse_message

PASSWORD = "s3cret-Challenge-pw"
INVITE = (  # noqa: UP012 (readable as text)
    "INVITE sip:bob@127.0.0.1:5062 SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:alice@127.0.0.1>;tag=a1\r\n"
    "To: <sip:bob@127.0.0.1:5062>\r\n"
    "Call-ID: c1@127.0.0.1\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:alice@127.0.0.1:5061>\r\n"
    "Content-Length: 0\r\n\r\n"
).encode()


def invite() -> Request:
    message = parse_message(INVITE)
    assert isinstance(message, Request)
    return message


def answered(verifier: DigestVerifier, client: Authenticator, request: Request, now: float) -> Request:
    """``request`` with the credentials our client computes from the verifier's 401."""
    check = verifier.check(request, now)
    response = build_response(request, 401, to_tag="t", extra=check.challenge)
    client.challenged(response)
    return client.authorize(request)


def test_rfc2617_worked_example_md5() -> None:
    # RFC 2617 §3.5: Mufasa / "Circle Of Life", GET /dir/index.html
    ha1 = UserSecret("Mufasa", password="Circle Of Life").ha1_for("testrealm@host.com", "MD5")
    assert ha1 is not None
    params = {"uri": "/dir/index.html", "nonce": "dcd98b7102dd2f0e8b11d0f600bfb0c093", "qop": "auth",
              "nc": "00000001", "cnonce": "0a4f113b"}
    assert DigestVerifier._response(ha1, "MD5", "GET", params) == "6629fae49393a05397450978507c4ef1"


@pytest.mark.parametrize(("algorithm", "expected"), [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
])
def test_rfc7616_worked_examples(algorithm: str, expected: str) -> None:
    # RFC 7616 §3.9.1
    ha1 = UserSecret("Mufasa", password="Circle of Life").ha1_for("http-auth@example.org", algorithm)
    assert ha1 is not None
    params = {"uri": "/dir/index.html", "nonce": "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", "qop": "auth",
              "nc": "00000001", "cnonce": "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"}
    assert DigestVerifier._response(ha1, algorithm, "GET", params) == expected


def test_no_credentials_gets_a_challenge_per_algorithm() -> None:
    verifier = DigestVerifier("example.org", {"alice": UserSecret("alice", password=PASSWORD)})
    check = verifier.check(invite(), 10.0)
    assert check.verdict == Verdict.CHALLENGE
    values = [value for name, value in check.challenge if name == "WWW-Authenticate"]
    assert len(values) == 2 and "algorithm=MD5" in values[0] and "algorithm=SHA-256" in values[1]
    assert all('realm="example.org"' in v and 'qop="auth"' in v for v in values)


@pytest.mark.parametrize("preferred", [("SHA-256",), ("MD5",)])
def test_our_client_answers_our_challenge(preferred: tuple[str, ...]) -> None:
    verifier = DigestVerifier("example.org", {"alice": UserSecret("alice", password=PASSWORD)})
    verifier.algorithms = preferred
    request = answered(verifier, Authenticator([Credentials("alice", PASSWORD)]), invite(), 10.0)
    assert f"algorithm={preferred[0]}" in (request.headers.get("Authorization") or "")
    check = verifier.check(request, 11.0)
    assert check.verdict == Verdict.ACCEPTED and check.username == "alice"


def test_wrong_password_is_refused() -> None:
    verifier = DigestVerifier("example.org", {"alice": UserSecret("alice", password=PASSWORD)})
    request = answered(verifier, Authenticator([Credentials("alice", "wrong")]), invite(), 10.0)
    check = verifier.check(request, 10.5)
    assert check.verdict == Verdict.REFUSED and check.reason == "wrong password"


def test_unknown_user_is_refused() -> None:
    verifier = DigestVerifier("example.org", {"alice": UserSecret("alice", password=PASSWORD)})
    request = answered(verifier, Authenticator([Credentials("mallory", PASSWORD)]), invite(), 10.0)
    assert verifier.check(request, 10.5).verdict == Verdict.REFUSED


def test_expired_nonce_is_stale_and_the_client_retries() -> None:
    verifier = DigestVerifier("example.org", {"alice": UserSecret("alice", password=PASSWORD)}, nonce_lifetime=30)
    client = Authenticator([Credentials("alice", PASSWORD)])
    request = answered(verifier, client, invite(), 10.0)
    check = verifier.check(request, 100.0)
    assert check.verdict == Verdict.STALE
    assert all("stale=true" in value for _, value in check.challenge)
    client.challenged(build_response(request, 401, to_tag="t", extra=check.challenge))  # no AuthError: a retry
    assert verifier.check(client.authorize(invite()), 101.0).verdict == Verdict.ACCEPTED


def test_a_nonce_we_did_not_make_is_challenged_again() -> None:
    ours = DigestVerifier("example.org", {"alice": UserSecret("alice", password=PASSWORD)})
    other = DigestVerifier("example.org", {"alice": UserSecret("alice", password=PASSWORD)})
    request = answered(other, Authenticator([Credentials("alice", PASSWORD)]), invite(), 10.0)
    assert other.check(request, 10.0).verdict == Verdict.ACCEPTED
    assert ours.check(request, 10.0).verdict == Verdict.CHALLENGE
    assert ours.nonce_age("not base64 !", 1.0) is None


def test_credentials_for_another_request_uri_are_refused() -> None:
    verifier = DigestVerifier("example.org", {"alice": UserSecret("alice", password=PASSWORD)})
    request = answered(verifier, Authenticator([Credentials("alice", PASSWORD)]), invite(), 10.0)
    moved = parse_message(bytes(request).replace(b"INVITE sip:bob@127.0.0.1:5062", b"INVITE sip:carol@127.0.0.1"))
    assert isinstance(moved, Request)
    assert verifier.check(moved, 10.0).verdict == Verdict.REFUSED


def test_ha1_users_get_md5_only_and_are_accepted() -> None:
    ha1 = hashlib.md5(f"alice:example.org:{PASSWORD}".encode()).hexdigest()
    users = parse_users(f"# users\n\nalice:example.org:{ha1}\n")
    verifier = DigestVerifier("example.org", users)
    assert verifier.algorithms == ("MD5",)
    request = answered(verifier, Authenticator([Credentials("alice", PASSWORD)]), invite(), 1.0)
    assert verifier.check(request, 1.0).verdict == Verdict.ACCEPTED
    # an ha1 for another realm cannot answer this one
    assert DigestVerifier("other.org", users).check(request, 1.0).verdict != Verdict.ACCEPTED


def test_users_file_errors_name_the_line_not_the_secret() -> None:
    assert parse_users("alice:pw\nbob:realm:" + "0" * 32)["bob"].realm == "realm"
    with pytest.raises(UsersFileError, match="line 2") as caught:
        parse_users("alice:pw\nbob-has-no-password-here\n")
    assert "pw" not in str(caught.value)
    with pytest.raises(UsersFileError, match="line 1"):
        parse_users("carol:realm:not-hex-TopSecret\n")


def test_secrets_stay_out_of_reprs() -> None:
    users = parse_users(f"alice:{PASSWORD}\nbob:r:{'a' * 32}\n")
    verifier = DigestVerifier("r", users)
    assert PASSWORD not in repr(users) and "a" * 32 not in repr(users) and PASSWORD not in repr(verifier)
