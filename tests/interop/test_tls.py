"""SIP over TLS (sips: URIs, ;transport=tls): against Kamailio's TLS module, softphone to
softphone, and the certificates the phone must refuse. The CA and the certificates are made
at test time by the ``tls_ca`` fixture (openssl)."""

from __future__ import annotations

import time

import pytest

pytestmark = pytest.mark.interop

PASSWORDS = {"alice": "alicepw", "bob": "bobpw"}
AUDIO = ("--no-video", "--audio-sink", "null:")


def tls_rc(tmp_path, name: str, *, root_ca=None, cert=None, key=None, extra: str = "", account: str = "") -> str:
    """A config file with the [sip] TLS keys given (and any other lines)."""
    lines = ["[sip]"]
    if root_ca is not None:
        lines.append(f"root_ca={root_ca}")
    if cert is not None:
        lines += [f"tls_cert={cert}", f"tls_key={key}"]
    path = tmp_path / f"{name}.rc"
    path.write_text("\n".join(lines) + "\n" + extra + account)
    return str(path)


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def tls_answerer(softphone, tmp_path, ca, *names: str, extra: str = "", wire: bool = False):
    """bob: a softphone answering on a TLS listener (sip_tls_port=-1) with a certificate for ``names``."""
    cert, key = ca.issue("bob", *names)
    rc = tls_rc(tmp_path, "bob", cert=cert, key=key, extra="sip_tls_port=-1\n" + extra)
    verbose = ("-vv",) if wire else ()
    bob = softphone("-c", rc, "--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0", *verbose,
                    "answer", "--auto", "--once", "--audio-source", "tone: 880", *AUDIO)
    return bob, bob.port("tls")


# ----------------------------------------------------------------------------- Kamailio


@pytest.mark.timeout(90)
def test_register_over_tls_to_kamailio_and_call_pjsua2_registered_over_udp(
    softphone, kamailio, pjsua2_peer, tls_ca, tmp_path
):
    ca = tls_ca()
    # Kamailio asks every TLS client for a certificate signed by the test CA: ours is tls_cert
    registrar = kamailio(tls=ca, tls_require_cert=True, invite_auth=True)
    bob = pjsua2_peer("answer", codec="PCMU/8000", calls=1, duration=2, max_time=40,
                      extra=("--user", "bob", "--domain", "127.0.0.1",
                             "--register", f"sip:127.0.0.1:{registrar.udp_port}", "--password", "bobpw"))
    registrar.wait_registered("bob", timeout=10)
    cert, key = ca.issue("alice", "alice.test", client=True)
    account = (f"[proxy_0]\nreg_proxy=<sip:127.0.0.1:{registrar.tls_port};transport=tls>\n"
               "reg_identity=sip:alice@127.0.0.1\nreg_expires=60\n"
               "[auth_info_0]\nusername=alice\npasswd=alicepw\n")
    rc = tls_rc(tmp_path, "alice", root_ca=ca.cert, cert=cert, key=key, extra="keepalive_period=1000\n",
                account=account)
    alice = softphone("-c", rc, "--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0",
                      "call", "bob", "--audio-source", "tone: 440", *AUDIO, "--timeout", "15")
    assert alice.wait(40) == 0, alice.describe() + registrar.current_log[-3000:]
    assert "REQ INVITE sip:bob@127.0.0.1 from tls:" in registrar.log, registrar.log[-3000:]
    result = bob.wait(30)
    (call,) = result["calls"]
    assert "CONFIRMED" in call["state_names"] and call["hangup_by"] == "local", call
    summary = alice.summary
    assert summary["reason"] == "remote hangup" and summary["audio"]["rx_packets"] > 50, summary
    assert summary["audio"]["tx_packets"] > 50, summary


