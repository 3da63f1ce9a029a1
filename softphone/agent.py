"""The user agent, without I/O: the calls table, request routing, the answers to
requests outside any call, the incoming-call policy and every call-level timer.

Like the endpoint it drives: bytes, the address they came from and ``now`` go in
(``receive``), user actions go in as method calls, and commands for the edge come out;
``get_timer()`` is the next deadline of the agent or its endpoint, ``handle_timer(now)``
runs what is due. The edge (phone.py) carries the commands out: it resolves names,
opens RTP ports, runs media and devices, and holds one timer handle.

Requests are checked in the order RFC 3261 §8.2 gives (softphone.sip.uas), then routed
to a call (481 when there is none) or to the out-of-dialog answers.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Iterable, Sequence
from dataclasses import field, replace
from enum import StrEnum

from softphone.call import (
    ALLOW,
    SDP,
    Call,
    CallEnded,
    CallSetup,
    Command,
    MediaUpdate,
    SendRequest,
    SendResponse,
    StateChanged,
    TransferUpdate,
)
from softphone.call import transfer as transfers
from softphone.call.states import CallState, Direction, EndCause, Progress, TransferState
from softphone.callers import Decision, admit
from softphone.callers import IncomingPolicy as IncomingPolicy  # where the phone and tests find it
from softphone.errors import ParseError, StateError
from softphone.frozen import dataclass
from softphone.registrations import RegistrationOutput, RegistrationSet
from softphone.sip.dialog import random_token
from softphone.sip.endpoint import (
    AckReceived,
    AnswerTimedOut,
    Endpoint,
    Event,
    MessageDropped,
    Outgoing,
    Peer,
    RequestReceived,
    ResponseReceived,
    TransactionTimedOut,
    build_response,
    literal_peer,
    reason_phrase,
)
from softphone.sip.locate import Target
from softphone.sip.message import Request
from softphone.sip.refer import SIPFRAG
from softphone.sip.registration import Registration
from softphone.sip.uas import RequestInspector
from softphone.sip.uri import SipUri
from softphone.targets import Targets

log = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS: frozenset[str] = frozenset()  # option tags of Require we implement (RFC 3261 §8.2.2.3)
BYE_GRACE_T1 = 8  # how long (in T1) a BYE may go unanswered before the call counts as over: 4 s by default
LINGER_T1 = 64  # how long after its 2xx an ended call we placed is kept for 2xx retransmissions
CALLEE_LINGER_T1 = 8  # how long an ended call we answered is kept: 4 s by default
TRANSFERRED_T1 = 8  # how long (in T1) a transferor may take to hang up after a successful transfer: 4 s


class CallTimer(StrEnum):
    ANSWER = "answer"  # the auto-answer delay
    RING = "ring"  # an unanswered incoming call gives up
    IN_CALL = "in_call"  # an established call has lasted long enough
    BYE_GRACE = "bye_grace"  # our BYE went unanswered
    LINGER = "linger"  # an ended call is forgotten
    TRANSFERRED = "transferred"  # the peer transferred us, the new call is up: the old one ends


# ---------------------------------------------------------------- commands to the edge


@dataclass(frozen=True)
class CallCommand:
    """Something a call asks of the edge: a state to report, media to start or follow, its end."""

    call_id: str
    command: StateChanged | MediaUpdate | CallEnded | TransferUpdate


@dataclass(frozen=True)
class Resolve:
    """A request whose next hop is a name: the edge resolves it and calls ``send``."""

    call_id: str
    request: Request
    target: SipUri
    transport: str


@dataclass(frozen=True)
class IncomingCall:
    """An INVITE the policy lets in: the edge prepares media and calls ``accept`` (or ``refuse``)."""

    request: Request
    source: Peer


@dataclass(frozen=True)
class CallRefused:
    """An incoming INVITE refused before it became a call."""

    request: Request
    status: int
    cause: EndCause


@dataclass(frozen=True)
class TransferCall:
    """A REFER from the peer of ``call_id``: the edge calls ``target``, then ``transfer_placed``/``_failed``."""

    call_id: str
    target: SipUri


@dataclass(frozen=True)
class CallForgotten:
    """An ended call's late retransmissions are over."""

    call_id: str


AgentCommand = CallCommand | Resolve | IncomingCall | CallRefused | CallForgotten | TransferCall | RegistrationOutput


