"""The RFC 3261 §17 transaction machines (with RFC 6026), driven by an injected clock."""

from __future__ import annotations

import pytest

from softphone.errors import StateError
from softphone.sip.message import Request, Response, parse_message
from softphone.sip.timers import StateMachine, TimerSet
from softphone.sip.transaction import (
    AnswerRetransmission,
    ClientInviteTransaction,
    ClientNonInviteTransaction,
    Deliver,
    Output,
    Send,
    ServerInviteTransaction,
    ServerNonInviteTransaction,
    Terminated,
    TimedOut,
    Timers,
    TransportFailure,
    build_ack,
    client_key,
    server_key,
    trying_response,
)

T = Timers()
START = 100.0  # an arbitrary epoch: every time below is relative to it


# ---------------------------------------------------------------- helpers


def request(
    method: str = "INVITE",
    *,
    branch: str = "z9hG4bKinv1",
    sent_by: str = "10.0.0.1:5060",
    cseq: int = 1,
    cseq_method: str | None = None,
    to: str = "<sip:bob@example.com>",
    extra: str = "",
) -> Request:
    text = (
        f"{method} sip:bob@example.com SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {sent_by};branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        f"To: {to}\r\n"
        "From: \"Alice\" <sip:alice@example.com>;tag=a1\r\n"
        "Call-ID: call-1@10.0.0.1\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        f"{extra}"
        "Content-Length: 0\r\n\r\n"
    )
    message = parse_message(text.encode())
    assert isinstance(message, Request)
    return message


def response(req: Request, status: int, reason: str = "Reason", to_tag: str | None = "b1") -> Response:
    to = req.headers.get("To") or ""
    if to_tag is not None and status > 100:
        to += f";tag={to_tag}"
    lines = [f"SIP/2.0 {status} {reason}"]
    lines += [f"Via: {via}" for via in req.headers.get_all("Via")]
    lines += [f"To: {to}", f"From: {req.headers.get('From')}", f"Call-ID: {req.call_id}"]
    lines += [f"CSeq: {req.headers.get('CSeq')}", "Content-Length: 0", "", ""]
    message = parse_message("\r\n".join(lines).encode())
    assert isinstance(message, Response)
    return message


def sent(outputs: list[Output]) -> list[bytes]:
    return [o.data for o in outputs if isinstance(o, Send)]


def delivered(outputs: list[Output]) -> list[Request | Response]:
    return [o.message for o in outputs if isinstance(o, Deliver)]


def run_timers(machine: StateMachine, until: float) -> list[tuple[float, Output]]:
    """Call handle_timer at each deadline up to ``until``; outputs relative to START."""
    log: list[tuple[float, Output]] = []
    while (deadline := machine.next_deadline()) is not None and deadline <= until:
        for output in machine.handle_timer(deadline):
            log.append((round(deadline - START, 6), output))
    return log


def send_times(log: list[tuple[float, Output]]) -> list[float]:
    return [t for t, o in log if isinstance(o, Send)]


INVITE = request()
RINGING = response(INVITE, 180, "Ringing")
OK = response(INVITE, 200, "OK")
BUSY = response(INVITE, 486, "Busy Here")


def client_invite(reliable: bool = False, req: Request = INVITE) -> ClientInviteTransaction:
    tx = ClientInviteTransaction(req, reliable=reliable, timers=T, now=START)
    assert tx.start(START) == [Send(bytes(req))]
    return tx


# ---------------------------------------------------------------- Timers


def test_timer_defaults_follow_rfc3261_table_4() -> None:
    assert (T.t1, T.t2, T.t4) == (0.5, 4.0, 5.0)
    assert T.timer_b == T.timer_f == T.timer_h == T.timer_l == T.timer_m == 32.0
    assert (T.timer_d(False), T.timer_d(True)) == (32.0, 0.0)
    assert (T.timer_i(False), T.timer_i(True)) == (5.0, 0.0)
    assert (T.timer_j(False), T.timer_j(True)) == (32.0, 0.0)
    assert (T.timer_k(False), T.timer_k(True)) == (5.0, 0.0)
    assert [T.backoff(x) for x in (0.5, 1.0, 2.0, 4.0)] == [1.0, 2.0, 4.0, 4.0]


