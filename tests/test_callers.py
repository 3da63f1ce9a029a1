"""Who may call (softphone.callers): allow and deny lists on the authenticated identity,
digest-authenticated incoming calls between two user agents in memory, and the warning
for a phone that answers anyone."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from softphone.agent import IncomingPolicy
from softphone.call import CallState, EndCause
from softphone.callers import open_door
from softphone.config import loads
from softphone.config.private import split_patterns, verifier_for
from softphone.errors import ConfigError
from softphone.sip.auth import Credentials
from softphone.sip.challenge import DigestVerifier, UserSecret
from tests.test_call import Net, Side, dial, setup_for

PASSWORD = "Callers-test-pw-7"


def pair(policy: IncomingPolicy, credentials: tuple[Credentials, ...] = (), caller: str = "alice") -> tuple[
    Side, Side, Net
]:
    alice = Side(caller, 5061, dataclasses.replace(setup_for(caller, 5061, 20000), credentials=credentials))
    bob = Side("bob", 5062, setup_for("bob", 5062, 30000))
    bob.agent.policy = policy
    return alice, bob, Net(alice, bob)


def secured(**changes: object) -> IncomingPolicy:
    verifier = DigestVerifier("example.org", {"alice": UserSecret("alice", password=PASSWORD)})
    return dataclasses.replace(IncomingPolicy(auto_answer=True, verifier=verifier), **changes)  # type: ignore[arg-type]


def test_authenticated_call_is_set_up_after_the_401(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "softphone.callers")
    alice, bob, net = pair(secured(), (Credentials("alice", PASSWORD),))
    call = dial(alice, net)
    assert call.state == CallState.CONFIRMED
    assert [d.split(b" ", 2)[1] for d in net.sent(b"SIP/2.0 401")] == [b"401"]
    assert len(net.sent(b"INVITE ")) == 2 and b"Authorization: Digest" in net.sent(b"INVITE ")[1]
    assert bob.refused() == []  # the challenge is no refused call
    assert "sip:alice@example.org (authenticated, 127.0.0.1:5061) admitted" in caplog.text


def test_wrong_password_is_refused_with_403_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    alice, bob, net = pair(secured(), (Credentials("alice", "not-the-password"),))
    call = dial(alice, net)
    assert call.state == CallState.TERMINATED
    assert net.sent(b"SIP/2.0 403")
    assert [r.status for r in bob.refused()] == [403] and bob.refused()[0].cause == EndCause.NOT_ALLOWED
    assert "(127.0.0.1:5061) refused: authentication failed (wrong password)" in caplog.text
    assert "not-the-password" not in caplog.text


def test_caller_without_credentials_gets_only_the_401() -> None:
    alice, bob, net = pair(secured())
    call = dial(alice, net)
    assert call.state == CallState.TERMINATED and len(net.sent(b"INVITE ")) == 1
    assert net.sent(b"SIP/2.0 401") and bob.call is None


def test_deny_matches_the_authenticated_user_not_the_from(caplog: pytest.LogCaptureFixture) -> None:
    # the From says mallory, the digest proves alice: the deny list on alice refuses the call
    alice, bob, net = pair(secured(deny=("alice",)), (Credentials("alice", PASSWORD),), caller="mallory")
    assert dial(alice, net).state == CallState.TERMINATED
    assert [r.status for r in bob.refused()] == [403]
    assert "sip:alice@example.org (authenticated, 127.0.0.1:5061) refused: in the deny list" in caplog.text


def test_allow_matches_the_authenticated_user_not_a_forged_from() -> None:
    # an allow list naming alice lets in no one who writes alice in the From without her password
    alice, bob, net = pair(secured(allow=("sip:alice@*",)), (Credentials("alice", "guess"),))
    assert dial(alice, net).state == CallState.TERMINATED
    alice, bob, net = pair(secured(allow=("sip:alice@*",)), (Credentials("alice", PASSWORD),), caller="eve")
    assert dial(alice, net).state == CallState.CONFIRMED


def test_deny_wins_over_allow_on_the_from_uri(caplog: pytest.LogCaptureFixture) -> None:
    alice, bob, net = pair(IncomingPolicy(auto_answer=True, allow=("*@127.0.0.1",), deny=("sip:alice@*",)))
    assert dial(alice, net).state == CallState.TERMINATED
    expected = "call from sip:alice@127.0.0.1 (unauthenticated From, 127.0.0.1:5061) refused: in the deny list"
    assert expected in caplog.text
    alice, bob, net = pair(IncomingPolicy(auto_answer=True, allow=("*@127.0.0.1",), deny=("sip:eve@*",)))
    assert dial(alice, net).state == CallState.CONFIRMED


def test_not_in_the_allow_list_is_refused(caplog: pytest.LogCaptureFixture) -> None:
    alice, bob, net = pair(IncomingPolicy(auto_answer=True, allow=("carol@*",)))
    assert dial(alice, net).state == CallState.TERMINATED
    assert "refused: not in the allow list" in caplog.text


def test_allow_and_deny_keys_are_split_on_spaces_and_commas() -> None:
    config = loads("[sip]\nauto_answer_allow=sip:alice@*, bob@example.org  carol\nauto_answer_deny=eve\n")
    assert split_patterns(config.sip.auto_answer_allow) == ("sip:alice@*", "bob@example.org", "carol")
    assert split_patterns(config.sip.auto_answer_deny) == ("eve",)


def test_open_door_warning() -> None:
    anyone = IncomingPolicy(auto_answer=True)
    assert open_door(anyone, "0.0.0.0") is not None and "no allow list" in (open_door(anyone, "::") or "")
    assert open_door(anyone, "192.0.2.7") is not None
    assert open_door(anyone, "127.0.0.1") is None and open_door(anyone, "::1") is None
    assert open_door(IncomingPolicy(auto_answer=True, allow=("alice",)), "0.0.0.0") is None
    assert open_door(secured(), "0.0.0.0") is None
    assert open_door(IncomingPolicy(auto_answer=False), "0.0.0.0") is None


def test_require_auth_users_file_and_auth_realm_keys(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[sip\] require_auth: require_auth=1 needs a users_file"):
        loads("[sip]\nrequire_auth=1\n", "rc")
    (tmp_path / "users").write_text(f"alice:{PASSWORD}\n")
    text = "[sip]\ncontact=sip:bob@phone.example.org\nrequire_auth=1\nusers_file=users\n"
    config = loads(text, str(tmp_path / "rc"))
    verifier = verifier_for(config)
    assert verifier is not None and verifier.realm == "phone.example.org" and list(verifier.users) == ["alice"]
    verifier = verifier_for(loads(text + "auth_realm=calls.example.org\n", str(tmp_path / "rc")))
    assert verifier is not None and verifier.realm == "calls.example.org"
    assert verifier_for(loads(text.replace("require_auth=1", "require_auth=0"), str(tmp_path / "rc"))) is None
    with pytest.raises(ConfigError, match=r"\[sip\] users_file: cannot read .*missing: No such file"):
        verifier_for(loads(text.replace("users_file=users", "users_file=missing"), str(tmp_path / "rc")))
    (tmp_path / "bad").write_text(f"alice {PASSWORD}\n")
    with pytest.raises(ConfigError, match=r"users_file: .*bad: line 1") as caught:
        verifier_for(loads(text.replace("users_file=users", "users_file=bad"), str(tmp_path / "rc")))
    assert PASSWORD not in str(caught.value)