@dataclass
class CallRecord:
    """A call in the table, with what the agent keeps about it."""

    call: Call
    transport: str
    started: float
    first_hop: Peer | None = None  # where our INVITE went (its CANCEL goes there too)
    alternatives: tuple[Target, ...] = ()  # RFC 3263 §4.3: where the INVITE goes if first_hop fails
    timeline: dict[str, float] = field(default_factory=dict)
    timers: dict[CallTimer, float] = field(default_factory=dict)
    ended: CallEnded | None = None
    transfer_of: str | None = None  # the call whose peer transferred us to this one

    def mark(self, name: str, now: float) -> None:
        self.timeline.setdefault(name, now - self.started)  # the summary rounds: round(x, 6) calls snprintf


class UserAgent:
    """Calls and registrations over one endpoint. Pure: ``now`` is always given."""

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        user_agent: str | None = None,
        policy: IncomingPolicy | None = None,
        in_call_timeout: float = 0.0,
        local_hosts: Iterable[str] = (),
        domains: Iterable[str] = (),
        keepalive_period: float = 30.0,
    ) -> None:
        self.endpoint = endpoint
        self.registrations = RegistrationSet(endpoint, keepalive_period)
        self.user_agent = user_agent
        self.policy = policy  # None: incoming calls get 480
        self.in_call_timeout = in_call_timeout
        self.inspector = RequestInspector(
            allow=ALLOW, accept=SDP, extensions=SUPPORTED_EXTENSIONS, local_hosts=local_hosts, domains=domains,
            memory=LINGER_T1 * endpoint.timers.t1, bodies={"NOTIFY": SIPFRAG},
        )
        self.calls: dict[str, CallRecord] = {}
        self._active = 0  # calls in the table not ended yet
        self.targets = Targets(endpoint, self.registrations)
        self._heap: list[tuple[float, int, str, CallTimer]] = []
        self._sequence = 0

    @property
    def t1(self) -> float:
        return self.endpoint.timers.t1

    def active_calls(self) -> int:
        """Calls not ended yet (the table holds ended calls a while too), counted as they come and end."""
        return self._active

    # ------------------------------------------------------------ the core the network drives

    def receive(self, data: bytes, source: Peer, now: float) -> list[AgentCommand]:
        return self._route(self.endpoint.receive(data, source, now), now)

    def transport_failed(self, peer: Peer, now: float) -> list[AgentCommand]:
        return self._route(self.endpoint.transport_failed(peer, now), now)

    def datagrams_to_send(self) -> list[Outgoing]:
        return self.endpoint.datagrams_to_send() + self.registrations.datagrams_to_send()

    def get_timer(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, _, call_id, timer = heap[0]
            record = self.calls.get(call_id)
            if record is not None and record.timers.get(timer) == deadline:
                break
            heapq.heappop(heap)  # stale: the timer was cancelled or moved
        deadlines = [heap[0][0]] if heap else []
        deadlines += [d for d in (self.endpoint.get_timer(), self.registrations.get_timer()) if d is not None]
        return min(deadlines, default=None)

    def handle_timer(self, now: float) -> list[AgentCommand]:
        out = self._route(self.endpoint.handle_timer(now), now)
        out += self.registrations.handle_timer(now)
        while self._heap and self._heap[0][0] <= now:
            deadline, _, call_id, timer = heapq.heappop(self._heap)
            record = self.calls.get(call_id)
            if record is None or record.timers.get(timer) != deadline:
                continue
            del record.timers[timer]
            out += self._fire(record, timer, now)
        return out

    # ------------------------------------------------------------ user actions

    def call(self, target: SipUri, setup: CallSetup, first_hop: Peer, now: float,
             alternatives: Sequence[Target] = ()) -> tuple[str, list[AgentCommand]]:
        """Place a call; the INVITE goes to ``first_hop``, then to each of ``alternatives`` that it fails over to."""
        call, commands = Call.outgoing(target, setup)
        record = CallRecord(call, first_hop.transport, now, first_hop=first_hop, alternatives=tuple(alternatives))
        self.calls[call.call_id] = record
        self._active += 1
        record.mark("invite_sent", now)
        return call.call_id, self._run(record, commands, now)

    def accept(self, request: Request, setup: CallSetup, source: Peer, now: float) -> list[AgentCommand]:
        """Take the call an ``IncomingCall`` announced: ring, and answer as the policy says."""
        call, commands = Call.incoming(request, setup)
        record = CallRecord(call, source.transport, now)
        self.calls[call.call_id] = record
        self._active += 1
        out = self._run(record, commands, now)
        if call.ended:
            return out
        out += self._run(record, call.ring(), now)
        policy = self.policy or IncomingPolicy()
        if policy.auto_answer and policy.delay <= 0:
            out += self._run(record, call.answer(), now)
        elif policy.auto_answer:
            self._arm(record, CallTimer.ANSWER, now + policy.delay)
        elif policy.ring_timeout > 0:
            self._arm(record, CallTimer.RING, now + policy.ring_timeout)
        return out

    def refuse(self, request: Request, status: int, now: float, cause: EndCause = EndCause.UNAVAILABLE) -> list[
        AgentCommand
    ]:
        """Answer an incoming INVITE with a failure before it becomes a call."""
        self._respond(request, status, now)
        return [CallRefused(request, status, cause)]

    def answer(self, call_id: str, now: float) -> list[AgentCommand]:
        record = self._record(call_id)
        return self._run(record, record.call.answer(), now)

    def reject(self, call_id: str, now: float, status: int = 486) -> list[AgentCommand]:
        record = self._record(call_id)
        return self._run(record, record.call.reject(status), now)

    def hangup(
        self, call_id: str, now: float, cause: EndCause = EndCause.LOCAL_HANGUP, reason: str | None = None
    ) -> list[AgentCommand]:
        record = self._record(call_id)
        return self._run(record, record.call.hangup(cause, reason), now)

    def abandon(self, call_id: str, now: float) -> list[AgentCommand]:
        """End a call that is hanging up without waiting any longer for the peer."""
        record = self._record(call_id)
        return self._run(record, record.call.abandon(), now)

    def hold(self, call_id: str, now: float) -> list[AgentCommand]:
        record = self._record(call_id)
        return self._run(record, record.call.hold(), now)

    def resume(self, call_id: str, now: float) -> list[AgentCommand]:
        record = self._record(call_id)
        return self._run(record, record.call.resume(), now)

    def transfer(self, call_id: str, target: SipUri, now: float) -> list[AgentCommand]:
        """Blind transfer (RFC 3515): ask the peer to call ``target``; the call ends when it succeeds."""
        record = self._record(call_id)
        return self._run(record, transfers.refer(record.call, target), now)

    def transfer_placed(self, call_id: str, new_call_id: str, now: float) -> list[AgentCommand]:
        """The call a ``TransferCall`` asked for is placed: its progress goes to the transferor."""
        record, new = self.calls.get(call_id), self.calls.get(new_call_id)
        received = record.call.transfers.received if record is not None else None
        if new is None or received is None:
            return []
        new.transfer_of = call_id
        update = TransferUpdate(Direction.INCOMING, TransferState.CALLING, received.target, new_call_id=new_call_id)
        return [CallCommand(call_id, update)]

    def transfer_failed(self, call_id: str, now: float, status: int = 503, reason: str | None = None) -> list[
        AgentCommand
    ]:
        """The call a ``TransferCall`` asked for could not be placed."""
        record = self.calls.get(call_id)
        return self._run(record, transfers.notify(record.call, status, reason), now) if record is not None else []

    def register(self, registration: Registration, transport: str, now: float) -> list[AgentCommand]:
        """Keep an account registered (and its flow alive) until ``unregister_all``."""
        return list(self.registrations.add(registration, transport, now))

    def unregister_all(self, now: float) -> list[AgentCommand]:
        return list(self.registrations.unregister_all(now))

    def send(self, call_id: str, request: Request, peer: Peer, now: float, alternatives: Sequence[Target] = ()) -> None:
        """Send a request whose next hop the edge has resolved (``Resolve``, ``ResolveRegister``);
        ``alternatives`` are the next targets to fail over to (RFC 3263 §4.3)."""
        record = self.calls.get(call_id)
        if record is not None and request.method == "INVITE" and record.first_hop is None:
            record.first_hop, record.alternatives = peer, tuple(alternatives)
        self.targets.send(call_id, request, peer, now, alternatives)

    def unreachable(self, call_id: str, request: Request, now: float) -> list[AgentCommand]:
        """The edge could not find where to send a request of this call (or registration)."""
        if self.registrations.owns(call_id):
            return list(self.registrations.unreachable(call_id, request, now))
        record = self.calls.get(call_id)
        if record is None:
            return []
        return self._run(record, record.call.on_timeout(request, "transport"), now)

    def mark(self, call_id: str, name: str, now: float) -> None:
        """Note a moment of the call's timeline that the edge saw (first audio, first picture)."""
        record = self.calls.get(call_id)
        if record is not None:
            record.mark(name, now)

    def _record(self, call_id: str) -> CallRecord:
        record = self.calls.get(call_id)
        if record is None:
            raise StateError("UserAgent", "no such call", call_id)
        return record

    # ------------------------------------------------------------ carrying out a call's commands

    def _run(self, record: CallRecord, commands: Iterable[Command], now: float) -> list[AgentCommand]:
        out: list[AgentCommand] = []
        call_id = record.call.call_id
        for command in commands:
            if isinstance(command, SendRequest):
                out += self._send_request(record, command, now)
            elif isinstance(command, SendResponse):
                self.endpoint.respond(command.request, command.response, now)
                if command.request.method == "BYE" and command.response.status >= 200:
                    record.mark("bye", now)
            elif isinstance(command, StateChanged):
                self._on_state(record, command.state, now)
                out.append(CallCommand(call_id, command))
                out += self._report_transfer(record, command, now)
            elif isinstance(command, CallEnded):
                if record.ended is None:  # the table keeps a slim copy, the session the whole call
                    self._active -= 1
                    record = self.calls[call_id] = replace(record, call=record.call.lingering())
                record.ended = command
                record.timers.clear()
                self._arm(record, CallTimer.LINGER, self._forget_at(record, now))
                out.append(CallCommand(call_id, command))
                out += self._report_transfer(record, command, now)
            else:
                out.append(CallCommand(call_id, command))
                if isinstance(command, TransferUpdate) and command.direction == Direction.INCOMING:
                    out += self._on_transfer(record, command, now)
        return out

    def _forget_at(self, record: CallRecord, now: float) -> float:
        """When an ended call leaves the table. As caller: 64*T1 after our INVITE was answered (or
        sent), as the callee may resend its 2xx until then (RFC 3261 §13.2.2.4: ACK each). As callee:
        a few T1, for a late answer to our BYE (the transactions absorb retransmissions)."""
        if record.call.role == "uas":
            return now + CALLEE_LINGER_T1 * self.t1
        since = record.started + record.timeline.get("answered", 0.0)
        return max(now + CALLEE_LINGER_T1 * self.t1, since + LINGER_T1 * self.t1)

    def _on_transfer(self, record: CallRecord, update: TransferUpdate, now: float) -> list[AgentCommand]:
        if update.state == TransferState.REQUESTED:
            return [TransferCall(record.call.call_id, update.target)]
        if update.state == TransferState.SUCCEEDED and record.call.state == CallState.CONFIRMED:
            # the transferor hangs up now (as RFC 5589 shows it); if it does not, we do
            self._arm(record, CallTimer.TRANSFERRED, now + TRANSFERRED_T1 * self.t1)
        return []

    def _report_transfer(self, record: CallRecord, command: StateChanged | CallEnded, now: float) -> list[
        AgentCommand
    ]:
        """A call placed for a transfer tells its progress to the transferor (NOTIFY sipfrag)."""
        original = self.calls.get(record.transfer_of) if record.transfer_of is not None else None
        if original is None or (status := transfers.status_to_report(command)) is None:
            return []
        return self._run(original, transfers.notify(original.call, status, reason_phrase(status)), now)

    def _send_request(self, record: CallRecord, command: SendRequest, now: float) -> list[AgentCommand]:
        request = command.request
        if request.method == "BYE":
            record.mark("bye", now)
        elif request.method == "ACK":
            record.mark("ack", now)
        if request.method in ("INVITE", "CANCEL") and request.to_addr.tag is None and record.first_hop is not None:
            # our INVITE (again with credentials) goes to the hop the call was placed
            # through; RFC 3261 §9.1: the CANCEL goes where the INVITE it cancels went
            alternatives = record.alternatives if request.method == "INVITE" else ()
            self.targets.send(record.call.call_id, request, record.first_hop, now, alternatives)
            return []
        transport = (command.target.param("transport") or record.transport).lower()
        peer = literal_peer(command.target, transport)
        if peer is None:
            return [Resolve(record.call.call_id, request, command.target, transport)]
        self.send(record.call.call_id, request, peer, now)
        return []

    def _on_state(self, record: CallRecord, state: Progress, now: float) -> None:
        if state in (Progress.TRYING, Progress.RINGING, Progress.ANSWERED):
            record.mark(state._value_, now)  # not .value: a property written in Python
        if state == Progress.CONFIRMED:
            if record.call.role == "uas":
                record.mark("ack", now)
            if self.in_call_timeout > 0:
                self._arm(record, CallTimer.IN_CALL, now + self.in_call_timeout)
        if state in (Progress.ANSWERED, Progress.CANCELLING, Progress.ENDED):
            record.timers.pop(CallTimer.RING, None)
            record.timers.pop(CallTimer.ANSWER, None)
        if state == Progress.TERMINATING:
            # RFC 3261 §15.1.1: the session ends when the BYE is handed to its transaction;
            # its answer only matters for a challenge, so an unanswered BYE ends the call
            # after a few retransmissions instead of Timer F (64*T1)
            record.timers.pop(CallTimer.IN_CALL, None)
            self._arm(record, CallTimer.BYE_GRACE, now + BYE_GRACE_T1 * self.t1)

    # ------------------------------------------------------------ timers

    def _arm(self, record: CallRecord, timer: CallTimer, deadline: float) -> None:
        record.timers[timer] = deadline
        self._sequence += 1
        heapq.heappush(self._heap, (deadline, self._sequence, record.call.call_id, timer))

    def _fire(self, record: CallRecord, timer: CallTimer, now: float) -> list[AgentCommand]:
        call = record.call
        if timer == CallTimer.LINGER:
            del self.calls[call.call_id]
            self.targets.forget_call(call.call_id)
            return [CallForgotten(call.call_id)]
        if timer == CallTimer.ANSWER and call.state in (CallState.INCOMING, CallState.RINGING):
            return self._run(record, call.answer(), now)
        if timer == CallTimer.RING and call.state in (CallState.INCOMING, CallState.RINGING):
            return self._run(record, call.hangup(EndCause.RING_TIMEOUT, "nobody answered"), now)
        if timer == CallTimer.IN_CALL and call.state == CallState.CONFIRMED:
            log.info("call %s: in-call time limit reached, hanging up", call.call_id)
            reason = f"call longer than {self.in_call_timeout:g} s"
            return self._run(record, call.hangup(EndCause.IN_CALL_TIMEOUT, reason), now)
        if timer == CallTimer.TRANSFERRED and call.state == CallState.CONFIRMED:
            log.info("call %s: transferred, the transferor did not hang up: hanging up", call.call_id)
            return self._run(record, call.hangup(EndCause.TRANSFERRED, "transferred"), now)
        if timer == CallTimer.BYE_GRACE and call.state == CallState.TERMINATING:
            log.info("call %s: no answer to our BYE, the call is over", call.call_id)
            return self._run(record, call.on_bye_unanswered(), now)
        return []

    # ------------------------------------------------------------ routing endpoint events

    def _route(self, events: list[Event], now: float) -> list[AgentCommand]:
        out: list[AgentCommand] = []
        for event in events:
            try:
                out += self._dispatch(event, now)
            except (StateError, ParseError) as exc:
                log.warning("ignored %s: %s", type(event).__name__, exc)
        return out

    def _dispatch(self, event: Event, now: float) -> list[AgentCommand]:
        if isinstance(event, RequestReceived):
            return self._on_request(event.request, event.source, now)
        if isinstance(event, MessageDropped):
            return []
        if isinstance(event, AnswerTimedOut):
            record = self.calls.get(event.response.call_id)
            return self._run(record, record.call.on_answer_timeout(), now) if record is not None else []
        request = event.request
        record = self.calls.get(request.call_id)
        if isinstance(event, (ResponseReceived, TransactionTimedOut)):
            moved = self.targets.fail_over(event, record.call if record is not None else None, now)
            if moved is not None and moved.initial and record is not None:
                record.first_hop, record.transport = moved.target.peer, moved.target.transport
                record.alternatives = record.alternatives[1:]
            if moved is not None:
                return []
        if isinstance(event, AckReceived):
            if record is None or (record.call.dialog is not None and not record.call.dialog.matches(request)):
                return []  # an ACK for no dialog of ours is dropped (ACKs are never answered)
            return self._run(record, record.call.on_request(request), now)
        if request.method == "REGISTER":
            if isinstance(event, ResponseReceived):
                return list(self.registrations.on_response(event.response, now))
            return list(self.registrations.on_timeout(request, now))
        if record is None:
            return []  # a late answer for a call already forgotten
        if isinstance(event, ResponseReceived):
            return self._run(record, record.call.on_response(event.response, request), now)
        return self._run(record, record.call.on_timeout(request, event.timer), now)

    def _on_request(self, request: Request, source: Peer, now: float) -> list[AgentCommand]:
        refusal = self.inspector.inspect(request, now)
        if refusal is not None:
            status, extra = refusal
            self._respond(request, status, now, extra)
            return []
        method = request.method
        record = self.calls.get(request.call_id)
        if method == "REFER" and request.to_addr.tag is None:
            # a REFER is acted on only inside a call: it transfers that call
            self._respond(request, 400, now, reason="REFER Outside A Dialog")
            return []
        if method == "INVITE" and request.to_addr.tag is None:
            if record is not None:
                invite = record.call.invite
                if invite is not None and invite.top_via.branch == request.top_via.branch:
                    return []  # our INVITE transaction is over: its 2xx is retransmitted by us
                # one dialog per Call-ID: another INVITE for it is a loop or a merged fork
                self._respond(request, 482, now)
                return []
            if request.contacts and not isinstance(request.contacts[0].uri, SipUri):
                # RFC 3261 §8.1.1.8: the Contact of a dialog "MUST be a SIP or SIPS URI"
                self._respond(request, 400, now, reason="Bad Contact")
                return []
            return self._on_invite(request, source, now)
        if record is not None and (method == "CANCEL" or record.call.dialog is None
                                   or record.call.dialog.matches(request)):
            if method == "CANCEL" and not _cancels(request, record.call):
                self._respond(request, 481, now)
                return []
            return self._run(record, record.call.on_request(request), now)
        if method == "OPTIONS" and request.to_addr.tag is None:
            # RFC 3261 §11.2: the capabilities of the user agent
            self._respond(request, 200, now, self._capabilities())
            return []
        # RFC 3261 §12.2.2: "If the UAS wishes to reject the request because it does not
        # wish to recreate the dialog, it MUST respond to the request with a 481"
        self._respond(request, 481, now)
        return []

    def _capabilities(self) -> tuple[tuple[str, str], ...]:
        # RFC 3261 §11.2: Allow, Accept, Accept-Encoding, Accept-Language and Supported
        # "SHOULD be present"; we implement no option tag, so Supported is empty
        pairs = [("Allow", ALLOW), *self.inspector.accept_headers(), ("Supported", ", ".join(SUPPORTED_EXTENSIONS))]
        return tuple(pairs)

    def _respond(
        self, request: Request, status: int, now: float, extra: tuple[tuple[str, str], ...] = (),
        reason: str | None = None,
    ) -> None:
        if self.user_agent:
            extra = (*extra, ("Server", self.user_agent))
        response = build_response(request, status, reason, to_tag=random_token(), extra=extra)
        self.endpoint.respond(request, response, now)

    # ------------------------------------------------------------ the incoming-call policy

    def _on_invite(self, request: Request, source: Peer, now: float) -> list[AgentCommand]:
        policy = self.policy
        if policy is None:
            return self.refuse(request, 480, now, EndCause.UNAVAILABLE)
        if policy.reject is not None:
            return self.refuse(request, policy.reject, now, EndCause.POLICY)
        admission = admit(request, source, now, policy)  # who may call (softphone.callers)
        if admission.decision == Decision.CHALLENGE:  # RFC 3261 §22.1: a 401; the caller sends a new INVITE
            self._respond(request, 401, now, admission.headers, "Unauthorized")
            return []
        if admission.decision == Decision.REFUSE:
            return self.refuse(request, 403, now, EndCause.NOT_ALLOWED)
        if self.active_calls() >= policy.max_calls:
            return self.refuse(request, 486, now, EndCause.BUSY)
        return [IncomingCall(request, source)]


def _cancels(cancel: Request, call: Call) -> bool:
    """RFC 3261 §9.2: a CANCEL matches its INVITE's Call-ID, From tag, CSeq number and top Via branch."""
    invite = call.invite
    if invite is None or call.role != "uas":
        return False
    return (cancel.cseq.number == invite.cseq.number and cancel.from_addr.tag == invite.from_addr.tag
            and cancel.top_via.branch == invite.top_via.branch)
