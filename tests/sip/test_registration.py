"""The registration state machine, answered by hand-made registrar responses (no sockets, no sleeping)."""

from __future__ import annotations

import hashlib

import pytest

from softphone.errors import StateError
from softphone.sip.auth import Credentials
from softphone.sip.dialog import LocalAddress
from softphone.sip.endpoint import build_response
from softphone.sip.headers import NameAddress
from softphone.sip.message import Request, Response
from softphone.sip.registration import BACKOFF, Registration, RegistrationChanged, SendRegister
from softphone.sip.uri import SipUri

REALM = "example.com"
CHALLENGE = f'Digest realm="{REALM}", nonce="abc123", qop="auth", algorithm=MD5'


def registration(password: str = "alicepw", expires: int = 600) -> Registration:
    return Registration(
        aor=NameAddress(SipUri("sip", "alice", None, "example.com")),
        registrar=SipUri("sip", None, None, "example.com"),
        local=LocalAddress("udp", "192.0.2.10", 5070),
        credentials=(Credentials("alice", password),),
        expires=expires,
        user_agent="test",
    )


def sent(commands: list) -> Request:
    (send,) = [c for c in commands if isinstance(c, SendRegister)]
    return send.request


def states(commands: list) -> list[str]:
    return [c.state for c in commands if isinstance(c, RegistrationChanged)]


def challenge(request: Request, value: str = CHALLENGE, status: int = 401) -> Response:
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    return build_response(request, status, extra=((name, value),))


def ok(request: Request, expires: int | None = None) -> Response:
    contact = f"<sip:alice@192.0.2.10:5070>;expires={expires}" if expires is not None else None
    return build_response(request, 200, to_tag="reg", extra=(("Contact", contact),) if contact else ())


