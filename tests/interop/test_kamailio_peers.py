"""The Kamailio fixture against reference peers: SIPp, pjsua2 and raw SIP messages.

These tests check the registrar + proxy itself (digest auth, location table,
restart, 407 on INVITE, SHA-256 challenges), so that the softphone's tests
through Kamailio can rely on it.
"""
from __future__ import annotations

import hashlib
import re
import secrets
import socket

import pytest

from tests.conftest import PJSUA2_PEER, free_port
from tests.interop.conftest import KamailioProcess

# --------------------------------------------------------------------------- raw SIP over UDP


class RawUdpClient:
    """A bare SIP client on a UDP socket: enough to see a proxy's answers."""

    def __init__(self, proxy_port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(3.0)
        self.port = self.sock.getsockname()[1]
        self.proxy = ("127.0.0.1", proxy_port)
        self.call_id = f"{secrets.token_hex(8)}@127.0.0.1"
        self.tag = secrets.token_hex(4)

    def close(self) -> None:
        self.sock.close()

    def request(self, method: str, uri: str, from_user: str, to_uri: str, cseq: int,
                headers: tuple[str, ...] | list[str] = ()) -> str:
        """Send one request, return the first final (>= 200) response's text."""
        branch = "z9hG4bK" + secrets.token_hex(6)
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/UDP 127.0.0.1:{self.port};rport;branch={branch}",
            "Max-Forwards: 70",
            f"From: <sip:{from_user}@127.0.0.1>;tag={self.tag}",
            f"To: <{to_uri}>",
            f"Call-ID: {self.call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: <sip:{from_user}@127.0.0.1:{self.port}>",
            *headers,
            "Content-Length: 0",
            "", "",
        ]
        self.sock.sendto("\r\n".join(lines).encode(), self.proxy)
        while True:
            data, _ = self.sock.recvfrom(65535)
            text = data.decode(errors="replace")
            if status(text) >= 200:
                return text


def status(response: str) -> int:
    return int(response.split(" ", 2)[1])


def header(response: str, name: str) -> str | None:
    for line in response.split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return None


def digest_answer(challenge: str, user: str, password: str, method: str, uri: str,
                  algorithm: str | None = None) -> str:
    """An RFC 2617 / RFC 8760 Digest answer (MD5 or SHA-256, with or without qop=auth)."""
    params = {k: a or b for k, a, b in re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]+))', challenge)}
    alg = algorithm or params.get("algorithm", "MD5")
    digest = hashlib.sha256 if alg.upper() == "SHA-256" else hashlib.md5

    def h(s: str) -> str:
        return digest(s.encode()).hexdigest()

    realm, nonce = params["realm"], params["nonce"]
    ha1 = h(f"{user}:{realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    fields = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"',
              f"algorithm={alg}"]
    if "auth" in params.get("qop", "").split(","):
        cnonce, nc = secrets.token_hex(8), "00000001"
        response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
    else:
        response = h(f"{ha1}:{nonce}:{ha2}")
    fields.append(f'response="{response}"')
    return "Digest " + ", ".join(fields)


def raw_register(k: KamailioProcess, user: str, password: str, expires: int = 60,
                 algorithm: str | None = None) -> tuple[str, str]:
    """REGISTER, answer the 401: (the 401's text, the final response's text)."""
    c = RawUdpClient(k.udp_port)
    try:
        uri = f"sip:127.0.0.1:{k.udp_port}"
        aor = f"sip:{user}@127.0.0.1"
        first = c.request("REGISTER", uri, user, aor, 1, [f"Expires: {expires}"])
        if status(first) != 401:
            return first, first
        answer = digest_answer(header(first, "WWW-Authenticate") or "", user, password,
                               "REGISTER", uri, algorithm)
        final = c.request("REGISTER", uri, user, aor, 2,
                          [f"Expires: {expires}", f"Authorization: {answer}"])
        return first, final
    finally:
        c.close()


def sipp_register(sipp, k: KamailioProcess, user: str, password: str, *,
                  contact_port: int | None = None, transport: str = "u1", expires: int = 60):
    """sipp register_auth.xml for `user`; Contact 127.0.0.1:contact_port (default: the
    port sipp itself sends from)."""
    port = free_port("udp")
    return sipp("register_auth.xml", f"127.0.0.1:{k.udp_port}", "-t", transport, "-m", 1,
                "-p", port, "-s", user, "-ap", password, "-key", "domain", k.domain,
                "-key", "contact", f"127.0.0.1:{contact_port or port}", "-key", "expires",
                expires, timeout=15)


# --------------------------------------------------------------------------- SIPp


