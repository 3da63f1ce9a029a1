"""Registrations run by the user agent (softphone.registrations), with an injected clock:
REGISTER out, the registrar's answers back in as bytes, refreshes, keep-alives and
unregistration as deadlines of the agent's one timer."""

from __future__ import annotations

from softphone.agent import UserAgent
from softphone.registrations import KEEPALIVE, RegistrationUpdate, ResolveRegister
from softphone.sip.auth import Credentials
from softphone.sip.dialog import LocalAddress
from softphone.sip.endpoint import Endpoint, Outgoing, Peer, build_response
from softphone.sip.headers import NameAddress
from softphone.sip.locate import Target
from softphone.sip.message import Request, parse_message
from softphone.sip.registration import Registration
from softphone.sip.transaction import Timers
from softphone.sip.uri import SipUri

REGISTRAR = Peer("udp", "127.0.0.1", 5090)
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"


def registration(host: str = "127.0.0.1", expires: int = 600) -> Registration:
    aor = NameAddress(SipUri("sip", "alice", None, "example.test"))
    return Registration(aor=aor, registrar=SipUri("sip", None, None, host, 5090),
                        local=LocalAddress("udp", "127.0.0.1", 5070), credentials=(Credentials("alice", "secret"),),
                        expires=expires, user_agent="test", allow=ALLOW)


def sent(agent: UserAgent) -> list[Outgoing]:
    return agent.datagrams_to_send()


def registers(outgoing: list[Outgoing]) -> list[Request]:
    messages = [parse_message(o.data) for o in outgoing if o.data != KEEPALIVE]
    return [m for m in messages if isinstance(m, Request) and m.method == "REGISTER"]


def answer(agent: UserAgent, request: Request, now: float, status: int = 200) -> list[object]:
    """The registrar's answer, as bytes on the wire; it grants what was asked."""
    extra = (("Contact", f"{request.headers.get('Contact')};expires={request.headers.get('Expires')}"),)
    response = build_response(request, status, to_tag="reg", extra=extra if status == 200 else ())
    return list(agent.receive(bytes(response), REGISTRAR, now))


def advance(agent: UserAgent, until: float) -> tuple[list[object], list[Outgoing]]:
    """Run every deadline of the agent up to ``until``: what it reported and sent."""
    commands: list[object] = []
    outgoing: list[Outgoing] = []
    deadline = agent.get_timer()
    while deadline is not None and deadline <= until:
        commands += agent.handle_timer(deadline)
        outgoing += sent(agent)
        deadline = agent.get_timer()
    return commands, outgoing


def states(commands: list[object]) -> list[str]:
    return [c.change.state for c in commands if isinstance(c, RegistrationUpdate)]


def registered_agent(keepalive: float = 0.0) -> tuple[UserAgent, Registration]:
    agent = UserAgent(Endpoint(Timers()), keepalive_period=keepalive)
    reg = registration()
    assert states(agent.register(reg, "udp", 0.0)) == ["registering"]
    (request,) = registers(sent(agent))
    assert request.headers.get("Expires") == "600" and request.headers.get("Allow") == ALLOW
    assert states(answer(agent, request, 0.1)) == ["registered"]
    return agent, reg


def test_register_and_refresh_before_the_binding_lapses() -> None:
    agent, reg = registered_agent()
    assert reg.granted == 600
    deadline = reg.next_deadline()
    assert deadline is not None and 600 * 0.85 <= deadline <= 600 * 0.9 + 0.1  # refresh at 85-90 %
    commands, outgoing = advance(agent, deadline - 0.01)
    assert not states(commands) and not registers(outgoing)
    commands, outgoing = advance(agent, deadline)
    assert states(commands) == ["refreshing"]
    (refresh,) = registers(outgoing)
    assert refresh.call_id == reg.call_id and refresh.cseq.number == 2
    assert states(answer(agent, refresh, deadline + 0.1)) == ["registered"]


def test_a_challenge_is_answered_with_credentials() -> None:
    agent = UserAgent(Endpoint(Timers()), keepalive_period=0)
    agent.register(registration(), "udp", 0.0)
    (request,) = registers(sent(agent))
    challenge = build_response(request, 401, to_tag="reg",
                               extra=(("WWW-Authenticate", 'Digest realm="example.test", nonce="abc"'),))
    agent.receive(bytes(challenge), REGISTRAR, 0.1)
    (again,) = registers(sent(agent))
    assert (again.headers.get("Authorization") or "").startswith("Digest username=\"alice\"")
    assert states(answer(agent, again, 0.2)) == ["registered"]


def test_keepalives_follow_the_flow_while_registered() -> None:
    agent, _ = registered_agent(keepalive=30.0)
    _, outgoing = advance(agent, 29.9)
    assert not outgoing
    _, outgoing = advance(agent, 30.0)
    assert [(o.data, o.peer) for o in outgoing] == [(KEEPALIVE, REGISTRAR)]
    _, outgoing = advance(agent, 90.0)
    assert [o.data for o in outgoing] == [KEEPALIVE, KEEPALIVE]
    assert agent.registrations.keepalives_sent == 3