def test_timers_scale_with_t1_and_reject_nonsense() -> None:
    assert Timers(t1=1.0, t2=8.0).timer_b == 64.0
    with pytest.raises(ValueError):
        Timers(t1=5.0, t2=4.0)
    with pytest.raises(ValueError):
        Timers(t1=0.0)


def test_timer_set_fires_earliest_first_and_ties_in_arming_order() -> None:
    timers = TimerSet()
    timers.arm("late", 0.0, 2.0)
    timers.arm("b", 0.0, 1.0)
    timers.arm("a", 0.0, 1.0)
    assert timers.next_deadline() == 1.0
    assert timers.pop_due(0.5) is None
    assert [timers.pop_due(5.0), timers.pop_due(5.0)] == ["b", "a"]
    assert timers.next_deadline() == 2.0  # the one left
    assert timers.pop_due(5.0) == "late"
    assert timers.pop_due(5.0) is None and timers.next_deadline() is None


# ---------------------------------------------------------------- client INVITE


def test_client_invite_timer_a_doubles_without_cap_until_timer_b() -> None:
    tx = client_invite()
    assert tx.state == "calling"
    log = run_timers(tx, START + 100)
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert all(o.data == bytes(INVITE) for _, o in log if isinstance(o, Send))
    assert [(t, o) for t, o in log if not isinstance(o, Send)] == [
        (32.0, TimedOut("B")),
        (32.0, Terminated()),
    ]
    assert tx.state == "terminated" and tx.next_deadline() is None


def test_client_invite_reliable_never_retransmits_and_times_out_with_b() -> None:
    tx = client_invite(reliable=True)
    assert tx.next_deadline() == START + 32
    assert run_timers(tx, START + 100) == [(32.0, TimedOut("B")), (32.0, Terminated())]


def test_client_invite_timer_b_sends_no_ack() -> None:
    tx = client_invite(reliable=True)
    outputs = tx.handle_timer(START + 32)
    assert sent(outputs) == []


def test_client_invite_provisional_stops_retransmissions_and_timer_b() -> None:
    tx = client_invite()
    assert tx.receive(RINGING, START + 0.2) == [Deliver(RINGING)]
    assert tx.state == "proceeding" and tx.next_deadline() is None
    assert tx.receive(RINGING, START + 0.3) == [Deliver(RINGING)]
    assert tx.state == "proceeding"


@pytest.mark.parametrize("first", [None, RINGING])
def test_client_invite_2xx_enters_accepted_and_delivers_retransmissions(first: Response | None) -> None:
    tx = client_invite()
    if first is not None:
        tx.receive(first, START + 0.1)
    assert tx.receive(OK, START + 1) == [Deliver(OK)]  # no ACK: the TU sends it
    assert tx.state == "accepted"
    assert tx.next_deadline() == START + 1 + 32  # Timer M
    assert tx.receive(OK, START + 2) == [Deliver(OK)]
    assert tx.receive(RINGING, START + 2) == []
    assert tx.receive(BUSY, START + 2) == []
    assert run_timers(tx, START + 100) == [(33.0, Terminated())]


@pytest.mark.parametrize("first", [None, RINGING])
def test_client_invite_failure_sends_ack_then_delivers(first: Response | None) -> None:
    tx = client_invite()
    if first is not None:
        tx.receive(first, START + 0.1)
    outputs = tx.receive(BUSY, START + 1)
    assert tx.ack is not None
    assert outputs == [Send(bytes(tx.ack)), Deliver(BUSY)]
    assert tx.state == "completed"
    assert tx.next_deadline() == START + 1 + 32  # Timer D, unreliable


def test_client_invite_completed_resends_ack_for_retransmitted_final_only() -> None:
    tx = client_invite()
    tx.receive(BUSY, START + 1)
    assert tx.ack is not None
    assert tx.receive(BUSY, START + 2) == [Send(bytes(tx.ack))]
    assert tx.receive(RINGING, START + 2) == []
    assert tx.receive(OK, START + 2) == []
    assert tx.state == "completed"
    assert run_timers(tx, START + 100) == [(33.0, Terminated())]