@pytest.mark.parametrize("transport", ["u1", "t1"])
def test_sipp_registers_with_digest_auth(kamailio, sipp, transport):
    k = kamailio()
    reg = sipp_register(sipp, k, "alice", "alicepw", transport=transport)
    port = reg.local_port
    assert reg.wait() == 0, reg.describe() + k.current_log
    assert "SIP/2.0 401 Unauthorized" in reg.messages
    assert "SIP/2.0 200 OK" in reg.messages
    contacts = k.location("alice")
    assert [c["address"] for c in contacts] == [
        f"sip:alice@127.0.0.1:{port};transport={'UDP' if transport == 'u1' else 'TCP'}"]
    assert contacts[0]["socket"].startswith("udp:" if transport == "u1" else "tcp:")
    assert contacts[0]["socket"].endswith(f":{k.udp_port}")
    assert "LOCATION-SAVED aor=sip:alice@127.0.0.1" in k.log


@pytest.mark.parametrize("user,password", [("alice", "wrong"), ("mallory", "x")])
def test_wrong_password_is_refused_and_not_registered(kamailio, sipp, user, password):
    k = kamailio()
    reg = sipp_register(sipp, k, user, password)
    assert reg.wait() != 0
    assert "SIP/2.0 401 Unauthorized" in reg.messages
    assert re.search(r"SIP/2\.0 (401|403) ", reg.messages.split("CSeq: 2 REGISTER", 1)[1])
    assert k.location() == []
    assert "REGISTER auth FAILED" in k.log


def test_invite_reaches_registered_sipp_uas(kamailio, sipp):
    k = kamailio()
    uas_port = free_port("udp")
    uas = sipp("uas_av.xml", None, "-p", uas_port, "-m", 1, timeout=30)
    # bob's binding points at the UAS, not at the registering sipp
    reg = sipp_register(sipp, k, "bob", "bobpw", contact_port=uas_port)
    assert reg.wait() == 0, reg.describe()
    assert k.location("bob")[0]["address"].startswith(f"sip:bob@127.0.0.1:{uas_port}")
    uac = sipp("uac_av.xml", f"127.0.0.1:{k.udp_port}", "-s", "bob", "-m", 1, "-d", 200,
               timeout=20)
    assert uac.wait() == 0, uac.describe() + k.current_log
    assert uas.wait() == 0, uas.describe()
    rr = re.findall(r"^Record-Route: (.*)$", uas.messages, re.M)
    assert rr and f"127.0.0.1:{k.udp_port};lr" in rr[0]
    # the ACK and BYE of the caller were routed through Kamailio (loose routing)
    assert re.search(r"^ACK .*?^Route: ", uac.messages, re.M | re.S)
    assert "LOOKUP INVITE -> sip:bob@127.0.0.1" in k.log


def test_unregistered_user_gets_404(kamailio):
    k = kamailio()
    c = RawUdpClient(k.udp_port)
    try:
        r = c.request("INVITE", k.aor("carol"), "alice", k.aor("carol"), 1)
    finally:
        c.close()
    assert status(r) == 404


def test_bare_domain_request_uri_reaches_the_binding(kamailio):
    """sip:bob@127.0.0.1 (no port) is this proxy's domain: routed to bob's binding."""
    k = kamailio()
    bob = RawUdpClient(k.udp_port)
    try:
        uri = f"sip:127.0.0.1:{k.udp_port}"
        first = bob.request("REGISTER", uri, "bob", "sip:bob@127.0.0.1", 1, ["Expires: 60"])
        answer = digest_answer(header(first, "WWW-Authenticate") or "", "bob", "bobpw",
                               "REGISTER", uri)
        ok = bob.request("REGISTER", uri, "bob", "sip:bob@127.0.0.1", 2,
                         ["Expires: 60", f"Authorization: {answer}"])
        assert status(ok) == 200
        caller = RawUdpClient(k.udp_port)
        try:
            caller.sock.sendto(
                (f"MESSAGE sip:bob@127.0.0.1 SIP/2.0\r\n"
                 f"Via: SIP/2.0/UDP 127.0.0.1:{caller.port};rport;branch=z9hG4bKm1\r\n"
                 f"Max-Forwards: 70\r\nFrom: <sip:alice@127.0.0.1>;tag=a1\r\n"
                 f"To: <sip:bob@127.0.0.1>\r\nCall-ID: m1@127.0.0.1\r\nCSeq: 1 MESSAGE\r\n"
                 f"Content-Length: 0\r\n\r\n").encode(), caller.proxy)
            data, _ = bob.sock.recvfrom(65535)
        finally:
            caller.close()
    finally:
        bob.close()
    assert data.startswith(f"MESSAGE sip:bob@127.0.0.1:{bob.port} SIP/2.0".encode())


# --------------------------------------------------------------------------- location, restart


def test_location_and_restart_on_the_same_ports(kamailio, sipp):
    k = kamailio()
    assert k.location() == []
    first, final = raw_register(k, "carol", "carolpw", expires=120)
    assert (status(first), status(final)) == (401, 200)
    contacts = k.wait_registered("carol")
    assert len(contacts) == 1 and contacts[0]["address"].startswith("sip:carol@127.0.0.1:")
    assert int(contacts[0]["expires"]) <= 120
    old_pid, port = k.pid, k.udp_port
    k.restart()
    assert (k.udp_port, k.tcp_port) == (port, port) and k.pid != old_pid
    assert k.location() == []            # usrloc is in memory only
    # a client re-registers after the restart
    reg = sipp_register(sipp, k, "carol", "carolpw")
    assert reg.wait() == 0, reg.describe() + k.current_log
    assert len(k.location("carol")) == 1