def test_unregister_all_removes_the_binding() -> None:
    agent, reg = registered_agent(keepalive=30.0)
    assert states(agent.unregister_all(1.0)) == ["unregistering"]
    assert agent.registrations.unregistering()
    (request,) = registers(sent(agent))
    assert request.headers.get("Expires") == "0"
    assert states(answer(agent, request, 1.1, 200)) == ["unregistered"]
    assert not agent.registrations.unregistering() and reg.state == "unregistered"
    # nothing left to do: no refresh, no keep-alive
    commands, outgoing = advance(agent, 3600.0)
    assert not commands and not outgoing and agent.get_timer() is None


def test_a_registrar_by_name_is_resolved_by_the_edge() -> None:
    agent = UserAgent(Endpoint(Timers()), keepalive_period=0)
    reg = registration(host="registrar.example.test")
    commands = agent.register(reg, "udp", 0.0)
    (resolve,) = [c for c in commands if isinstance(c, ResolveRegister)]
    assert resolve.target.host == "registrar.example.test" and not sent(agent)
    agent.send(resolve.call_id, resolve.request, REGISTRAR, 0.0)
    (request,) = registers(sent(agent))
    assert states(answer(agent, request, 0.1)) == ["registered"]


def test_an_unreachable_registrar_is_retried() -> None:
    agent = UserAgent(Endpoint(Timers()), keepalive_period=0)
    reg = registration(host="registrar.example.test")
    (resolve,) = [c for c in agent.register(reg, "udp", 0.0) if isinstance(c, ResolveRegister)]
    assert states(agent.unreachable(resolve.call_id, resolve.request, 0.0)) == ["retrying"]
    assert agent.get_timer() == 1.0  # the first back-off step
    assert states(agent.handle_timer(1.0)) == ["registering"]


def test_no_answer_times_out_after_timer_f() -> None:
    agent = UserAgent(Endpoint(Timers()), keepalive_period=0)
    agent.register(registration(), "udp", 0.0)
    now, changes = 0.0, []
    while now < 40 and not changes:
        deadline = agent.get_timer()
        assert deadline is not None
        now = deadline
        changes = states(agent.handle_timer(now))
        sent(agent)
    assert changes == ["retrying"] and 31.9 <= now <= 32.1  # 64*T1


# ---------------------------------------------------------------- behind a NAT (RFC 3581)

PUBLIC = ("203.0.113.9", 40000)


def answer_seen_at(agent: UserAgent, request: Request, now: float, seen: tuple[str, int]) -> list[object]:
    """The registrar's 200, its top Via saying where the REGISTER came from (received/rport)."""
    contacts = [c for c in request.headers.get_all("Contact") if "expires=0" not in c]
    extra = tuple(("Contact", f"{c};expires={request.headers.get('Expires')}") for c in contacts)
    response = bytes(build_response(request, 200, to_tag="reg", extra=extra))
    via = response.split(b"\r\nVia: ", 1)[1].split(b"\r\n", 1)[0]
    seen_via = via.replace(b";rport", f";received={seen[0]};rport={seen[1]}".encode(), 1)
    return list(agent.receive(response.replace(via, seen_via, 1), REGISTRAR, now))


def public_of(commands: list[object]) -> list[str | None]:
    return [c.change.public_address for c in commands if isinstance(c, RegistrationUpdate)]


def test_the_public_address_is_learnt_and_registered_as_the_contact() -> None:
    agent = UserAgent(Endpoint(Timers()), keepalive_period=0)
    reg = registration()
    agent.register(reg, "udp", 0.0)
    (first,) = registers(sent(agent))
    assert first.contacts[0].uri.host_port == "127.0.0.1:5070"
    commands = answer_seen_at(agent, first, 0.1, PUBLIC)
    # not registered yet: at once a REGISTER whose Contact is the address the registrar saw
    assert states(commands) == ["registering"] and public_of(commands) == ["203.0.113.9:40000"]
    (second,) = registers(sent(agent))
    new, stale = second.contacts
    assert new.uri.host_port == "203.0.113.9:40000" and new.param("expires") is None
    assert stale.uri.host_port == "127.0.0.1:5070" and stale.param("expires") == "0"  # the old binding goes
    assert second.top_via.sent_by == ("127.0.0.1", 5070)  # Via keeps the local address
    commands = answer_seen_at(agent, second, 0.2, PUBLIC)
    assert states(commands) == ["registered"] and public_of(commands) == ["203.0.113.9:40000"]
    assert reg.granted == 600 and reg.public_address == "203.0.113.9:40000"
    # the account's calls advertise it too (Contact and SDP)
    local = agent.registrations.local_for(reg.aor.uri)
    assert local is not None and local.advertised == "203.0.113.9:40000" and local.sdp_host == "203.0.113.9"
    assert local.host == "127.0.0.1" and local.via().sent_by == ("127.0.0.1", 5070)