def test_client_invite_timer_d_is_zero_on_reliable_transports() -> None:
    tx = client_invite(reliable=True)
    outputs = tx.receive(BUSY, START + 1)
    assert tx.ack is not None
    assert outputs == [Send(bytes(tx.ack)), Deliver(BUSY), Terminated()]
    assert tx.state == "terminated" and tx.next_deadline() is None


def test_ack_for_failure_follows_rfc3261_17_1_1_3() -> None:
    routes = "Route: <sip:p1.example.com;lr>\r\nRoute: <sip:p2.example.com;lr>\r\n"
    extra = "Via: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKlower\r\n" + routes + "Contact: <sip:a@10.0.0.1>\r\n"
    invite = request(extra=extra, cseq=7)
    busy = response(invite, 486, "Busy Here", to_tag="remote-tag")
    tx = client_invite(req=invite)
    ack_bytes = sent(tx.receive(busy, START + 1))[0]
    ack = parse_message(ack_bytes)
    assert isinstance(ack, Request)
    assert ack.method == "ACK"
    assert ack.uri == invite.uri
    assert ack.call_id == invite.call_id
    assert ack.headers.get("From") == invite.headers.get("From")
    assert ack.cseq.number == 7 and ack.cseq.method == "ACK"
    assert ack.headers.get("To") == busy.headers.get("To")
    assert ack.to_addr.tag == "remote-tag"
    assert ack.headers.get_all("Via") == [invite.headers.get_all("Via")[0]]
    assert ack.top_via.branch == invite.top_via.branch
    assert ack.headers.get_all("Route") == ["<sip:p1.example.com;lr>", "<sip:p2.example.com;lr>"]
    assert ack.max_forwards == 70
    assert ack.headers.get("Content-Length") == "0" and ack.body == b""
    assert build_ack(invite, busy) == ack


def test_client_invite_transport_errors() -> None:
    tx = client_invite()
    assert tx.transport_error(START + 0.1) == [TransportFailure(), Terminated()]
    assert tx.next_deadline() is None
    tx = client_invite()
    tx.receive(BUSY, START + 1)
    assert tx.transport_error(START + 1) == [TransportFailure(), Terminated()]
    tx = client_invite()
    tx.receive(RINGING, START + 1)
    with pytest.raises(StateError):
        tx.transport_error(START + 2)


def test_client_invite_illegal_inputs_raise_state_error_naming_both() -> None:
    tx = ClientInviteTransaction(INVITE, reliable=False, timers=T, now=START)
    with pytest.raises(StateError) as info:
        tx.receive(RINGING, START)
    assert (info.value.machine, info.value.state, info.value.event) == ("ClientInviteTransaction", "init", "1xx")
    tx.start(START)
    with pytest.raises(StateError) as info:
        tx.start(START)
    assert (info.value.state, info.value.event) == ("calling", "start")
    tx.handle_timer(START + 32)
    with pytest.raises(StateError) as info:
        tx.receive(OK, START + 33)
    assert (info.value.state, info.value.event) == ("terminated", "2xx")


def test_client_rejects_impossible_status() -> None:
    tx = client_invite()
    bogus = Response(99, "Odd", OK.headers)
    with pytest.raises(ValueError):
        tx.receive(bogus, START)
    assert tx.state == "calling"


def test_handle_timer_before_any_deadline_does_nothing() -> None:
    tx = client_invite()
    assert tx.handle_timer(START + 0.49) == []
    assert tx.next_deadline() == START + 0.5


# ---------------------------------------------------------------- client non-INVITE

OPTIONS = request("OPTIONS", branch="z9hG4bKopt1")
OPTIONS_TRYING = response(OPTIONS, 100, "Trying")
OPTIONS_OK = response(OPTIONS, 200, "OK")
OPTIONS_FAIL = response(OPTIONS, 404, "Not Found")


def client_non_invite(reliable: bool = False, timers: Timers = T) -> ClientNonInviteTransaction:
    tx = ClientNonInviteTransaction(OPTIONS, reliable=reliable, timers=timers, now=START)
    assert tx.start(START) == [Send(bytes(OPTIONS))]
    assert tx.state == "trying"
    return tx


