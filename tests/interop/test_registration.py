"""Registration and calls through a real registrar and proxy (Kamailio with digest auth)."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.interop

PASSWORDS = {"alice": "alicepw", "bob": "bobpw", "carol": "carolpw"}


def account_rc(tmp_path, kamailio, user: str, *, password: str | None = None, expires: int = 60,
               transport: str = "udp") -> str:
    path = tmp_path / f"{user}.rc"
    path.write_text(
        f"[sip]\ncontact=sip:{user}@{kamailio.domain}\nkeepalive_period=1000\n"
        f"[proxy_0]\nreg_proxy=<sip:{kamailio.domain}:{kamailio.udp_port};transport={transport}>\n"
        f"reg_identity=sip:{user}@{kamailio.domain}\nreg_expires={expires}\n"
        f"[auth_info_0]\nusername={user}\npasswd={password or PASSWORDS[user]}\n"
    )
    path.chmod(0o600)  # it holds a password: readable by its owner only, or the phone warns
    return str(path)


def registered(sp, user: str, timeout: float = 10.0) -> dict:
    return sp.wait_event("registration", timeout=timeout, state="registered", account=f"sip:{user}@127.0.0.1")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_register_once(softphone, kamailio, tmp_path, transport):
    registrar = kamailio()
    rc = account_rc(tmp_path, registrar, "alice", transport=transport)
    sp = softphone("-c", rc, "--bind", "127.0.0.1", "--sip-port", "0", "-vv", "register", "--once")
    assert sp.wait(30) == 0, sp.describe()
    event = registered(sp, "alice", timeout=1)
    assert event["expires"] == 60 and event["sip_code"] == 200
    (summary,) = sp.summary["registrations"]
    assert summary["state"] == "unregistered"  # --once unregisters before it exits
    assert f"SIP/2.0/{transport.upper()}" in sp.stderr and "Authorization: Digest" in sp.stderr
    assert "Expires: 0" in sp.stderr
    assert registrar.location("alice") == []


@pytest.mark.timeout(60)
def test_wrong_password_is_one_clear_line_and_exit_5(softphone, kamailio, tmp_path):
    registrar = kamailio()
    rc = account_rc(tmp_path, registrar, "alice", password="not-the-password")
    sp = softphone("-c", rc, "--bind", "127.0.0.1", "--sip-port", "0", "register", "--once")
    assert sp.wait(30) == 5, sp.describe()
    lines = [line for line in sp.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "authentication failed" in lines[0] and "Traceback" not in sp.stderr, sp.stderr
    # no retry storm: one REGISTER without and one with credentials
    attempts = [e for e in sp.find_events("registration") if e["state"] == "registering"]
    assert len(attempts) == 1, sp.describe()


@pytest.mark.timeout(60)
def test_sha256_digest(softphone, kamailio, tmp_path):
    registrar = kamailio(sha256=True, qop=True)
    rc = account_rc(tmp_path, registrar, "carol")
    sp = softphone("-c", rc, "--bind", "127.0.0.1", "--sip-port", "0", "-vv", "register", "--once")
    assert sp.wait(30) == 0, sp.describe()
    assert "algorithm=SHA-256" in sp.stderr.split("WWW-Authenticate", 1)[1], sp.describe()
    authorization = [line for line in sp.stderr.splitlines() if line.startswith("Authorization:")]
    assert authorization and "algorithm=SHA-256" in authorization[0] and "qop=auth" in authorization[0]


@pytest.mark.timeout(90)
def test_registration_is_refreshed_and_stays_valid(softphone, kamailio, tmp_path):
    registrar = kamailio()
    rc = account_rc(tmp_path, registrar, "alice", expires=4)
    sp = softphone("-c", rc, "--bind", "127.0.0.1", "--sip-port", "0", "register")
    registered(sp, "alice")
    seen = []
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        contacts = registrar.location("alice")
        assert contacts, f"the registration lapsed\n{sp.describe()}"
        seen.append(contacts[0]["expires"])
        time.sleep(1)
    refreshes = [e for e in sp.find_events("registration") if e["state"] == "registered"]
    assert len(refreshes) >= 4, sp.describe()  # the first registration and at least 3 refreshes
    assert sp.stop() == 0
    assert registrar.location("alice") == []  # unregistered on exit


@pytest.mark.timeout(90)
def test_reregisters_by_itself_after_the_registrar_restarts(softphone, kamailio, tmp_path):
    registrar = kamailio()
    rc = account_rc(tmp_path, registrar, "alice", expires=5)
    sp = softphone("-c", rc, "--bind", "127.0.0.1", "--sip-port", "0", "register")
    registered(sp, "alice")
    registrar.stop()
    time.sleep(6)  # the registrar is away for longer than a refresh: REGISTERs go unanswered
    registrar.restart()
    restarted = time.monotonic()
    registrar.wait_registered("alice", timeout=10)
    assert time.monotonic() - restarted < 10
    states = [e["state"] for e in sp.find_events("registration")]
    assert "registered" in states[states.index("refreshing"):], states


@pytest.mark.timeout(90)
@pytest.mark.parametrize("invite_auth", [False, True], ids=["open", "invite-auth"])
def test_alice_calls_bob_by_name_through_the_proxy(softphone, kamailio, tmp_path, invite_auth):
    registrar = kamailio(invite_auth=invite_auth)
    bob = softphone("-c", account_rc(tmp_path, registrar, "bob"), "--bind", "127.0.0.1", "--sip-port", "0",
                    "--rtp-port", "0", "answer", "--auto", "--once", "--duration", "2", "--no-video",
                    "--audio-source", "tone: 880", "--audio-sink", "null:")
    registered(bob, "bob")
    alice = softphone("-c", account_rc(tmp_path, registrar, "alice"), "--bind", "127.0.0.1", "--sip-port", "0",
                      "--rtp-port", "0", "call", "bob", "--no-video", "--audio-source", "tone: 440",
                      "--audio-sink", "null:", "--timeout", "15")
    assert alice.wait(40) == 0, alice.describe() + registrar.current_log[-3000:]
    assert bob.wait(20) == 0, bob.describe()
    summary = alice.summary
    assert summary["result"] == "completed" and summary["reason"] == "remote hangup", summary
    assert summary["audio"]["rx_packets"] > 50 and summary["audio"]["tx_packets"] > 50, summary
    if invite_auth:
        assert "authenticating" in [e["state"] for e in alice.find_events("state")]
    (end,) = bob.summary["calls"]
    assert end["audio"]["rx_packets"] > 50


@pytest.mark.timeout(90)
def test_bob_calls_alice_and_hangs_up(softphone, kamailio, tmp_path):
    registrar = kamailio(invite_auth=True)
    alice = softphone("-c", account_rc(tmp_path, registrar, "alice"), "--bind", "127.0.0.1", "--sip-port", "0",
                      "--rtp-port", "0", "answer", "--auto", "--once", "--no-video",
                      "--audio-source", "tone: 440", "--audio-sink", "null:")
    registered(alice, "alice")
    bob = softphone("-c", account_rc(tmp_path, registrar, "bob"), "--bind", "127.0.0.1", "--sip-port", "0",
                    "--rtp-port", "0", "call", "sip:alice@127.0.0.1", "--duration", "2", "--no-video",
                    "--audio-source", "tone: 880", "--audio-sink", "null:")
    assert bob.wait(40) == 0, bob.describe() + registrar.current_log[-3000:]
    assert alice.wait(20) == 0, alice.describe()
    (end,) = alice.summary["calls"]
    assert end["result"] == "completed" and end["audio"]["rx_packets"] > 50, end
    assert bob.summary["reason"] == "local hangup"


@pytest.mark.timeout(90)
def test_softphone_calls_pjsua2_registered_as_bob(softphone, kamailio, pjsua2_peer, tmp_path):
    registrar = kamailio(invite_auth=True)
    registrar_uri = f"sip:127.0.0.1:{registrar.udp_port}"
    bob = pjsua2_peer("answer", codec="PCMU/8000", calls=1, duration=2, max_time=40,
                      extra=("--user", "bob", "--domain", "127.0.0.1", "--register", registrar_uri,
                             "--password", "bobpw"))
    registrar.wait_registered("bob", timeout=10)
    alice = softphone("-c", account_rc(tmp_path, registrar, "alice"), "--bind", "127.0.0.1", "--sip-port", "0",
                      "--rtp-port", "0", "call", "bob", "--no-video", "--audio-source", "tone: 440",
                      "--audio-sink", "null:", "--timeout", "15")
    assert alice.wait(40) == 0, alice.describe() + registrar.current_log[-3000:]
    result = bob.wait(30)
    (call,) = result["calls"]
    assert "CONFIRMED" in call["state_names"] and call["hangup_by"] == "local", call
    assert call["codec"] == "PCMU/8000" and alice.summary["audio"]["codec"] == "PCMU", alice.summary
    assert alice.summary["reason"] == "remote hangup" and alice.summary["audio"]["rx_packets"] > 50


@pytest.mark.timeout(90)
def test_pjsua2_registered_as_bob_calls_the_softphone(softphone, kamailio, pjsua2_peer, tmp_path):
    registrar = kamailio(invite_auth=True)
    registrar_uri = f"sip:127.0.0.1:{registrar.udp_port}"
    alice = softphone("-c", account_rc(tmp_path, registrar, "alice"), "--bind", "127.0.0.1", "--sip-port", "0",
                      "--rtp-port", "0", "answer", "--auto", "--once", "--no-video",
                      "--audio-source", "tone: 440", "--audio-sink", "null:")
    registered(alice, "alice")
    bob = pjsua2_peer("call", call_uri="sip:alice@127.0.0.1", codec="PCMA/8000", duration=2, max_time=40,
                      extra=("--user", "bob", "--domain", "127.0.0.1", "--register", registrar_uri,
                             "--password", "bobpw"))
    result = bob.wait(40)
    (call,) = result["calls"]
    assert "CONFIRMED" in call["state_names"] and call["hangup_by"] == "local", call
    assert alice.wait(20) == 0, alice.describe()
    (end,) = alice.summary["calls"]
    assert end["result"] == "completed" and end["audio"]["codec"] == "PCMA", end
    assert end["remote_party"].startswith("sip:bob@127.0.0.1"), end


@pytest.mark.timeout(60)
def test_keepalives_on_the_registrar_flow(softphone, kamailio, tmp_path):
    registrar = kamailio()
    rc = account_rc(tmp_path, registrar, "alice")
    with open(rc, "a") as extra:
        extra.write("[sip]\nkeepalive_period=300\n")  # a later duplicate key overrides, as in linphonerc
    sp = softphone("-c", rc, "--bind", "127.0.0.1", "--sip-port", "0", "-v", "register")
    registered(sp, "alice")
    time.sleep(1.5)
    assert sp.stop() == 0
    sent = [line for line in sp.stderr.splitlines() if "keep-alive (CRLF CRLF) to 127.0.0.1" in line]
    assert len(sent) >= 3, sp.stderr[-2000:]
    # the registrar ignored them: still registered until we unregistered on exit
    states = [e["state"] for e in sp.find_events("registration")]
    assert states[-2:] == ["unregistering", "unregistered"], states
