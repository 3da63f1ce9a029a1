"""Digest-authenticated incoming calls ([sip] require_auth) from pjsua2 and baresip: they
answer our 401 with their account's credentials and the call is set up; with a wrong
password the call is refused with 403 and the refusal is logged with the source address."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop

PASSWORD = "Incoming-auth-pw-93"
REALM = "softphone.test"


def secured_config(tmp_path: Path, ha1: bool = False) -> Path:
    """require_auth=1 with alice in the users file: as user:password (we challenge with MD5 and
    SHA-256), or as user:realm:ha1 (MD5 only: baresip's libre gives up on any SHA-256 challenge)."""
    users = tmp_path / "users"
    digest = hashlib.md5(f"alice:{REALM}:{PASSWORD}".encode()).hexdigest()
    users.write_text(f"# who may call\nalice:{REALM}:{digest}\n" if ha1 else f"# who may call\nalice:{PASSWORD}\n")
    os.chmod(users, 0o600)
    config = tmp_path / "softphonerc"
    config.write_text(f"[sip]\nrequire_auth=1\nusers_file=users\nauth_realm={REALM}\n")
    return config


def answer(softphone, tmp_path: Path, ha1: bool = False):
    return softphone("-c", secured_config(tmp_path, ha1), "-vv", "--bind", "127.0.0.1", "--sip-port", "0",
                     "--rtp-port", "0", "answer", "--auto", "--once")


@pytest.mark.timeout(60)
def test_pjsua2_answers_the_401_and_the_call_is_set_up(softphone, pjsua2_peer, tmp_path: Path) -> None:
    sp = answer(softphone, tmp_path)
    uri = f"sip:softphone@127.0.0.1:{sp.port('udp')}"
    peer = pjsua2_peer("call", call_uri=uri, duration=2, max_time=20, extra=("--user", "alice", "--password", PASSWORD))
    res = peer.wait(35)
    rc = sp.wait(15)
    where = f"pjsua2 stderr:\n{peer.stderr[-3000:]}\n{sp.describe()}"
    (call,) = res.get("calls") or [None]
    assert call is not None and "CONFIRMED" in call["state_names"], where
    assert rc == 0, where
    assert "SIP/2.0 401 Unauthorized" in sp.stderr and f'realm="{REALM}"' in sp.stderr, where
    assert "sip:alice@softphone.test (authenticated, 127.0.0.1:" in sp.stderr, where
    assert sp.summary is not None and sp.summary.get("answered") == 1, where
    assert PASSWORD not in sp.stderr + "\n".join(sp.stdout_lines), where


@pytest.mark.timeout(60)
def test_pjsua2_with_a_wrong_password_is_refused(softphone, pjsua2_peer, tmp_path: Path) -> None:
    sp = answer(softphone, tmp_path)
    uri = f"sip:softphone@127.0.0.1:{sp.port('udp')}"
    peer = pjsua2_peer("call", call_uri=uri, duration=2, max_time=15,
                       extra=("--user", "alice", "--password", "wrong-password"))
    res = peer.wait(30)
    rc = sp.wait(15)
    where = f"pjsua2 stderr:\n{peer.stderr[-3000:]}\n{sp.describe()}"
    (call,) = res.get("calls") or [None]
    assert call is not None and "CONFIRMED" not in call["state_names"] and call["last_code"] == 403, where
    assert rc == 0, where
    assert f"(127.0.0.1:{peer.port}) refused: authentication failed (wrong password)" in sp.stderr, where
    (summary,) = sp.summary["calls"] if sp.summary else [None]
    assert summary is not None and summary["sip_code"] == 403 and summary["result"] == "rejected", where


@pytest.mark.timeout(60)
def test_baresip_answers_the_401_and_the_call_is_set_up(softphone, baresip_peer, tmp_path: Path) -> None:
    sp = answer(softphone, tmp_path, ha1=True)
    peer = baresip_peer("call", dial=f"sip:softphone@127.0.0.1:{sp.port('udp')}", user="alice",
                        auth_pass=PASSWORD, hangup_after=2, max_time=20)
    peer.wait_event("CALL_ESTABLISHED", timeout=15)
    rc = sp.wait(20)
    where = f"baresip log:\n{peer.log()}\n{sp.describe()}"
    assert rc == 0, where
    assert "SIP/2.0 401 Unauthorized" in sp.stderr, where
    assert "sip:alice@softphone.test (authenticated, 127.0.0.1:" in sp.stderr, where
    assert sp.summary is not None and sp.summary.get("answered") == 1, where


@pytest.mark.timeout(60)
def test_baresip_with_a_wrong_password_is_refused(softphone, baresip_peer, tmp_path: Path) -> None:
    sp = answer(softphone, tmp_path, ha1=True)
    peer = baresip_peer("call", dial=f"sip:softphone@127.0.0.1:{sp.port('udp')}", user="alice",
                        auth_pass="not-alices", max_time=15)
    closed = peer.wait_event("CALL_CLOSED", timeout=15)
    rc = sp.wait(15)
    where = f"baresip log:\n{peer.log()}\n{closed}\n{sp.describe()}"
    assert "403" in str(closed.get("param")), where
    assert rc == 0, where
    assert f"(127.0.0.1:{peer.sip_port}) refused: authentication failed (wrong password)" in sp.stderr, where