def test_client_non_invite_timer_e_doubles_capped_at_t2_until_timer_f() -> None:
    tx = client_non_invite()
    log = run_timers(tx, START + 100)
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert [(t, o) for t, o in log if not isinstance(o, Send)] == [
        (32.0, TimedOut("F")),
        (32.0, Terminated()),
    ]


def test_client_non_invite_timer_e_cap_follows_configured_t2() -> None:
    tx = client_non_invite(timers=Timers(t1=1.0, t2=2.0))
    assert send_times(run_timers(tx, START + 10)) == [1.0, 3.0, 5.0, 7.0, 9.0]


def test_client_non_invite_timer_e_fires_every_t2_in_proceeding() -> None:
    tx = client_non_invite()
    assert tx.receive(OPTIONS_TRYING, START + 0.2) == [Deliver(OPTIONS_TRYING)]
    assert tx.state == "proceeding"
    assert tx.receive(OPTIONS_TRYING, START + 0.3) == [Deliver(OPTIONS_TRYING)]
    log = run_timers(tx, START + 100)
    assert send_times(log) == [0.5, 4.5, 8.5, 12.5, 16.5, 20.5, 24.5, 28.5]
    assert log[-2:] == [(32.0, TimedOut("F")), (32.0, Terminated())]


def test_client_non_invite_reliable_has_no_timer_e() -> None:
    tx = client_non_invite(reliable=True)
    assert run_timers(tx, START + 100) == [(32.0, TimedOut("F")), (32.0, Terminated())]


@pytest.mark.parametrize("final", [OPTIONS_OK, OPTIONS_FAIL])
@pytest.mark.parametrize("provisional", [False, True])
def test_client_non_invite_final_enters_completed_for_timer_k(final: Response, provisional: bool) -> None:
    tx = client_non_invite()
    if provisional:
        tx.receive(OPTIONS_TRYING, START + 0.1)
    assert tx.receive(final, START + 1) == [Deliver(final)]
    assert tx.state == "completed"
    assert tx.receive(final, START + 2) == []
    assert tx.receive(OPTIONS_TRYING, START + 2) == []
    assert tx.receive(OPTIONS_FAIL, START + 2) == []
    assert run_timers(tx, START + 100) == [(6.0, Terminated())]  # Timer K = T4


def test_client_non_invite_timer_k_is_zero_on_reliable_transports() -> None:
    tx = client_non_invite(reliable=True)
    assert tx.receive(OPTIONS_OK, START + 1) == [Deliver(OPTIONS_OK), Terminated()]
    assert tx.state == "terminated"


def test_client_non_invite_transport_errors_and_illegal_inputs() -> None:
    tx = client_non_invite()
    assert tx.transport_error(START) == [TransportFailure(), Terminated()]
    tx = client_non_invite()
    tx.receive(OPTIONS_TRYING, START)
    assert tx.transport_error(START) == [TransportFailure(), Terminated()]
    with pytest.raises(StateError) as info:
        tx.receive(OPTIONS_OK, START)
    assert info.value.machine == "ClientNonInviteTransaction"
    tx = client_non_invite()
    tx.receive(OPTIONS_OK, START)
    with pytest.raises(StateError):
        tx.transport_error(START)


# ---------------------------------------------------------------- server INVITE


def server_invite(reliable: bool = False, auto_trying: bool = True) -> ServerInviteTransaction:
    return ServerInviteTransaction(INVITE, reliable=reliable, timers=T, now=START, auto_trying=auto_trying)


def test_server_invite_start_sends_100_trying_and_delivers() -> None:
    tx = server_invite()
    outputs = tx.start(START)
    assert outputs == [Send(bytes(trying_response(INVITE))), Deliver(INVITE)]
    assert tx.state == "proceeding" and tx.next_deadline() is None
    trying = parse_message(sent(outputs)[0])
    assert isinstance(trying, Response) and trying.status == 100
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        assert trying.headers.get_all(name) == INVITE.headers.get_all(name)