def digest_response(request: Request, password: str) -> str:
    header = request.headers.get("Authorization") or ""
    params = dict(p.strip().split("=", 1) for p in header[len("Digest "):].split(","))
    params = {k: v.strip('"') for k, v in params.items()}
    ha1 = hashlib.md5(f"alice:{REALM}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"REGISTER:{params['uri']}".encode()).hexdigest()
    return hashlib.md5(f"{ha1}:{params['nonce']}:{params['nc']}:{params['cnonce']}:auth:{ha2}".encode()).hexdigest()


def test_register_answers_the_challenge_and_honours_the_granted_expiry() -> None:
    reg = registration()
    first = sent(reg.start(0.0))
    assert first.method == "REGISTER" and str(first.uri) == "sip:example.com"
    assert first.headers.get("Expires") == "600" and "Authorization" not in first.headers
    assert first.contacts[0].uri.host == "192.0.2.10"
    second = sent(reg.on_response(challenge(first), 0.1))
    assert second.cseq.number == first.cseq.number + 1 and second.call_id == first.call_id
    assert second.top_via.branch != first.top_via.branch
    header = second.headers.get("Authorization") or ""
    assert 'username="alice"' in header and f'response="{digest_response(second, "alicepw")}"' in header
    out = reg.on_response(ok(second, expires=60), 0.2)
    assert states(out) == ["registered"] and reg.granted == 60
    # refresh at 85-90 % of the granted time
    deadline = reg.next_deadline()
    assert deadline is not None and 0.2 + 51.0 <= deadline <= 0.2 + 54.0


def test_refresh_keeps_credentials_and_call_id() -> None:
    reg = registration()
    first = sent(reg.start(0.0))
    second = sent(reg.on_response(challenge(first), 0.0))
    reg.on_response(ok(second, expires=10), 0.0)
    deadline = reg.next_deadline()
    assert deadline is not None and 8.5 <= deadline <= 9.0  # 10-15 % early, at least 1 s
    refresh = sent(reg.handle_timer(deadline))
    assert reg.state == "refreshing" and refresh.call_id == first.call_id
    assert "nc=00000002" in (refresh.headers.get("Authorization") or "")  # same nonce, next count
    reg.on_response(ok(refresh, expires=10), 9.1)
    assert reg.state == "registered"


def test_wrong_password_fails_once_without_a_retry_storm() -> None:
    reg = registration(password="wrong")
    first = sent(reg.start(0.0))
    second = sent(reg.on_response(challenge(first), 0.1))
    out = reg.on_response(challenge(second), 0.2)  # the same nonce again: refused
    assert states(out) == ["failed"] and reg.auth_failed
    assert not [c for c in out if isinstance(c, SendRegister)]
    assert "authentication failed" in reg.last_reason
    assert reg.next_deadline() == pytest.approx(60.2)  # one try a minute, not a storm


def test_stale_nonce_is_retried() -> None:
    reg = registration()
    first = sent(reg.start(0.0))
    second = sent(reg.on_response(challenge(first), 0.1))
    stale = CHALLENGE.replace("abc123", "def456") + ", stale=true"
    third = sent(reg.on_response(challenge(second, stale), 0.2))
    assert 'nonce="def456"' in (third.headers.get("Authorization") or "")
    assert states(reg.on_response(ok(third, 30), 0.3)) == ["registered"]


def test_wrong_password_with_a_fresh_nonce_fails_at_once() -> None:
    """Registrars that hand out a new nonce with every 401 still refuse: no stale=true, no retry."""
    reg = registration(password="wrong")
    first = sent(reg.start(0.0))
    second = sent(reg.on_response(challenge(first), 0.1))
    out = reg.on_response(challenge(second, CHALLENGE.replace("abc123", "fresh1")), 0.2)
    assert states(out) == ["failed"] and reg.auth_failed
    assert not [c for c in out if isinstance(c, SendRegister)]


def test_stale_nonce_on_refresh_is_retried_without_a_failure() -> None:
    reg = registration()
    first = sent(reg.start(0.0))
    second = sent(reg.on_response(challenge(first), 0.1))
    reg.on_response(ok(second, expires=60), 0.2)
    deadline = reg.next_deadline()
    assert deadline is not None
    refresh = sent(reg.handle_timer(deadline))
    stale = CHALLENGE.replace("abc123", "def456") + ", stale=true"
    out = reg.on_response(challenge(refresh, stale), deadline + 0.1)
    retry = sent(out)
    assert states(out) == [] and reg.state == "refreshing"
    header = retry.headers.get("Authorization") or ""
    assert 'nonce="def456"' in header and "nc=00000001" in header
    assert retry.cseq.number == refresh.cseq.number + 1
    assert states(reg.on_response(ok(retry, 60), deadline + 0.2)) == ["registered"]
    assert reg.failures == 0 and not reg.auth_failed


def test_proxy_challenge_gets_proxy_authorization() -> None:
    reg = registration()
    first = sent(reg.start(0.0))
    second = sent(reg.on_response(challenge(first, status=407), 0.1))
    assert "Proxy-Authorization" in second.headers and "Authorization" not in second.headers


def test_unreachable_registrar_is_retried_with_bounded_backoff() -> None:
    reg = registration()
    now = 0.0
    request = sent(reg.start(now))
    delays = []
    for _ in range(6):
        reg.on_timeout(request, now)
        assert reg.state == "retrying"
        deadline = reg.next_deadline()
        assert deadline is not None
        delays.append(deadline - now)
        now = deadline
        request = sent(reg.handle_timer(now))
    assert delays == [*BACKOFF, BACKOFF[-1], BACKOFF[-1]]
    # the registrar is back: registered, and the backoff starts again
    reg.on_response(ok(request, 30), now)
    assert reg.state == "registered" and reg.failures == 0


def test_interval_too_brief_uses_min_expires() -> None:
    reg = registration(expires=30)
    first = sent(reg.start(0.0))
    brief = build_response(first, 423, extra=(("Min-Expires", "120"),))
    second = sent(reg.on_response(brief, 0.1))
    assert second.headers.get("Expires") == "120"


def test_expires_header_when_the_contact_has_none() -> None:
    reg = registration()
    first = sent(reg.start(0.0))
    response = build_response(first, 200, to_tag="r", extra=(("Expires", "300"),))
    reg.on_response(response, 0.0)
    assert reg.granted == 300


def test_unregister_sends_expires_zero() -> None:
    reg = registration()
    first = sent(reg.start(0.0))
    reg.on_response(ok(first, 60), 0.0)
    bye = sent(reg.unregister(1.0))
    assert bye.headers.get("Expires") == "0" and reg.state == "unregistering"
    assert states(reg.on_response(ok(bye, 0), 1.1)) == ["unregistered"]
    assert reg.next_deadline() is None


def test_forbidden_is_a_failure_not_a_retry() -> None:
    reg = registration()
    first = sent(reg.start(0.0))
    out = reg.on_response(build_response(first, 403), 0.1)
    assert states(out) == ["failed"] and not reg.auth_failed


def test_late_response_to_an_old_request_is_ignored() -> None:
    reg = registration()
    first = sent(reg.start(0.0))
    sent(reg.on_response(challenge(first), 0.1))
    assert reg.on_response(ok(first, 60), 0.2) == []
    assert reg.state == "registering"


def test_illegal_transition_raises() -> None:
    reg = registration()
    with pytest.raises(StateError):
        reg.handle_timer(0.0) or reg._go("ok")


def test_forbidden_after_credentials_is_an_authentication_failure() -> None:
    reg = registration(password="wrong")
    first = sent(reg.start(0.0))
    second = sent(reg.on_response(challenge(first), 0.1))
    out = reg.on_response(build_response(second, 403), 0.2)
    assert states(out) == ["failed"] and reg.auth_failed


def test_a_400_is_answered_by_sending_the_register_once_more_with_the_next_cseq() -> None:
    """A registrar that saved an earlier copy of a REGISTER may refuse a late copy (Kamailio's
    usrloc takes the same CSeq as a retransmission for 20 s only, then answers 400 "invalid
    cseq"): the REGISTER goes again, credentials and all, with the next CSeq; a second 400
    in a row is a failure."""
    reg = registration()
    first = sent(reg.start(0.0))
    second = sent(reg.on_response(challenge(first), 0.1))
    out = reg.on_response(build_response(second, 400), 21.0)
    third = sent(out)
    assert states(out) == [] and reg.state == "registering"
    assert third.cseq.number == second.cseq.number + 1 and third.call_id == second.call_id
    assert "Authorization" in third.headers
    assert states(reg.on_response(ok(third, 600), 21.1)) == ["registered"]
    # the next cycle may resend once after a 400 again; two 400s in a row fail
    refresh = sent(reg.handle_timer(reg.deadline or 0.0))
    again = sent(reg.on_response(build_response(refresh, 400), 600.0))
    assert states(reg.on_response(build_response(again, 400), 600.1)) == ["failed"]