def test_a_nat_rebinding_seen_at_a_refresh_registers_again() -> None:
    agent = UserAgent(Endpoint(Timers()), keepalive_period=0)
    reg = registration()
    agent.register(reg, "udp", 0.0)
    (request,) = registers(sent(agent))
    answer_seen_at(agent, request, 0.1, PUBLIC)
    (request,) = registers(sent(agent))
    assert states(answer_seen_at(agent, request, 0.2, PUBLIC)) == ["registered"]
    deadline = reg.next_deadline()
    assert deadline is not None
    commands, outgoing = advance(agent, deadline)
    (refresh,) = registers(outgoing)
    assert refresh.contacts[0].uri.host_port == "203.0.113.9:40000" and len(refresh.contacts) == 1
    commands = answer_seen_at(agent, refresh, deadline + 0.1, ("203.0.113.9", 40123))  # a new mapping
    assert states(commands) == ["refreshing"] and public_of(commands) == ["203.0.113.9:40123"]
    (again,) = registers(sent(agent))
    assert [c.uri.host_port for c in again.contacts] == ["203.0.113.9:40123", "203.0.113.9:40000"]
    assert states(answer_seen_at(agent, again, deadline + 0.2, ("203.0.113.9", 40123))) == ["registered"]
    local = agent.registrations.local_for(reg.aor.uri)
    assert local is not None and local.advertised == "203.0.113.9:40123"


def test_no_nat_no_rewrite() -> None:
    agent = UserAgent(Endpoint(Timers()), keepalive_period=0)
    reg = registration()
    agent.register(reg, "udp", 0.0)
    (request,) = registers(sent(agent))
    commands = answer_seen_at(agent, request, 0.1, ("127.0.0.1", 5070))  # received/rport = our own address
    assert states(commands) == ["registered"] and public_of(commands) == [None]
    assert not registers(sent(agent)) and agent.registrations.local_for(reg.aor.uri) is None


def test_a_configured_contact_is_not_rewritten() -> None:
    """[net] nat_address (firewall_policy=nat_address) or [sip] contact with guess_hostname=0: as configured."""
    agent = UserAgent(Endpoint(Timers()), keepalive_period=0)
    reg = registration()
    reg.local = LocalAddress("udp", "127.0.0.1", 5070, contact_host="198.51.100.4", contact_port=5070,
                             media_host="198.51.100.4")
    agent.register(reg, "udp", 0.0)
    (request,) = registers(sent(agent))
    assert request.contacts[0].uri.host_port == "198.51.100.4:5070"
    assert states(answer_seen_at(agent, request, 0.1, PUBLIC)) == ["registered"]
    assert not registers(sent(agent)) and reg.public is None


def test_a_registrar_whose_view_keeps_moving_is_not_followed_for_ever() -> None:
    agent = UserAgent(Endpoint(Timers()), keepalive_period=0)
    reg = registration()
    agent.register(reg, "udp", 0.0)
    now, port = 0.0, 40000
    for _ in range(10):
        (request,) = registers(sent(agent))
        now, port = now + 0.1, port + 1
        if states(answer_seen_at(agent, request, now, ("203.0.113.9", port))) == ["registered"]:
            break
    assert reg.registered and not registers(sent(agent))
    assert reg.public == ("203.0.113.9", 40003)  # three rewrites, then it settles


def _located() -> tuple[UserAgent, ResolveRegister]:
    agent = UserAgent(Endpoint(Timers()), keepalive_period=0)
    (resolve,) = [c for c in agent.register(registration(host="example.test"), "udp", 0.0)
                  if isinstance(c, ResolveRegister)]
    return agent, resolve


SECOND = Target("udp", "127.0.0.1", 5091, "sip2.example.test")


def test_a_register_answered_503_goes_to_the_next_target() -> None:
    """RFC 3263 §4.3: a 503 sends the REGISTER on, as a new transaction, to the next SRV target."""
    agent, resolve = _located()
    agent.send(resolve.call_id, resolve.request, REGISTRAR, 0.0, [SECOND])
    (first,) = registers(sent(agent))
    assert states(answer(agent, first, 0.1, status=503)) == []
    (outgoing,) = [o for o in sent(agent) if o.data != KEEPALIVE]
    assert outgoing.peer == SECOND.peer
    retry = registers([outgoing])[0]
    assert retry.top_via.branch != first.top_via.branch and retry.cseq == first.cseq
    assert states(answer(agent, retry, 0.2)) == ["registered"]


def test_a_silent_registrar_fails_over_after_timer_f_and_the_last_one_fails() -> None:
    agent, resolve = _located()
    agent.send(resolve.call_id, resolve.request, REGISTRAR, 0.0, [SECOND])
    sent(agent)
    commands, outgoing = advance(agent, 32.5)  # Timer F of the first target
    peers = [o.peer for o in outgoing]
    assert states(commands) == [] and SECOND.peer in peers
    assert REGISTRAR not in peers[peers.index(SECOND.peer):]  # the first target is done with
    commands, _ = advance(agent, 65.0)  # Timer F of the second: no target left
    assert "retrying" in states(commands) or "failed" in states(commands)