def test_100_trying_copies_every_via_and_the_timestamp() -> None:
    invite = request(extra="Via: SIP/2.0/UDP 10.9.9.9;branch=z9hG4bKx\r\nTimestamp: 54.3\r\n")
    trying = trying_response(invite)
    assert trying.headers.get_all("Via") == invite.headers.get_all("Via")
    assert len(trying.headers.get_all("Via")) == 2
    assert trying.headers.get("Timestamp") == "54.3"


def test_server_invite_without_auto_trying_only_delivers() -> None:
    tx = server_invite(auto_trying=False)
    assert tx.start(START) == [Deliver(INVITE)]
    assert tx.receive(INVITE, START + 0.5) == []  # nothing to repeat yet


def test_server_invite_retransmission_in_proceeding_repeats_latest_provisional() -> None:
    tx = server_invite()
    tx.start(START)
    assert tx.receive(INVITE, START + 0.5) == [Send(bytes(trying_response(INVITE)))]
    ringing = response(INVITE, 180, "Ringing")
    assert tx.respond(ringing, START + 1) == [Send(bytes(ringing))]
    assert tx.state == "proceeding"
    assert tx.receive(INVITE, START + 1.5) == [Send(bytes(ringing))]
    assert tx.receive(request("ACK"), START + 1.5) == []


def test_server_invite_failure_timer_g_capped_at_t2_then_timer_h() -> None:
    tx = server_invite()
    tx.start(START)
    assert tx.respond(BUSY, START) == [Send(bytes(BUSY))]
    assert tx.state == "completed"
    log = run_timers(tx, START + 100)
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert all(o.data == bytes(BUSY) for _, o in log if isinstance(o, Send))
    assert log[-2:] == [(32.0, TimedOut("H")), (32.0, Terminated())]
    assert tx.state == "terminated"


def test_server_invite_reliable_has_no_timer_g() -> None:
    tx = server_invite(reliable=True)
    tx.start(START)
    tx.respond(BUSY, START)
    assert run_timers(tx, START + 100) == [(32.0, TimedOut("H")), (32.0, Terminated())]


def test_server_invite_completed_repeats_final_on_retransmitted_invite() -> None:
    tx = server_invite()
    tx.start(START)
    tx.respond(BUSY, START)
    assert tx.receive(INVITE, START + 0.2) == [Send(bytes(BUSY))]
    assert tx.state == "completed"


def test_server_invite_ack_confirms_and_timer_i_terminates() -> None:
    tx = server_invite()
    tx.start(START)
    tx.respond(BUSY, START)
    ack = build_ack(INVITE, BUSY)
    assert tx.receive(ack, START + 1) == []
    assert tx.state == "confirmed"
    assert tx.next_deadline() == START + 1 + 5  # Timer I = T4; G and H are gone
    assert tx.receive(ack, START + 2) == []
    assert tx.receive(INVITE, START + 2) == []
    assert run_timers(tx, START + 100) == [(6.0, Terminated())]


def test_server_invite_timer_i_is_zero_on_reliable_transports() -> None:
    tx = server_invite(reliable=True)
    tx.start(START)
    tx.respond(BUSY, START)
    assert tx.receive(build_ack(INVITE, BUSY), START + 1) == [Terminated()]


def test_server_invite_2xx_enters_accepted_and_never_retransmits_it() -> None:
    tx = server_invite()
    tx.start(START)
    assert tx.respond(OK, START + 1) == [Send(bytes(OK))]
    assert tx.state == "accepted"
    assert tx.receive(INVITE, START + 2) == []  # absorbed, not passed up
    assert tx.respond(OK, START + 2) == [Send(bytes(OK))]  # the TU's retransmission
    ack = request("ACK", to=OK.headers.get("To") or "")
    assert tx.receive(ack, START + 3) == [Deliver(ack)]
    assert run_timers(tx, START + 100) == [(33.0, Terminated())]  # Timer L, no sends


