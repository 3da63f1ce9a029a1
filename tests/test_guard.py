"""Flood protection (softphone.guard) with an injected clock: token buckets per source,
caps on transactions and dialogs, one 503 then silence, calls never limited."""

from __future__ import annotations

import pytest

from softphone.agent import IncomingCall, IncomingPolicy, UserAgent
from softphone.config import loads
from softphone.guard import Guard, Limits, TokenBucket, Verdict
from softphone.phone import Phone
from softphone.sip.endpoint import Endpoint, Peer
from softphone.sip.message import Response, parse_message
from softphone.sip.transaction import Timers
from tests.test_call import setup_for

FLOODER = Peer("udp", "127.0.0.2", 5060)
CALLER = Peer("udp", "127.0.0.3", 5060)


def request(method: str, source: Peer, n: int, *, call_id: str | None = None, to_tag: str = "",
            cseq: int = 1) -> bytes:
    call_id = call_id or f"{method.lower()}-{source.host}-{n}"
    tag = f";tag={to_tag}" if to_tag else ""
    return (
        f"{method} sip:phone@127.0.0.1 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {source.host}:{source.port};branch=z9hG4bK{method}{n}x{cseq};rport\r\n"
        f"Max-Forwards: 70\r\nFrom: <sip:caller@{source.host}>;tag=f{n}\r\nTo: <sip:phone@127.0.0.1>{tag}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\nContact: <sip:caller@{source.host}:{source.port}>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def statuses(agent: UserAgent) -> list[int]:
    out = []
    for datagram in agent.datagrams_to_send():
        message = parse_message(datagram.data)
        assert isinstance(message, Response)
        out.append(message.status)
    return out


def guarded_agent(limits: Limits) -> tuple[UserAgent, Guard]:
    """An agent with a guard wired as the phone wires it: the dialog cap counts calls in progress."""
    agent = UserAgent(Endpoint(Timers()), user_agent="test", policy=IncomingPolicy(auto_answer=True, max_calls=5000))
    guard = Guard(limits)
    guard.protect(agent.endpoint, agent.calls, "test", live=agent.active_calls)
    return agent, guard


# ---------------------------------------------------------------- the bucket and the verdicts


def test_a_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    bucket = TokenBucket.full(rate=2.0, burst=3, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.4) is False  # 0.8 token
    assert bucket.take(0.5) is True  # 1.0 token
    assert not bucket.is_full(1.0)
    assert bucket.is_full(100.0) and bucket.tokens == 3.0  # never more than the burst


def test_a_source_over_its_rate_gets_one_503_then_silence_until_retry_after() -> None:
    guard = Guard(Limits(rate=1.0, burst=2, retry_after=5))
    verdicts = [guard.check("10.0.0.1", 0.0) for _ in range(5)]
    assert verdicts == [Verdict.ADMIT, Verdict.ADMIT, Verdict.REFUSE, Verdict.DROP, Verdict.DROP]
    assert guard.check("10.0.0.1", 1.0) == Verdict.ADMIT  # a token came back
    assert guard.check("10.0.0.1", 1.1) == Verdict.DROP  # over again, the 503 still runs
    assert [guard.check("10.0.0.1", 5.0) for _ in range(2)] == [Verdict.ADMIT, Verdict.ADMIT]  # full again
    assert guard.check("10.0.0.1", 5.0) == Verdict.REFUSE  # the Retry-After is over: one more 503
    assert (guard.refused, guard.dropped) == (2, 3)


def test_each_source_has_its_own_bucket() -> None:
    guard = Guard(Limits(rate=1.0, burst=1))
    assert guard.check("10.0.0.1", 0.0) == Verdict.ADMIT
    assert guard.check("10.0.0.1", 0.0) == Verdict.REFUSE
    assert guard.check("10.0.0.2", 0.0) == Verdict.ADMIT


def test_rate_zero_turns_the_per_source_limit_off_but_caps_still_hold() -> None:
    guard = Guard(Limits(rate=0, max_transactions=10, max_dialogs=3))
    assert all(guard.check("10.0.0.1", 0.0, transactions=9) == Verdict.ADMIT for _ in range(1000))
    assert guard.check("10.0.0.1", 0.0, transactions=10) == Verdict.REFUSE
    assert guard.check("10.0.0.1", 0.0, dialogs=3) == Verdict.ADMIT  # not an INVITE
    assert guard.check("10.0.0.1", 0.0, dialogs=3, invite=True) == Verdict.REFUSE
    assert guard.sources() == 0


def test_the_sources_remembered_are_bounded() -> None:
    guard = Guard(Limits(rate=10.0, burst=5, max_sources=100))
    for n in range(10_000):
        guard.check(f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", n * 0.001)
        assert guard.sources() <= 100


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        Limits(burst=0)
    with pytest.raises(ValueError):
        Limits(rate=-1)


# ---------------------------------------------------------------- in front of a user agent


def test_a_burst_of_2000_options_leaves_the_transactions_under_the_burst() -> None:
    agent, guard = guarded_agent(Limits(rate=20.0, burst=50, retry_after=5))
    answers: list[int] = []
    for n in range(2000):
        agent.receive(request("OPTIONS", FLOODER, n), FLOODER, 0.001 * n)  # 2000 in 2 s
        answers += statuses(agent)
    assert agent.endpoint.server_transactions() <= 50 + 20 * 2 + 1
    assert answers.count(503) == 1, "one 503, then the flood is dropped unanswered"
    assert answers.count(200) == agent.endpoint.server_transactions()
    assert guard.dropped == 2000 - len(answers)
    # another source is not affected
    agent.receive(request("OPTIONS", CALLER, 1), CALLER, 2.0)
    assert statuses(agent) == [200]


def test_the_503_carries_retry_after_and_the_server_header() -> None:
    agent, _ = guarded_agent(Limits(rate=1.0, burst=1, retry_after=7))
    agent.receive(request("OPTIONS", FLOODER, 1), FLOODER, 0.0)
    agent.datagrams_to_send()
    agent.receive(request("OPTIONS", FLOODER, 2), FLOODER, 0.0)
    (datagram,) = agent.datagrams_to_send()
    response = parse_message(datagram.data)
    assert isinstance(response, Response) and response.status == 503
    assert response.headers.get("Retry-After") == "7" and response.headers.get("Server") == "test"
    assert datagram.peer == FLOODER
    assert agent.endpoint.server_transactions() == 1  # the refused request took no transaction


def test_requests_inside_a_call_and_acks_are_never_limited() -> None:
    agent, guard = guarded_agent(Limits(rate=1.0, burst=1))
    invite = request("INVITE", CALLER, 1, call_id="the-call")
    (incoming,) = [c for c in agent.receive(invite, CALLER, 0.0) if isinstance(c, IncomingCall)]
    agent.accept(incoming.request, setup_for("phone", 5060, 40000), CALLER, 0.0)
    statuses(agent)
    for n in range(20):  # in-dialog requests of the call, far over the rate
        agent.receive(request("INFO", CALLER, 100 + n, call_id="the-call", to_tag="x", cseq=2 + n), CALLER, 0.0)
    for n in range(20):
        agent.receive(request("ACK", CALLER, 200 + n, call_id=f"other-{n}", to_tag="x"), CALLER, 0.0)
    assert guard.refused == 0 and guard.dropped == 0
    agent.receive(request("OPTIONS", CALLER, 2), CALLER, 0.0)  # outside the call: the bucket is empty
    assert statuses(agent)[-1] == 503


def test_a_dialog_cap_refuses_new_invites_with_503() -> None:
    agent, _ = guarded_agent(Limits(rate=0, max_dialogs=2))
    codes = []
    for n in range(3):
        for command in agent.receive(request("INVITE", CALLER, n), CALLER, 0.0):
            if isinstance(command, IncomingCall):
                agent.accept(command.request, setup_for("phone", 5060, 40000 + 2 * n), CALLER, 0.0)
        codes += statuses(agent)
    assert 503 in codes and len(agent.calls) == 2
    agent.receive(request("OPTIONS", CALLER, 9), CALLER, 0.0)  # not an INVITE: still answered
    assert statuses(agent) == [200]


def test_ended_calls_lingering_for_retransmissions_do_not_count_against_the_dialog_cap() -> None:
    agent, _ = guarded_agent(Limits(rate=0, max_dialogs=2))
    for n in range(2):
        for command in agent.receive(request("INVITE", CALLER, n), CALLER, 0.0):
            if isinstance(command, IncomingCall):
                agent.accept(command.request, setup_for("phone", 5060, 40000 + 2 * n), CALLER, 0.0)
    statuses(agent)
    for call_id in list(agent.calls):
        agent.hangup(call_id, 1.0)  # BYE ...
        agent.abandon(call_id, 1.0)  # ... not waited for: they end, and stay in the table (linger) for 64*T1
    agent.datagrams_to_send()  # the BYEs
    assert agent.active_calls() == 0 and len(agent.calls) == 2
    for command in agent.receive(request("INVITE", CALLER, 5), CALLER, 2.0):
        if isinstance(command, IncomingCall):
            agent.accept(command.request, setup_for("phone", 5060, 40010), CALLER, 2.0)
    assert 503 not in statuses(agent) and len(agent.calls) == 3 and agent.active_calls() == 1


def test_the_sip_keys_set_the_phones_limits() -> None:
    text = ("[sip]\nmax_requests_per_second=2\nrequest_burst=3\nmax_transactions=4\nmax_dialogs=5\n"
            "user_agent=Acme\n")
    phone = Phone(loads(text, "test.rc"), bind="127.0.0.1", media=False)
    assert phone.guard.limits == Limits(rate=2, burst=3, max_transactions=4, max_dialogs=5)
    codes = []
    for n in range(6):
        phone.agent.receive(request("OPTIONS", Peer("udp", f"127.0.0.{10 + n // 4}", 5060), n),
                            Peer("udp", f"127.0.0.{10 + n // 4}", 5060), 0.0)
        codes += statuses(phone.agent)
    # burst 3 from the first source, then its 503; the second source meets the transaction cap
    assert codes == [200, 200, 200, 503, 200, 503]


def test_the_default_user_agent_carries_no_version() -> None:
    phone = Phone(loads("", "test.rc"), bind="127.0.0.1", media=False)
    assert phone.user_agent == "softphone"
    phone.agent.receive(request("OPTIONS", CALLER, 1), CALLER, 0.0)
    (datagram,) = phone.agent.datagrams_to_send()
    assert b"\r\nServer: softphone\r\n" in datagram.data


def test_a_saturated_phone_answers_each_new_invite_503_at_once_and_keeps_its_calls() -> None:
    agent = UserAgent(Endpoint(Timers()), user_agent="test", policy=IncomingPolicy(auto_answer=True, max_calls=5000))
    guard = Guard(Limits(rate=0))
    saturated = [False]
    guard.protect(agent.endpoint, agent.calls, "test", live=agent.active_calls, busy=lambda: saturated[0])
    for command in agent.receive(request("INVITE", CALLER, 0), CALLER, 0.0):
        if isinstance(command, IncomingCall):
            agent.accept(command.request, setup_for("phone", 5060, 40000), CALLER, 0.0)
    assert 200 in statuses(agent)
    (call_id,) = agent.calls
    saturated[0] = True
    for n in range(1, 4):  # every one answered (no quiet period: it is not this source's fault)
        agent.receive(request("INVITE", CALLER, n), CALLER, 0.1 * n)
        (datagram,) = agent.datagrams_to_send()
        response = parse_message(datagram.data)
        assert isinstance(response, Response) and response.status == 503
        assert response.headers.get("Retry-After") == "1"
    assert guard.shed == 3 and len(agent.calls) == 1
    agent.receive(request("OPTIONS", CALLER, 9), CALLER, 1.0)  # not a call: answered as usual
    assert statuses(agent) == [200]
    agent.receive(request("BYE", CALLER, 0, call_id=call_id, to_tag=agent.calls[call_id].call.dialog.local_tag,
                          cseq=2), CALLER, 1.0)  # the call in progress is not refused
    assert 200 in statuses(agent)


def test_a_saturated_phone_sheds_the_source_that_calls_a_lot_not_one_calling_at_a_trickle() -> None:
    agent = UserAgent(Endpoint(Timers()), user_agent="test", policy=IncomingPolicy(auto_answer=True, max_calls=5000))
    guard = Guard(Limits(rate=20, burst=50))
    guard.protect(agent.endpoint, agent.calls, "test", live=agent.active_calls, busy=lambda: True)
    for n in range(30):  # a busy source: more than half its burst used at once
        agent.receive(request("OPTIONS", FLOODER, n), FLOODER, 0.0)
    agent.datagrams_to_send()
    agent.receive(request("INVITE", FLOODER, 100), FLOODER, 0.0)
    assert statuses(agent) == [503] and guard.shed == 1
    for command in agent.receive(request("INVITE", CALLER, 0), CALLER, 0.0):  # a quiet one
        if isinstance(command, IncomingCall):
            agent.accept(command.request, setup_for("phone", 5060, 40000), CALLER, 0.0)
    assert 503 not in statuses(agent) and guard.shed == 1 and len(agent.calls) == 1
