"""The four RFC 3261 §17 transaction state machines, with RFC 6026's Accepted state.

Pure and time-injected: every input carries ``now`` (seconds, any epoch), and every
method returns the outputs it causes, in order. Timers are deadlines: the owner asks
``next_deadline()`` and calls ``handle_timer(now)`` when it is due. Timers that the RFC
sets to zero for reliable transports (D, I, J, K) fire inside the call that armed them.

Each machine is a table keyed by (state, input) whose value is the next state and the
actions to run; an input missing from the table raises ``StateError`` naming both.
Input names follow the RFC figures: "1xx", "2xx", "300-699" (responses received),
"1xx from TU", "2xx from TU", "300-699 from TU" (responses sent), "INVITE", "ACK",
"request" (requests received), "Timer A" ... "Timer M", "Transport Err" and "start".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from softphone.sip.headers import CSeq
from softphone.sip.message import Headers, Request, Response
from softphone.sip.timers import (
    ABSORB,
    AnswerRetransmission,
    Deliver,
    Output,
    Send,
    StateMachine,
    Table,
    Terminated,
    TimedOut,
    Timers,
    TransportFailure,
    inform_tu,
    pass_up,
    timed_out,
)

__all__ = [
    "MAGIC_COOKIE", "AnswerRetransmission", "ClientInviteTransaction",
    "ClientNonInviteTransaction", "Deliver", "Output", "Send",
    "ServerInviteTransaction", "ServerNonInviteTransaction", "Terminated", "TimedOut",
    "Timers", "TransactionKey", "TransportFailure", "build_ack", "client_key",
    "server_key", "trying_response",
]

MAGIC_COOKIE = "z9hG4bK"


TransactionKey = tuple[str, ...]


# ---------------------------------------------------------------- matching keys


def client_key(message: Request | Response) -> TransactionKey:
    """RFC 3261 §17.1.3: the branch of the top Via and the CSeq method; equal for a
    request and the responses to it."""
    return ("client", message.top_via.branch or "", message.cseq.method)


def server_key(request: Request) -> TransactionKey:
    """RFC 3261 §17.2.3: the server transaction a request belongs to.

    With a branch starting with the magic cookie: branch, sent-by of the top Via and
    method, where an ACK takes the method INVITE (the ACK to a non-2xx belongs to the
    INVITE transaction) and a CANCEL keeps its own. Without it (RFC 2543 peers) the key
    is Call-ID, From tag, CSeq number, method (ACK as INVITE), the top Via's sent-by
    and branch, and the Request-URI. That is §17.2.3's list without the To tag, which
    an ACK carries and the INVITE did not.
    """
    method = "INVITE" if request.method == "ACK" else request.method
    via = request.top_via
    branch = via.branch or ""
    host, port = via.sent_by
    sent_by = (host.lower(), "" if port is None else str(port))
    if branch.startswith(MAGIC_COOKIE):
        return ("server", branch, *sent_by, method)
    tag = request.from_addr.tag or ""
    number = str(request.cseq.number)
    return ("rfc2543", request.call_id, tag, number, method, *sent_by, branch, str(request.uri))


# ---------------------------------------------------------------- messages built here


def build_ack(request: Request, response: Response) -> Request:
    """RFC 3261 §17.1.1.3: the ACK a client INVITE transaction sends for a 3xx-6xx."""
    # "The ACK request constructed by the client transaction MUST contain values for
    # the Call-ID, From, and Request-URI that are equal to the values of those header
    # fields in the request passed to the transport by the client transaction"
    # "The To header field in the ACK MUST equal the To header field in the response
    # being acknowledged"
    # "The ACK MUST contain a single Via header field, and this MUST be equal to the
    # top Via header field of the original request."
    # "The CSeq header field in the ACK MUST contain the same value for the sequence
    # number as was present in the original request, but the method parameter MUST be
    # equal to "ACK"."
    pairs = [
        ("Via", request.headers.get_all("Via")[0]),
        ("Max-Forwards", "70"),
        ("From", _header(request, "From")),
        ("To", _header(response, "To")),
        ("Call-ID", request.call_id),
        ("CSeq", str(CSeq(request.cseq.number, "ACK"))),
    ]
    # "If the INVITE request whose response is being acknowledged had Route header
    # fields, those header fields MUST appear in the ACK."
    pairs += [("Route", route) for route in request.headers.get_all("Route")]
    pairs.append(("Content-Length", "0"))
    return Request("ACK", request.uri, Headers.of(*pairs))


def trying_response(request: Request) -> Response:
    """RFC 3261 §8.2.6: a 100 (Trying) to ``request``, To left without a tag."""
    pairs = [("Via", via) for via in request.headers.get_all("Via")]
    pairs += [(name, _header(request, name)) for name in ("From", "To", "Call-ID", "CSeq")]
    # "When a 100 (Trying) response is generated, any Timestamp header field present
    # in the request MUST be copied into this 100 (Trying) response."
    timestamp = request.headers.get("Timestamp")
    if timestamp is not None:
        pairs.append(("Timestamp", timestamp))
    pairs.append(("Content-Length", "0"))
    return Response(100, "Trying", Headers(tuple(pairs)))  # the names above are canonical


def _header(message: Request | Response, name: str) -> str:
    value = message.headers.get(name)
    if value is None:
        raise ValueError(f"{name} header missing")
    return value


def _response_input(status: int, suffix: str = "") -> str:
    if 100 <= status < 200:
        return "1xx" + suffix
    if 200 <= status < 300:
        return "2xx" + suffix
    if 300 <= status < 700:
        return "300-699" + suffix
    raise ValueError(f"status {status} is not a SIP response status")


class _Transaction(StateMachine):
    def __init__(self, request: Request, *, reliable: bool, timers: Timers, now: float) -> None:
        super().__init__(timers, "init")
        self.request = request
        self.reliable = reliable
        self.created = now

    def transport_error(self, now: float) -> list[Output]:
        """The transport failed to send for this transaction."""
        return self._input("Transport Err", None, now)


# ---------------------------------------------------------------- client side


class _ClientTransaction(_Transaction):
    @property
    def key(self) -> TransactionKey:
        return client_key(self.request)

    def start(self, now: float) -> list[Output]:
        """Send the request and start the timers."""
        return self._input("start", None, now)

    def receive(self, response: Response, now: float) -> list[Output]:
        """A response matched this transaction (see ``client_key``)."""
        return self._input(_response_input(response.status), response, now)

    def _retransmit(self, interval: float, timer: str, now: float) -> list[Output]:
        self._arm(timer, now, interval)
        return [Send(bytes(self.request))]


class ClientInviteTransaction(_ClientTransaction):
    """RFC 3261 §17.1.1 (Figure 5) with RFC 6026 §7.2 (Accepted, Timer M)."""

    MACHINE = "ClientInviteTransaction"
    STATE_TIMERS: ClassVar[Mapping[str, frozenset[str]]] = {
        "calling": frozenset({"A", "B"}),
        "completed": frozenset({"D"}),
        "accepted": frozenset({"M"}),
    }

    def __init__(self, request: Request, *, reliable: bool, timers: Timers, now: float) -> None:
        super().__init__(request, reliable=reliable, timers=timers, now=now)
        self.ack: Request | None = None

    def _send_request(self, message: None, now: float) -> list[Output]:
        # "If an unreliable transport is being used, the client transaction MUST start
        # timer A with a value of T1."
        if not self.reliable:
            self._arm("A", now, self.timers.timer_a)
        # "For any transport, the client transaction MUST start timer B with a value
        # of 64*T1 seconds"
        self._arm("B", now, self.timers.timer_b)
        return [Send(bytes(self.request))]

    def _timer_a(self, message: None, now: float) -> list[Output]:
        # "When timer A fires, the client transaction MUST retransmit the request by
        # passing it to the transport layer, and MUST reset the timer with a value of
        # 2*T1." (and so on: the intervals double, with no cap)
        return self._retransmit(2 * self._interval("A"), "A", now)

    def _send_ack(self, response: Response, now: float) -> list[Output]:
        # "the client transaction MUST generate an ACK request, even if the transport
        # is reliable"
        self.ack = build_ack(self.request, response)
        # Timer D: "at least 32 seconds for unreliable transports, and a value of zero
        # seconds for reliable transports"
        self._arm("D", now, self.timers.timer_d(self.reliable))
        return [Send(bytes(self.ack))]

    def _resend_ack(self, response: Response, now: float) -> list[Output]:
        # "Any retransmissions of the final response that are received while in the
        # "Completed" state MUST cause the ACK to be re-passed to the transport layer
        # for retransmission, but the newly received response MUST NOT be passed up
        # to the TU."
        assert self.ack is not None
        return [Send(bytes(self.ack))]

    def _arm_m(self, response: Response, now: float) -> list[Output]:
        # RFC 6026 §7.2: on a 2xx the machine enters "Accepted" and sets Timer M to
        # 64*T1; the TU, not the transaction, acknowledges every 2xx.
        self._arm("M", now, self.timers.timer_m)
        return []

    TABLE: ClassVar[Table] = {
        ("init", "start"): ("calling", (_send_request,)),
        ("calling", "Timer A"): ("calling", (_timer_a,)),
        # "If the client transaction is still in the "Calling" state when timer B
        # fires, the client transaction SHOULD inform the TU that a timeout has
        # occurred. The client transaction MUST NOT generate an ACK."
        ("calling", "Timer B"): ("terminated", (timed_out("B"),)),
        ("calling", "Transport Err"): ("terminated", (inform_tu,)),
        ("calling", "1xx"): ("proceeding", (pass_up,)),
        ("calling", "2xx"): ("accepted", (pass_up, _arm_m)),
        # "reception of a response with status code from 300-699 MUST cause the client
        # transaction to transition to "Completed". The client transaction MUST pass
        # the received response up to the TU"
        ("calling", "300-699"): ("completed", (_send_ack, pass_up)),
        ("proceeding", "1xx"): ("proceeding", (pass_up,)),
        ("proceeding", "2xx"): ("accepted", (pass_up, _arm_m)),
        ("proceeding", "300-699"): ("completed", (_send_ack, pass_up)),
        ("completed", "300-699"): ("completed", (_resend_ack,)),
        ("completed", "1xx"): ("completed", ABSORB),
        ("completed", "2xx"): ("completed", ABSORB),
        ("completed", "Transport Err"): ("terminated", (inform_tu,)),
        # "If timer D fires while the client transaction is in the "Completed" state,
        # the client transaction MUST move to the terminated state."
        ("completed", "Timer D"): ("terminated", ABSORB),
        # RFC 6026 §7.2: "A 2xx response received while in the "Accepted" state MUST
        # be passed to the TU and the machine remains in the "Accepted" state."
        ("accepted", "2xx"): ("accepted", (pass_up,)),
        ("accepted", "1xx"): ("accepted", ABSORB),
        ("accepted", "300-699"): ("accepted", ABSORB),
        ("accepted", "Timer M"): ("terminated", ABSORB),
    }


class ClientNonInviteTransaction(_ClientTransaction):
    """RFC 3261 §17.1.2 (Figure 6)."""

    MACHINE = "ClientNonInviteTransaction"
    STATE_TIMERS: ClassVar[Mapping[str, frozenset[str]]] = {
        "trying": frozenset({"E", "F"}),
        "proceeding": frozenset({"E", "F"}),
        "completed": frozenset({"K"}),
    }

    def _send_request(self, message: None, now: float) -> list[Output]:
        # "If an unreliable transport is in use, the client transaction MUST set timer
        # E to fire in T1 seconds."
        if not self.reliable:
            self._arm("E", now, self.timers.timer_e)
        self._arm("F", now, self.timers.timer_f)
        return [Send(bytes(self.request))]

    def _timer_e_trying(self, message: None, now: float) -> list[Output]:
        # "If timer E fires while still in this state, the timer is reset, but this
        # time with a value of MIN(2*T1, T2)." (then MIN(4*T1, T2), and so on)
        return self._retransmit(self.timers.backoff(self._interval("E")), "E", now)

    def _timer_e_proceeding(self, message: None, now: float) -> list[Output]:
        # "If Timer E fires while in the "Proceeding" state, the request MUST be passed
        # to the transport layer for retransmission, and Timer E MUST be reset with a
        # value of T2 seconds."
        return self._retransmit(self.timers.t2, "E", now)

    def _arm_k(self, response: Response, now: float) -> list[Output]:
        # "Once the client transaction enters the "Completed" state, it MUST set Timer K
        # to fire in T4 seconds for unreliable transports, and zero seconds for
        # reliable transports."
        self._arm("K", now, self.timers.timer_k(self.reliable))
        return []

    TABLE: ClassVar[Table] = {
        ("init", "start"): ("trying", (_send_request,)),
        ("trying", "Timer E"): ("trying", (_timer_e_trying,)),
        ("trying", "Timer F"): ("terminated", (timed_out("F"),)),
        ("trying", "Transport Err"): ("terminated", (inform_tu,)),
        # "If a provisional response is received while in the "Trying" state, the
        # response MUST be passed to the TU"
        ("trying", "1xx"): ("proceeding", (pass_up,)),
        ("trying", "2xx"): ("completed", (pass_up, _arm_k)),
        ("trying", "300-699"): ("completed", (pass_up, _arm_k)),
        ("proceeding", "Timer E"): ("proceeding", (_timer_e_proceeding,)),
        # "If Timer F fires while in the "Proceeding" state, the TU MUST be informed of
        # a timeout, and the client transaction MUST transition to the terminated
        # state."
        ("proceeding", "Timer F"): ("terminated", (timed_out("F"),)),
        ("proceeding", "Transport Err"): ("terminated", (inform_tu,)),
        ("proceeding", "1xx"): ("proceeding", (pass_up,)),
        # "If a final response (status codes 200-699) is received while in the
        # "Proceeding" state, the response MUST be passed to the TU, and the client
        # transaction MUST transition to the "Completed" state."
        ("proceeding", "2xx"): ("completed", (pass_up, _arm_k)),
        ("proceeding", "300-699"): ("completed", (pass_up, _arm_k)),
        ("completed", "1xx"): ("completed", ABSORB),
        ("completed", "2xx"): ("completed", ABSORB),
        ("completed", "300-699"): ("completed", ABSORB),
        ("completed", "Timer K"): ("terminated", ABSORB),
    }


# ---------------------------------------------------------------- server side


class _ServerTransaction(_Transaction):
    REQUEST_INPUT: ClassVar[str]

    def __init__(self, request: Request, *, reliable: bool, timers: Timers, now: float) -> None:
        super().__init__(request, reliable=reliable, timers=timers, now=now)
        self.last_response: bytes | None = None  # as sent, for retransmissions
        self.last_copy = now  # when the request last came, first or again

    @property
    def key(self) -> TransactionKey:
        return server_key(self.request)

    def start(self, now: float) -> list[Output]:
        """Pass the request that created the transaction up to the TU."""
        return self._input("start", self.request, now)

    def receive(self, request: Request, now: float) -> list[Output]:
        """A request matched this transaction (see ``server_key``)."""
        if request.method == "ACK":
            return self._input("ACK", request, now)
        if request.method != self.request.method:
            raise ValueError(f"{request.method} does not belong to a {self.request.method} transaction")
        self.last_copy = now
        return self._input(self.REQUEST_INPUT, request, now)

    def respond(self, response: Response, now: float) -> list[Output]:
        """The TU sends ``response`` through this transaction."""
        return self._input(_response_input(response.status, " from TU"), response, now)


def _send_response(tx: _ServerTransaction, response: Response, now: float) -> list[Output]:
    data = tx.last_response = bytes(response)
    if response.status >= 200:
        # from now on the transaction repeats this answer and absorbs retransmissions, for up to
        # 64*T1 (Timers J and L): of the request it keeps what names it (a phone under load holds
        # thousands of finished transactions)
        tx.request = tx.request.identity()
    return [Send(data)]


def _send_2xx(tx: _ServerTransaction, response: Response, now: float) -> list[Output]:
    """A 2xx to an INVITE: the TU retransmits it (RFC 3261 §13.3.1.4), the transaction only
    absorbs INVITE retransmissions while Accepted: it keeps no copy."""
    out = _send_response(tx, response, now)
    tx.last_response = None
    return out


def _resend_response(tx: _ServerTransaction, message: object, now: float) -> list[Output]:
    return [] if tx.last_response is None else [Send(tx.last_response)]


class ServerInviteTransaction(_ServerTransaction):
    """RFC 3261 §17.2.1 (Figure 7) with RFC 6026 §7.1 (Accepted, Timer L).

    The transaction never retransmits a 2xx: that is the TU's job (RFC 3261 §13.3.1.4,
    see ``AnswerRetransmission``); each 2xx the TU passes in Accepted is sent.
    """

    MACHINE = "ServerInviteTransaction"
    REQUEST_INPUT = "INVITE"
    STATE_TIMERS: ClassVar[Mapping[str, frozenset[str]]] = {
        "completed": frozenset({"G", "H"}),
        "confirmed": frozenset({"I"}),
        "accepted": frozenset({"L"}),
    }

    def __init__(
        self, request: Request, *, reliable: bool, timers: Timers, now: float, auto_trying: bool = True
    ) -> None:
        super().__init__(request, reliable=reliable, timers=timers, now=now)
        self.auto_trying = auto_trying

    def _send_trying(self, request: Request, now: float) -> list[Output]:
        # "The server transaction MUST generate a 100 (Trying) response unless it knows
        # that the TU will generate a provisional or final response within 200 ms, in
        # which case it MAY generate a 100 (Trying) response."
        if not self.auto_trying:
            return []
        return _send_response(self, trying_response(request), now)

    def trying(self) -> list[Output]:
        """The 100 (Trying) of a transaction made without ``auto_trying``, sent when its owner
        knows the TU has not answered at once: nothing if the TU has sent any response."""
        if self.state != "proceeding" or self.last_response is not None:
            return []
        return _send_response(self, trying_response(self.request), 0.0)

    def _arm_g_h(self, response: Response, now: float) -> list[Output]:
        # "For unreliable transports, timer G is set to fire in T1 seconds, and is not
        # set to fire for reliable transports."
        if not self.reliable:
            self._arm("G", now, self.timers.timer_g)
        # "When the "Completed" state is entered, timer H MUST be set to fire in 64*T1
        # seconds for all transports."
        self._arm("H", now, self.timers.timer_h)
        return []

    def _timer_g(self, message: None, now: float) -> list[Output]:
        # "If timer G fires, the response is passed to the transport layer once more
        # for retransmission, and timer G is set to fire in MIN(2*T1, T2) seconds."
        self._arm("G", now, self.timers.backoff(self._interval("G")))
        return _resend_response(self, message, now)

    def _arm_i(self, ack: Request, now: float) -> list[Output]:
        # "When this state is entered, timer I is set to fire in T4 seconds for
        # unreliable transports, and zero seconds for reliable transports."
        self._arm("I", now, self.timers.timer_i(self.reliable))
        return []

    def _arm_l(self, response: Response, now: float) -> list[Output]:
        # RFC 6026 §7.1: on a 2xx from the TU the machine "MUST transition to the
        # "Accepted" state and set Timer L to 64*T1".
        self._arm("L", now, self.timers.timer_l)
        return []

    TABLE: ClassVar[Table] = {
        # "The request MUST be passed to the TU."
        ("init", "start"): ("proceeding", (_send_trying, pass_up)),
        # "If a request retransmission is received while in the "Proceeding" state, the
        # most recent provisional response that was received from the TU MUST be
        # passed to the transport layer for retransmission."
        ("proceeding", "INVITE"): ("proceeding", (_resend_response,)),
        ("proceeding", "ACK"): ("proceeding", ABSORB),
        ("proceeding", "1xx from TU"): ("proceeding", (_send_response,)),
        ("proceeding", "2xx from TU"): ("accepted", (_send_2xx, _arm_l)),
        # "If, while in the "Proceeding" state, the TU passes a response with status
        # code from 300 to 699 to the server transaction, the response MUST be passed
        # to the transport layer for transmission, and the state machine MUST enter
        # the "Completed" state."
        ("proceeding", "300-699 from TU"): ("completed", (_send_response, _arm_g_h)),
        ("proceeding", "Transport Err"): ("proceeding", (inform_tu,)),
        # "while in the "Completed" state, if a request retransmission is received,
        # the server SHOULD pass the response to the transport for retransmission."
        ("completed", "INVITE"): ("completed", (_resend_response,)),
        ("completed", "Timer G"): ("completed", (_timer_g,)),
        # "If an ACK is received while the server transaction is in the "Completed"
        # state, the server transaction MUST transition to the "Confirmed" state."
        ("completed", "ACK"): ("confirmed", (_arm_i,)),
        # "If timer H fires while in the "Completed" state, it implies that the ACK was
        # never received. In this case, the server transaction MUST transition to the
        # "Terminated" state, and MUST indicate to the TU that a transaction failure
        # has occurred."
        ("completed", "Timer H"): ("terminated", (timed_out("H"),)),
        ("completed", "Transport Err"): ("terminated", (inform_tu,)),
        # "The purpose of the "Confirmed" state is to absorb any additional ACK
        # messages that arrive, triggered from retransmissions of the final response."
        ("confirmed", "ACK"): ("confirmed", ABSORB),
        ("confirmed", "INVITE"): ("confirmed", ABSORB),
        # "Once timer I fires, the server MUST transition to the "Terminated" state."
        ("confirmed", "Timer I"): ("terminated", ABSORB),
        # RFC 6026 §7.1: "any retransmissions of the INVITE received will match this
        # transaction state machine and will be absorbed by the machine without
        # changing its state. These retransmissions are not passed onto the TU."
        ("accepted", "INVITE"): ("accepted", ABSORB),
        # RFC 6026 Figure 7: "ACK / to TU" (an ACK keyed to this transaction: a peer
        # that reused the INVITE's branch, or RFC 2543 matching).
        ("accepted", "ACK"): ("accepted", (pass_up,)),
        # "Any retransmission of the 2xx response passed from the TU to the
        # transaction while in the "Accepted" state MUST be passed to the transport
        # layer for transmission."
        ("accepted", "2xx from TU"): ("accepted", (_send_2xx,)),
        ("accepted", "Transport Err"): ("accepted", (inform_tu,)),
        # "When Timer L fires and the state machine is in the "Accepted" state, the
        # machine MUST transition to the "Terminated" state."
        ("accepted", "Timer L"): ("terminated", ABSORB),
    }


class ServerNonInviteTransaction(_ServerTransaction):
    """RFC 3261 §17.2.2 (Figure 8).

    "Any other final responses passed by the TU to the server transaction MUST be
    discarded while in the "Completed" state": ``respond`` then raises StateError and
    sends nothing.
    """

    MACHINE = "ServerNonInviteTransaction"
    REQUEST_INPUT = "request"
    STATE_TIMERS: ClassVar[Mapping[str, frozenset[str]]] = {"completed": frozenset({"J"})}

    def _arm_j(self, response: Response, now: float) -> list[Output]:
        # "When the server transaction enters the "Completed" state, it MUST set Timer J
        # to fire in 64*T1 seconds for unreliable transports, and zero seconds for
        # reliable transports."
        self._arm("J", now, self.timers.timer_j(self.reliable))
        return []

    TABLE: ClassVar[Table] = {
        # "The state machine is initialized in the "Trying" state and is passed a
        # request other than INVITE or ACK when initialized. This request is passed up
        # to the TU."
        ("init", "start"): ("trying", (pass_up,)),
        # "Once in the "Trying" state, any further request retransmissions are
        # discarded."
        ("trying", "request"): ("trying", ABSORB),
        ("trying", "1xx from TU"): ("proceeding", (_send_response,)),
        ("trying", "2xx from TU"): ("completed", (_send_response, _arm_j)),
        ("trying", "300-699 from TU"): ("completed", (_send_response, _arm_j)),
        # "While in the "Proceeding" state, if a retransmission of the request is
        # received, the most recent provisional response that was received from the
        # TU MUST be passed to the transport layer for retransmission."
        ("proceeding", "request"): ("proceeding", (_resend_response,)),
        ("proceeding", "1xx from TU"): ("proceeding", (_send_response,)),
        ("proceeding", "2xx from TU"): ("completed", (_send_response, _arm_j)),
        ("proceeding", "300-699 from TU"): ("completed", (_send_response, _arm_j)),
        ("proceeding", "Transport Err"): ("terminated", (inform_tu,)),
        # "While in the "Completed" state, the server transaction MUST pass the final
        # response to the transport layer for retransmission whenever a retransmission
        # of the request is received."
        ("completed", "request"): ("completed", (_resend_response,)),
        ("completed", "Transport Err"): ("terminated", (inform_tu,)),
        ("completed", "Timer J"): ("terminated", ABSORB),
    }


# ---------------------------------------------------------------- 2xx retransmission