def test_server_invite_transport_errors() -> None:
    tx = server_invite()
    tx.start(START)
    assert tx.transport_error(START) == [TransportFailure()]
    assert tx.state == "proceeding"
    tx.respond(OK, START)
    assert tx.transport_error(START) == [TransportFailure()]
    assert tx.state == "accepted"
    tx = server_invite()
    tx.start(START)
    tx.respond(BUSY, START)
    assert tx.transport_error(START) == [TransportFailure(), Terminated()]


@pytest.mark.parametrize("final", [OK, BUSY])
def test_server_invite_respond_after_final_raises(final: Response) -> None:
    tx = server_invite()
    tx.start(START)
    tx.respond(final, START)
    with pytest.raises(StateError) as info:
        tx.respond(BUSY, START + 1)
    assert info.value.machine == "ServerInviteTransaction"
    assert info.value.event == "300-699 from TU"
    with pytest.raises(StateError):
        tx.respond(response(INVITE, 180, "Ringing"), START + 1)


def test_server_invite_illegal_inputs() -> None:
    tx = server_invite()
    with pytest.raises(StateError):
        tx.respond(OK, START)  # before start
    tx.start(START)
    with pytest.raises(ValueError):
        tx.receive(request("BYE"), START)
    tx.respond(BUSY, START)
    tx.receive(build_ack(INVITE, BUSY), START)
    with pytest.raises(StateError):
        tx.respond(OK, START)


# ---------------------------------------------------------------- server non-INVITE

BYE = request("BYE", branch="z9hG4bKbye1", cseq=2, to="<sip:bob@example.com>;tag=b1")
BYE_OK = response(BYE, 200, "OK")


def server_non_invite(reliable: bool = False) -> ServerNonInviteTransaction:
    tx = ServerNonInviteTransaction(BYE, reliable=reliable, timers=T, now=START)
    assert tx.start(START) == [Deliver(BYE)]
    assert tx.state == "trying"
    return tx


def test_server_non_invite_trying_discards_retransmissions() -> None:
    tx = server_non_invite()
    assert tx.receive(BYE, START + 0.5) == []
    assert tx.state == "trying" and tx.next_deadline() is None


def test_server_non_invite_proceeding_repeats_latest_provisional() -> None:
    tx = server_non_invite()
    trying = response(BYE, 100, "Trying")
    assert tx.respond(trying, START) == [Send(bytes(trying))]
    assert tx.state == "proceeding"
    assert tx.receive(BYE, START + 0.5) == [Send(bytes(trying))]
    assert tx.respond(trying, START + 1) == [Send(bytes(trying))]
    assert tx.respond(BYE_OK, START + 1) == [Send(bytes(BYE_OK))]
    assert tx.state == "completed"


@pytest.mark.parametrize("final", [BYE_OK, response(BYE, 481, "Call/Transaction Does Not Exist")])
def test_server_non_invite_completed_repeats_final_until_timer_j(final: Response) -> None:
    tx = server_non_invite()
    assert tx.respond(final, START) == [Send(bytes(final))]
    assert tx.state == "completed"
    assert tx.next_deadline() == START + 32  # Timer J = 64*T1
    assert tx.receive(BYE, START + 1) == [Send(bytes(final))]
    assert run_timers(tx, START + 100) == [(32.0, Terminated())]


def test_server_non_invite_timer_j_is_zero_on_reliable_transports() -> None:
    tx = server_non_invite(reliable=True)
    assert tx.respond(BYE_OK, START) == [Send(bytes(BYE_OK)), Terminated()]


def test_server_non_invite_discards_a_second_final_by_raising() -> None:
    tx = server_non_invite()
    tx.respond(BYE_OK, START)
    with pytest.raises(StateError) as info:
        tx.respond(BYE_OK, START + 1)
    assert (info.value.state, info.value.event) == ("completed", "2xx from TU")


def test_server_non_invite_transport_errors_and_illegal_inputs() -> None:
    tx = server_non_invite()
    with pytest.raises(StateError):
        tx.transport_error(START)  # nothing was sent yet
    with pytest.raises(StateError):
        tx.receive(request("ACK", branch="z9hG4bKbye1"), START)
    tx.respond(response(BYE, 100, "Trying"), START)
    assert tx.transport_error(START) == [TransportFailure(), Terminated()]
    tx = server_non_invite()
    tx.respond(BYE_OK, START)
    assert tx.transport_error(START) == [TransportFailure(), Terminated()]


