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