@pytest.mark.timeout(60)
def test_registration_keeps_its_tls_flow_alive_and_kamailio_refuses_a_client_without_certificate(
    softphone, kamailio, tls_ca, tmp_path
):
    ca = tls_ca()
    registrar = kamailio(tls=ca, tls_require_cert=True)
    account = (f"[proxy_0]\nreg_proxy=<sips:127.0.0.1:{registrar.tls_port}>\n"
               "reg_identity=sip:alice@127.0.0.1\nreg_expires=60\n"
               "[auth_info_0]\nusername=alice\npasswd=alicepw\n")
    cert, key = ca.issue("alice", "alice.test", client=True)
    rc = tls_rc(tmp_path, "alice", root_ca=ca.cert, cert=cert, key=key, extra="keepalive_period=300\n",
                account=account)
    alice = softphone("-c", rc, "--bind", "127.0.0.1", "--sip-port", "0", "-v", "register")
    alice.wait_event("registration", timeout=15, state="registered", account="sip:alice@127.0.0.1")
    (contact,) = registrar.wait_registered("alice")
    assert contact["address"].startswith("sips:alice@127.0.0.1:"), contact
    assert "tls:127.0.0.1" in contact.get("socket", ""), contact
    # CRLF keep-alives on the TLS flow (RFC 5626 §4.4.1), answered by Kamailio's pong
    deadline = alice.started_at + 20
    while alice.stderr.count("keep-alive (CRLF CRLF) to 127.0.0.1") < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alice.stderr.count(f"keep-alive (CRLF CRLF) to 127.0.0.1:{registrar.tls_port}/tls") >= 3, alice.describe()
    assert alice.stop() == 0, alice.describe()
    # without a client certificate Kamailio ends the handshake: each REGISTER fails at once
    anonymous = softphone("-c", tls_rc(tmp_path, "anon", root_ca=ca.cert, account=account), "--bind", "127.0.0.1",
                          "--sip-port", "0", "-v", "register", "--once", "--timeout", "4")
    assert anonymous.wait(30) == 3, anonymous.describe()  # a transport error, in the TLS failure's words
    assert not anonymous.find_events("registration", state="registered")
    last = anonymous.stderr.strip().splitlines()[-1]
    # the handshake fails, or the server closes the connection at once: either way a TLS line
    assert last.startswith("softphone: TLS: ") and f"127.0.0.1:{registrar.tls_port}" in last, last


# ----------------------------------------------------------------------------- softphone to softphone


@pytest.mark.timeout(60)
def test_softphone_calls_softphone_over_tls_with_audio(softphone, tls_ca, tmp_path):
    ca = tls_ca()
    bob, port = tls_answerer(softphone, tmp_path, ca, "127.0.0.1", "localhost", wire=True)
    alice = softphone("-c", tls_rc(tmp_path, "alice", root_ca=ca.cert), "--bind", "127.0.0.1", "--sip-port", "0",
                      "--rtp-port", "0", "call", f"sips:bob@127.0.0.1:{port}", "--duration", "2",
                      "--audio-source", "tone: 440", *AUDIO)
    assert alice.wait(30) == 0, alice.describe()
    assert bob.wait(20) == 0, bob.describe()
    summary = alice.summary
    assert summary["result"] == "completed" and summary["reason"] == "local hangup", summary
    assert summary["audio"]["rx_packets"] > 50 and summary["audio"]["tx_packets"] > 50, summary
    (end,) = bob.summary["calls"]
    assert end["audio"]["rx_packets"] > 50, end
    # what bob received: a TLS Via and a sips: Contact (RFC 3261 §8.1.1.8, RFC 5630)
    wire = bob.stderr
    assert f"INVITE sips:bob@127.0.0.1:{port} SIP/2.0" in wire
    assert "Via: SIP/2.0/TLS 127.0.0.1:" in wire
    assert "Contact: <sips:" in wire, wire[-3000:]


@pytest.mark.timeout(60)
def test_call_with_transport_tls_to_a_localhost_name(softphone, tls_ca, tmp_path):
    ca = tls_ca()
    bob, port = tls_answerer(softphone, tmp_path, ca, "localhost")
    # the name checked is the URI's domain (localhost), not the address it resolves to
    alice = softphone("-c", tls_rc(tmp_path, "alice", root_ca=ca.cert), "--bind", "127.0.0.1", "--sip-port", "0",
                      "--rtp-port", "0", "call", f"sip:bob@localhost:{port};transport=tls", "--duration", "1",
                      "--audio-source", "tone: 440", *AUDIO)
    assert alice.wait(30) == 0, alice.describe()
    assert bob.wait(20) == 0, bob.describe()
    assert alice.summary["audio"]["rx_packets"] > 20, alice.summary


# ----------------------------------------------------------------------------- refused certificates