def test_expires_min_answers_423(kamailio):
    k = kamailio(expires_min=60)
    first, final = raw_register(k, "alice", "alicepw", expires=10)
    assert status(final) == 423, final
    assert header(final, "Min-Expires") == "60"
    assert k.location() == []
    first, final = raw_register(k, "alice", "alicepw", expires=60)
    assert status(final) == 200


# --------------------------------------------------------------------------- 407, SHA-256


def test_invite_auth_challenges_unauthenticated_invite(kamailio):
    k = kamailio(invite_auth=True)
    first, final = raw_register(k, "bob", "bobpw")
    assert status(final) == 200
    c = RawUdpClient(k.udp_port)
    try:
        r = c.request("INVITE", k.aor("bob"), "alice", k.aor("bob"), 1)
    finally:
        c.close()
    assert status(r) == 407, r
    assert (header(r, "Proxy-Authenticate") or "").startswith("Digest ")
    assert "INVITE from sip:alice@127.0.0.1 challenged with 407" in k.log


def test_without_invite_auth_invite_is_not_challenged(kamailio):
    k = kamailio()
    c = RawUdpClient(k.udp_port)
    try:
        r = c.request("INVITE", k.aor("bob"), "alice", k.aor("bob"), 1)
    finally:
        c.close()
    assert status(r) == 404         # not registered, and no 407 first


@pytest.mark.parametrize("qop", [False, True])
def test_sha256_challenge(kamailio, qop):
    k = kamailio(sha256=True, qop=qop)
    first, final = raw_register(k, "alice", "alicepw")
    challenge = header(first, "WWW-Authenticate") or ""
    assert "algorithm=SHA-256" in challenge
    assert ('qop="auth"' in challenge) is qop
    assert status(final) == 200, final
    assert len(k.location("alice")) == 1
    # an MD5 answer to a SHA-256 challenge is not accepted
    first, final = raw_register(k, "bob", "bobpw", algorithm="MD5")
    assert status(final) in (401, 403)
    assert k.location("bob") == []


def test_md5_challenge_with_qop(kamailio):
    k = kamailio(qop=True)
    first, final = raw_register(k, "alice", "alicepw")
    challenge = header(first, "WWW-Authenticate") or ""
    assert 'qop="auth"' in challenge and "SHA-256" not in challenge
    assert status(final) == 200, final


# --------------------------------------------------------------------------- pjsua2 peers


def _confirmed(result: dict) -> bool:
    return any(c.get("confirmed") or any(st.get("state") == "CONFIRMED" for st in c["states"])
               for c in result.get("calls", []))


def test_pjsua2_call_through_kamailio(kamailio, sipp, pjsua2_peer):
    """bob's binding is registered by sipp for a pjsua2 answerer; pjsua2 alice calls
    sip:bob@<kamailio> and both reach CONFIRMED through the proxy."""
    k = kamailio()
    bob = pjsua2_peer("answer", calls=1, max_time=30)
    reg = sipp_register(sipp, k, "bob", "bobpw", contact_port=bob.port)
    assert reg.wait() == 0, reg.describe()
    alice = pjsua2_peer("call", call_uri=k.aor("bob"), duration=1.0, max_time=20)
    ra = alice.wait()
    rb = bob.wait(20)
    assert _confirmed(ra), ra
    assert _confirmed(rb), rb
    assert "LOOKUP INVITE -> sip:bob@127.0.0.1:" in k.log


def _pjsua2_has_register() -> bool:
    return "--register" in PJSUA2_PEER.read_text()


@pytest.mark.parametrize("invite_auth", [False, True])
def test_pjsua2_peers_register_and_call(kamailio, pjsua2_peer, invite_auth):
    """pjsua2 bob and alice both REGISTER with digest auth; alice calls bob through
    Kamailio (answering the 407 on INVITE and BYE with invite_auth)."""
    if not _pjsua2_has_register():
        pytest.skip("pjsua2_peer.py has no --register option")
    k = kamailio(invite_auth=invite_auth)

    def account(user: str) -> tuple[str, ...]:
        return ("--register", k.registrar_uri(), "--user", user, "--password", k.users[user])

    bob = pjsua2_peer("answer", calls=1, max_time=30, extra=account("bob"))
    k.wait_registered("bob")
    alice = pjsua2_peer("call", call_uri=k.aor("bob"), duration=1.0, max_time=20,
                        extra=account("alice"))
    k.wait_registered("alice")
    assert {c["aor"] for c in k.location()} == {"alice", "bob"}
    ra = alice.wait()
    rb = bob.wait(20)
    assert _confirmed(ra), ra
    assert _confirmed(rb), rb
    if invite_auth:
        assert "INVITE from sip:alice@127.0.0.1 challenged with 407" in k.log
        assert "INVITE proxy-auth ok user=alice" in k.log
        assert "BYE proxy-auth ok user=alice" in k.log     # alice hung up
