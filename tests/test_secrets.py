"""Secrets never reach logs, --json or reprs; a config file holding a password that others can
read gets a warning naming the file."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pytest

from softphone.config import load
from softphone.config.private import verifier_for

ACCOUNT_PASSWORD = "Secrets-account-pw-41"
CALLER_PASSWORD = "Secrets-caller-pw-58"
REALM = "secrets.test"


def write_config(tmp_path: Path, mode: int) -> Path:
    users = tmp_path / "users"
    users.write_text(f"alice:{CALLER_PASSWORD}\n")
    os.chmod(users, 0o600)
    path = tmp_path / "softphonerc"
    path.write_text(
        f"[sip]\nrequire_auth=1\nusers_file=users\nauth_realm={REALM}\n"
        f"[auth_info_0]\nusername=bob\npasswd={ACCOUNT_PASSWORD}\nrealm={REALM}\n"
    )
    os.chmod(path, mode)
    return path


def test_config_readable_by_others_is_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_config(tmp_path, 0o644)
    load(path)
    assert f"{path}: holds a password and is readable by others (chmod 600 it)" in caplog.text
    caplog.clear()
    os.chmod(path, 0o600)
    config = load(path)
    assert "readable" not in caplog.text
    os.chmod(tmp_path / "users", 0o640)
    verifier_for(config)
    assert f"{tmp_path / 'users'}: holds passwords and is readable by its group" in caplog.text
    assert ACCOUNT_PASSWORD not in repr(config) + caplog.text and CALLER_PASSWORD not in repr(verifier_for(config))


@pytest.mark.interop
@pytest.mark.timeout(60)
def test_no_secret_in_any_output_of_an_authenticated_call(softphone, pjsua2_peer, tmp_path: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    path = write_config(tmp_path, 0o600)
    sp = softphone("-c", path, "-vv", "--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0",
                   "answer", "--auto", "--once")
    uri = f"sip:softphone@127.0.0.1:{sp.port('udp')}"
    peer = pjsua2_peer("call", call_uri=uri, duration=1, max_time=20,
                       extra=("--user", "alice", "--password", CALLER_PASSWORD))
    res = peer.wait(30)
    assert sp.wait(15) == 0, sp.describe()
    assert res["calls"] and "CONFIRMED" in res["calls"][0]["state_names"], sp.describe()
    assert "Authorization: Digest" in sp.stderr  # the -vv wire log was written
    output = sp.stderr + "\n".join(sp.stdout_lines) + caplog.text
    ha1s = [hashlib.new(name, f"{user}:{REALM}:{pw}".encode()).hexdigest() for name in ("md5", "sha256")
            for user, pw in (("alice", CALLER_PASSWORD), ("bob", ACCOUNT_PASSWORD))]
    for secret in (ACCOUNT_PASSWORD, CALLER_PASSWORD, *ha1s):
        assert secret not in output