@pytest.mark.timeout(60)
@pytest.mark.parametrize("trusted", ["another CA", "the system's"])
def test_a_wrong_ca_is_exit_3_and_one_line(softphone, tls_ca, tmp_path, trusted):
    """The server's CA is not the one we trust: another CA in ``root_ca``, or, without
    ``root_ca``, the system's trusted certificates (loaded at the first TLS connection, not at
    start), among which our test CA is not."""
    bob, port = tls_answerer(softphone, tmp_path, tls_ca(), "127.0.0.1")
    root_ca = tls_ca(trusted).cert if trusted == "another CA" else None
    alice = softphone("-c", tls_rc(tmp_path, "alice", root_ca=root_ca), "--bind", "127.0.0.1", "--sip-port", "0",
                      "--rtp-port", "0", "call", f"sips:bob@127.0.0.1:{port}", "--duration", "1", *AUDIO)
    assert alice.wait(30) == 3, alice.describe()
    line = one_line(alice.stderr)
    assert line.startswith("softphone: TLS: certificate verify failed for 127.0.0.1: "), line
    assert "unable to get local issuer certificate" in line, line
    assert not bob.find_events("incoming"), bob.describe()


@pytest.mark.timeout(60)
def test_a_certificate_for_another_name_is_exit_3(softphone, tls_ca, tmp_path):
    ca = tls_ca()
    bob, port = tls_answerer(softphone, tmp_path, ca, "example.test")
    alice = softphone("-c", tls_rc(tmp_path, "alice", root_ca=ca.cert), "--bind", "127.0.0.1", "--sip-port", "0",
                      "--rtp-port", "0", "call", f"sips:bob@127.0.0.1:{port}", "--duration", "1", *AUDIO)
    assert alice.wait(30) == 3, alice.describe()
    line = one_line(alice.stderr)
    assert line.startswith("softphone: TLS: certificate verify failed for 127.0.0.1: "), line
    assert "mismatch" in line, line


@pytest.mark.timeout(60)
def test_verify_server_cn_0_accepts_another_name_and_verify_server_certs_0_another_ca(softphone, tls_ca, tmp_path):
    ca = tls_ca()
    bob, port = tls_answerer(softphone, tmp_path, ca, "example.test")
    rc = tls_rc(tmp_path, "alice", root_ca=ca.cert, extra="verify_server_cn=0\n")
    alice = softphone("-c", rc, "--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0",
                      "call", f"sips:bob@127.0.0.1:{port}", "--duration", "1", *AUDIO)
    assert alice.wait(30) == 0, alice.describe()
    assert bob.wait(20) == 0, bob.describe()
    carol, port = tls_answerer(softphone, tmp_path, tls_ca("carol's CA"), "127.0.0.1")
    rc = tls_rc(tmp_path, "alice2", root_ca=ca.cert, extra="verify_server_certs=0\n")
    alice = softphone("-c", rc, "--bind", "127.0.0.1", "--sip-port", "0", "--rtp-port", "0",
                      "call", f"sips:carol@127.0.0.1:{port}", "--duration", "1", *AUDIO)
    assert alice.wait(30) == 0, alice.describe()
    assert carol.wait(20) == 0, carol.describe()


@pytest.mark.timeout(30)
def test_a_tls_listener_without_certificate_is_a_config_error(softphone, tls_ca, tmp_path):
    rc = tls_rc(tmp_path, "bob", extra="sip_tls_port=-1\n")
    bob = softphone("-c", rc, "--bind", "127.0.0.1", "--sip-port", "0", "answer", "--auto", "--once")
    assert bob.wait(20) == 2, bob.describe()
    line = one_line(bob.stderr)
    assert "[sip] tls_cert" in line and "tls_key" in line and rc in line, line
    ca = tls_ca()
    cert, _ = ca.issue("bob", "127.0.0.1")
    rc = tls_rc(tmp_path, "bob2", cert=cert, key=tmp_path / "missing.key", extra="sip_tls_port=-1\n")
    bob = softphone("-c", rc, "--bind", "127.0.0.1", "--sip-port", "0", "answer", "--auto", "--once")
    assert bob.wait(20) == 2, bob.describe()
    line = one_line(bob.stderr)
    assert "[sip] tls_key" in line and "missing.key" in line, line