# ---------------------------------------------------------------- keys


def test_client_key_matches_response_to_request_by_branch_and_cseq_method() -> None:
    assert client_key(INVITE) == client_key(BUSY) == client_key(OK)
    cancel = request("CANCEL")  # same branch, as RFC 3261 §9.1 requires
    assert client_key(response(cancel, 200, "OK")) != client_key(INVITE)
    assert client_key(response(request(branch="z9hG4bKother"), 200)) != client_key(INVITE)


def test_server_key_ack_for_failure_matches_the_invite_but_cancel_does_not() -> None:
    key = server_key(INVITE)
    assert server_key(request()) == key  # a retransmission
    assert server_key(build_ack(INVITE, BUSY)) == key
    assert server_key(request("CANCEL")) != key
    assert server_key(request("CANCEL")) == server_key(request("CANCEL"))


@pytest.mark.parametrize(
    "other",
    [
        request(sent_by="10.0.0.2:5060"),
        request(sent_by="10.0.0.1:5070"),
        request(sent_by="10.0.0.1"),
        request(branch="z9hG4bKinv2"),
        request("ACK", branch="z9hG4bKinv2"),
    ],
)
def test_server_key_differs_on_sent_by_or_branch(other: Request) -> None:
    assert server_key(other) != server_key(INVITE)


def test_server_key_sent_by_host_is_case_insensitive() -> None:
    lower = request(sent_by="host.example.com:5060")
    assert server_key(request(sent_by="HOST.example.COM:5060")) == server_key(lower)


def test_server_key_rfc2543_fallback_without_magic_cookie() -> None:
    old = request(branch="1234")
    key = server_key(old)
    assert key[0] == "rfc2543"
    assert server_key(request(branch="1234")) == key
    assert server_key(build_ack(old, response(old, 486, "Busy Here"))) == key
    assert server_key(request("CANCEL", branch="1234")) != key
    assert server_key(request(branch="1234", cseq=2)) != key
    assert server_key(request(branch="1234", sent_by="10.0.0.9:5060")) != key


# ---------------------------------------------------------------- 2xx retransmission


def test_answer_retransmission_doubles_to_t2_then_gives_up_at_64_t1() -> None:
    data = bytes(OK)
    answer = AnswerRetransmission(data, reliable=False, timers=T, now=START)
    log = run_timers(answer, START + 100)
    assert send_times(log) == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert all(o == Send(data) for _, o in log if isinstance(o, Send))
    assert log[-2:] == [(32.0, TimedOut("2xx-ACK")), (32.0, Terminated())]
    assert answer.next_deadline() is None


def test_answer_retransmission_stops_on_ack() -> None:
    answer = AnswerRetransmission(bytes(OK), timers=T, now=START)
    run_timers(answer, START + 2)
    assert answer.ack_received() == [Terminated()]
    assert answer.state == "terminated" and answer.next_deadline() is None
    assert answer.ack_received() == []  # a repeated ACK
    assert answer.handle_timer(START + 100) == []


# ---------------------------------------------------------------- the tables themselves


@pytest.mark.parametrize(
    "machine",
    [
        ClientInviteTransaction,
        ClientNonInviteTransaction,
        ServerInviteTransaction,
        ServerNonInviteTransaction,
        AnswerRetransmission,
    ],
)
def test_every_table_state_is_reachable_and_terminated_is_final(machine: type[StateMachine]) -> None:
    sources = {state for state, _ in machine.TABLE}
    targets = {target for target, _ in machine.TABLE.values()}
    assert "terminated" in targets
    assert set(machine.STATE_TIMERS) <= sources | targets
    assert {s for s, e in machine.TABLE if s == "terminated" and e != "ACK"} == set()
    for (state, event), (_, actions) in machine.TABLE.items():
        assert all(callable(a) for a in actions), (state, event)
        if event.startswith("Timer "):
            assert event.removeprefix("Timer ") in machine.STATE_TIMERS.get(state, ())
