"""The transaction layer of a SIP endpoint, without I/O (RFC 3261 §17, §18).

Bytes, the address they came from and ``now`` go in; events for the transaction user
come out, and the datagrams to send are collected for the transport to take with
``datagrams_to_send()``. Timers are deadlines: the caller asks ``get_timer()`` and calls
``handle_timer(now)`` when it is due.
"""

from __future__ import annotations

import heapq
import logging
from collections.abc import Callable, Iterable
from dataclasses import field

from softphone.errors import ParseError
from softphone.frozen import dataclass
from softphone.sip.dialog import random_token
from softphone.sip.headers import add_tag, canonical_name
from softphone.sip.malformed import bad_request, salvage_headers
from softphone.sip.message import Headers, Message, MessageParseError, Request, Response, parse_message
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
    client_key,
    server_key,
)
from softphone.sip.uri import SipUri, is_ip_address

log = logging.getLogger(__name__)

RELIABLE = frozenset({"tcp", "tls", "sctp", "ws", "wss"})

REASONS = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    603: "Decline",
}


def reason_phrase(status: int) -> str:
    return REASONS.get(
        status,
        {1: "Provisional", 2: "OK", 3: "Redirect", 4: "Client Error", 5: "Server Error"}.get(status // 100, "Failure"),
    )


@dataclass(frozen=True)
class Peer:
    """Where a message came from or goes to: transport name, host, port, and for
    connection-oriented transports the connection it travelled on (an opaque id)."""

    transport: str
    host: str
    port: int
    connection: int | None = None

    @property
    def reliable(self) -> bool:
        return self.transport in RELIABLE


def literal_peer(uri: SipUri, transport: str) -> Peer | None:
    """The next hop for a URI whose host is an IP address; None for a name."""
    host = (uri.param("maddr") or uri.host).strip("[]")
    if not is_ip_address(host):
        return None
    return Peer(transport.lower(), host, uri.port or (5061 if transport == "tls" else 5060))



@dataclass(frozen=True)
class Outgoing:
    data: bytes
    peer: Peer


# ---------------------------------------------------------------- events to the TU


@dataclass(frozen=True)
class RequestReceived:
    """A new request (not a retransmission); answer it with ``Endpoint.respond``."""

    request: Request
    source: Peer


@dataclass(frozen=True)
class AckReceived:
    """An ACK outside any server transaction: the ACK of a 2xx (RFC 3261 §17.2.1)."""

    request: Request
    source: Peer


@dataclass(frozen=True)
class ResponseReceived:
    response: Response
    request: Request


@dataclass(frozen=True)
class TransactionTimedOut:
    request: Request
    timer: str


@dataclass(frozen=True)
class AnswerTimedOut:
    """A 2xx to an INVITE was never acknowledged (RFC 3261 §13.3.1.4)."""

    response: Response


@dataclass(frozen=True)
class MessageDropped:
    reason: str
    source: Peer


Event = RequestReceived | AckReceived | ResponseReceived | TransactionTimedOut | AnswerTimedOut | MessageDropped

@dataclass(frozen=True)
class Refusal:
    """What ``Endpoint.admit`` says of a new request it does not let in: answered
    ``status`` statelessly (with ``headers``), or dropped unanswered when ``status`` is None."""

    status: int | None
    headers: tuple[tuple[str, str], ...] = ()


Admission = Callable[[Request, Peer, float], Refusal | None]

ClientTransaction = ClientInviteTransaction | ClientNonInviteTransaction
ServerTransaction = ServerInviteTransaction | ServerNonInviteTransaction
_CLIENTS = (ClientInviteTransaction, ClientNonInviteTransaction)
_SERVERS = (ServerInviteTransaction, ServerNonInviteTransaction)


@dataclass
class _Entry:
    transaction: ClientTransaction | ServerTransaction
    peer: Peer
    request: Request


@dataclass
class _AnswerEntry:
    retransmission: AnswerRetransmission
    peer: Peer
    response: Response


@dataclass
class Endpoint:
    timers: Timers = field(default_factory=Timers)
    _clients: dict[tuple[object, ...], _Entry] = field(default_factory=dict)
    _servers: dict[tuple[object, ...], _Entry] = field(default_factory=dict)
    _answers: dict[tuple[object, ...], _AnswerEntry] = field(default_factory=dict)
    _outbox: list[Outgoing] = field(default_factory=list)
    _trying_owed: list[tuple[object, ...]] = field(default_factory=list)  # INVITEs not answered yet
    _last_key: tuple[Request, tuple[object, ...]] | None = None  # the last request received, and its key
    _deadlines: list[tuple[float, int, str, tuple[object, ...]]] = field(default_factory=list)
    _sequence: int = 0
    admit: Admission | None = None  # asked about each new request (not ACK) before it gets a transaction

    def server_transactions(self) -> int:
        return len(self._servers)

    def unanswered(self, method: str) -> int:
        """Our requests of ``method`` whose client transactions still wait for a final response."""
        waiting = ("calling", "trying", "proceeding")
        return sum(1 for e in self._clients.values() if e.request.method == method and e.transaction.state in waiting)

    def copies_due(self, method: str) -> float | None:
        """Until when a peer whose final answer from us was lost would send its request of
        ``method`` again: the latest over our server transactions still answering copies
        (Completed: until Timer J, 64*T1 over UDP; none over TCP and TLS); None without one.

        A peer retransmits T1 after its first copy, then doubling each gap up to T2 (RFC 3261
        §17.1.2.2): the gap after a copy is the time since the first copy plus T1. The next copy
        may be lost as well, so this waits for the two gaps after the last copy that came, and
        T1/2 more for the way."""
        t1, t2 = self.timers.t1, self.timers.t2
        latest: float | None = None
        for e in self._servers.values():
            tx = e.transaction
            if e.request.method != method or tx.state != "completed" or not isinstance(tx, _SERVERS):
                continue
            gap = min(tx.last_copy - tx.created + t1, t2)
            due = tx.last_copy + gap + min(2 * gap, t2) + t1 / 2
            latest = due if latest is None else max(latest, due)
        return latest

    # ------------------------------------------------------------ inbound

    def receive(self, data: bytes, source: Peer, now: float) -> list[Event]:
        """Feed one datagram (or one framed stream message). Never raises for bad input."""
        if not data.strip(b"\r\n"):
            return []  # keep-alive CRLFs (RFC 5626 §4.4.1)
        try:
            message = parse_message(data, stream=source.reliable)
        except ParseError as exc:
            return self._reject_malformed(exc, data, source)
        try:
            if isinstance(message, Request):
                return self._receive_request(message, source, now)
            return self._receive_response(message, now)
        except (ParseError, ValueError) as exc:
            log.info("dropping message from %s:%s: %s", source.host, source.port, exc)
            return [MessageDropped(str(exc), source)]

    def _reject_malformed(self, exc: ParseError, data: bytes, source: Peer) -> list[Event]:
        log.info("malformed message from %s:%s: %s", source.host, source.port, exc)
        if isinstance(exc, MessageParseError) and exc.is_request and exc.method != "ACK":
            headers = exc.headers if exc.headers is not None else salvage_headers(data)
            response = bad_request(headers, exc)
            if response is not None:
                self._outbox.append(Outgoing(bytes(response), _response_peer(response, source)))
        return [MessageDropped(str(exc), source)]

    def _receive_request(self, request: Request, source: Peer, now: float) -> list[Event]:
        request = _stamp_received(request, source)
        key = server_key(request)
        self._last_key = (request, key)  # the TU answers it at once, most often
        if request.method == "ACK":
            # the ACK ends the 2xx's retransmissions (RFC 3261 §13.3.1.4), whether it comes with
            # a branch of its own or through the INVITE's transaction (RFC 6026 §7.1: a reused
            # branch, or an RFC 2543 peer)
            answer = self._answers.pop((request.call_id, request.cseq.number), None)
            if answer is not None:
                answer.retransmission.ack_received()  # its heap entry goes stale
        entry = self._servers.get(key)
        if entry is not None:
            server = entry.transaction
            assert isinstance(server, ServerTransaction)  # only server transactions are in _servers
            return self._run(entry, server.receive(request, now), self._servers, key)
        if request.method == "ACK":
            return [AckReceived(request, source)]
        refusal = self.admit(request, source, now) if self.admit is not None else None
        if refusal is not None:
            if refusal.status is not None:  # answered without a transaction: it costs no memory
                response = build_response(request, refusal.status, to_tag=random_token(), extra=refusal.headers)
                self._outbox.append(Outgoing(bytes(response), _response_peer(request, source)))
            return [MessageDropped(f"refused {request.method} ({refusal.status or 'dropped'})", source)]
        transaction: ServerTransaction
        if request.method == "INVITE":
            # the 100 (Trying) is owed until the datagrams leave: an INVITE the TU has answered
            # by then (a 180, or a final response) needs none (RFC 3261 §17.2.1)
            transaction = ServerInviteTransaction(
                request, reliable=source.reliable, timers=self.timers, now=now, auto_trying=False
            )
            self._trying_owed.append(key)
        else:
            transaction = ServerNonInviteTransaction(request, reliable=source.reliable, timers=self.timers, now=now)
        entry = _Entry(transaction, _response_peer(request, source), request)
        self._servers[key] = entry
        events = self._run(entry, transaction.start(now), self._servers, key)
        return [RequestReceived(e.request, source) if isinstance(e, RequestReceived) else e for e in events]

    def _receive_response(self, response: Response, now: float) -> list[Event]:
        key = client_key(response)
        entry = self._clients.get(key)
        if entry is None:
            log.debug("stray response %s for %s", response.status, response.call_id)
            return []
        assert isinstance(entry.transaction, _CLIENTS)
        return self._run(entry, entry.transaction.receive(response, now), self._clients, key)

    # ------------------------------------------------------------ outbound

    def send_request(self, request: Request, peer: Peer, now: float) -> None:
        """Start a client transaction for ``request`` (ACKs of 2xx are sent directly)."""
        if request.method == "ACK":
            self._outbox.append(Outgoing(bytes(request), peer))
            return
        transaction: ClientTransaction
        if request.method == "INVITE":
            transaction = ClientInviteTransaction(request, reliable=peer.reliable, timers=self.timers, now=now)
        else:
            transaction = ClientNonInviteTransaction(request, reliable=peer.reliable, timers=self.timers, now=now)
        key = client_key(request)
        entry = _Entry(transaction, peer, request)
        self._clients[key] = entry
        self._run(entry, transaction.start(now), self._clients, key)

    def respond(self, request: Request, response: Response, now: float) -> None:
        """Send ``response`` to ``request`` through its server transaction."""
        last = self._last_key
        key = last[1] if last is not None and last[0] is request else server_key(request)
        entry = self._servers.get(key)
        if entry is None:
            log.debug("no server transaction for %s %s any more", request.method, request.call_id)
            return
        transaction = entry.transaction
        assert isinstance(transaction, _SERVERS)
        outputs = transaction.respond(response, now)
        self._run(entry, outputs, self._servers, key)
        if request.method == "INVITE" and 200 <= response.status < 300:
            # RFC 3261 §13.3.1.4: "the 2xx response is passed to the transport with an
            # interval that starts at T1 seconds and doubles for each retransmission
            # until it reaches T2 seconds", until the ACK arrives.
            sent = [o.data for o in outputs if isinstance(o, Send)]
            data = sent[0] if sent else bytes(response)
            retransmission = AnswerRetransmission(data, reliable=entry.peer.reliable, timers=self.timers, now=now)
            akey = (request.call_id, request.cseq.number)
            self._answers[akey] = _AnswerEntry(retransmission, entry.peer, response)
            self._schedule("a", akey)

    def transport_failed(self, peer: Peer, now: float) -> list[Event]:
        """Sending to ``peer`` failed (a TCP connection refused or lost, an ICMP unreachable):
        its client transactions end at once instead of waiting for Timer B or F. One whose state
        has no transport error in its figure (an INVITE in Proceeding or Accepted, a non-INVITE
        in Completed) goes on as it was."""
        events: list[Event] = []
        for key, entry in list(self._clients.items()):
            if (entry.peer.transport, entry.peer.host, entry.peer.port) == (peer.transport, peer.host, peer.port) \
                    and entry.transaction.takes("Transport Err"):
                events += self._run(entry, entry.transaction.transport_error(now), self._clients, key)
        return events

    def datagrams_to_send(self) -> list[Outgoing]:
        for key in self._trying_owed:
            entry = self._servers.get(key)
            if entry is not None and isinstance(entry.transaction, ServerInviteTransaction):
                self._run(entry, entry.transaction.trying(), self._servers, key)
        self._trying_owed.clear()
        out, self._outbox = self._outbox, []
        return out

    # ------------------------------------------------------------ timers

    def get_timer(self) -> float | None:
        """The earliest deadline of any transaction (a heap with lazy deletion)."""
        heap = self._deadlines
        while heap:
            deadline, _, kind, key = heap[0]
            if self._deadline_of(kind, key) == deadline:
                return deadline
            heapq.heappop(heap)  # stale: the transaction moved on or is gone
        return None

    def handle_timer(self, now: float) -> list[Event]:
        events: list[Event] = []
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, _, kind, key = heapq.heappop(heap)
            if self._deadline_of(kind, key) != deadline:
                continue
            if kind == "a":
                events += self._fire_answer(key, now)
                continue
            table = self._clients if kind == "c" else self._servers
            entry = table[key]
            events += self._run(entry, entry.transaction.handle_timer(now), table, key)
        return events

    def _fire_answer(self, key: tuple[object, ...], now: float) -> list[Event]:
        answer = self._answers[key]
        events: list[Event] = []
        for output in answer.retransmission.handle_timer(now):
            if isinstance(output, Send):
                self._outbox.append(Outgoing(output.data, answer.peer))
            elif isinstance(output, TimedOut):
                events.append(AnswerTimedOut(answer.response))
                self._answers.pop(key, None)
                return events
        self._schedule("a", key)
        return events

    def _deadline_of(self, kind: str, key: tuple[object, ...]) -> float | None:
        if kind == "a":
            answer = self._answers.get(key)
            return answer.retransmission.next_deadline() if answer is not None else None
        entry = (self._clients if kind == "c" else self._servers).get(key)
        return entry.transaction.next_deadline() if entry is not None else None

    def _schedule(self, kind: str, key: tuple[object, ...]) -> None:
        deadline = self._deadline_of(kind, key)
        if deadline is None:
            if kind == "a":
                self._answers.pop(key, None)  # acknowledged: nothing left to retransmit
            return
        self._sequence += 1
        heapq.heappush(self._deadlines, (deadline, self._sequence, kind, key))

    # ------------------------------------------------------------ plumbing

    def _run(
        self,
        entry: _Entry,
        outputs: Iterable[Output],
        table: dict[tuple[object, ...], _Entry],
        key: tuple[object, ...],
    ) -> list[Event]:
        events: list[Event] = []
        for output in outputs:
            if isinstance(output, Send):
                self._outbox.append(Outgoing(output.data, entry.peer))
            elif isinstance(output, Deliver):
                message: Message = output.message
                if isinstance(message, Response):
                    events.append(ResponseReceived(message, entry.request))
                elif message.method == "ACK":
                    events.append(AckReceived(message, entry.peer))
                else:
                    events.append(RequestReceived(message, entry.peer))
            elif isinstance(output, TimedOut):
                events.append(TransactionTimedOut(entry.request, output.timer))
            elif isinstance(output, TransportFailure):
                events.append(TransactionTimedOut(entry.request, "transport"))
            elif isinstance(output, Terminated):
                table.pop(key, None)
        entry.request = entry.transaction.request  # a finished server transaction keeps less of it
        if key in table:
            self._schedule("c" if table is self._clients else "s", key)
        return events


def _stamp_received(request: Request, source: Peer) -> Request:
    """RFC 3261 §18.2.1 and RFC 3581 §4: note where the request really came from."""
    via = request.top_via
    params: dict[str, str | None] = {}
    if via.host != source.host:
        params["received"] = source.host
    if via.has_rport:
        params["received"] = source.host
        params["rport"] = str(source.port)
    if not params:
        return request
    stamped_via = via.with_params(**params)
    vias = [str(stamped_via), *request.headers.get_all("Via")[1:]]
    headers = Headers((*(("Via", value) for value in vias), *(i for i in request.headers.items if i[0] != "Via")))
    stamped = Request(request.method, request.uri, headers, request.body)
    # the other header lines are those of the request: what it has parsed of them holds
    stamped.known({**request.parsed("call_id", "cseq", "from_addr", "to_addr", "contacts"), "top_via": stamped_via})
    return stamped


def _response_peer(message: Message, source: Peer) -> Peer:
    """Where responses to a request go (RFC 3261 §18.2.2, RFC 3581 §4)."""
    if source.reliable:
        return source
    via = message.top_via
    if via.has_rport or via.received is not None:
        # with rport the response goes back to the source address and port
        if via.has_rport:
            return source
        return Peer(source.transport, via.received or source.host, via.port or 5060)
    host = source.host
    return Peer(source.transport, host, via.port or 5060)


def _copied(request: Request, to_tag: str | None, routes: bool) -> list[tuple[str, str]]:
    # "The Via header field values in the response MUST equal the Via header field
    # values in the request and MUST maintain the same ordering." (RFC 3261 §8.2.6.2)
    copied = request.headers.items  # their names are canonical already
    pairs: list[tuple[str, str]] = [item for item in copied if item[0] == "Via"]
    if routes:
        # "The UAS MUST copy all Record-Route header field values from the request into
        # the response ... and MUST maintain the order of those values." (§12.1.1)
        pairs += [item for item in copied if item[0] == "Record-Route"]
    # "The From field of the response MUST equal the From header field of the request.
    # The Call-ID header field of the response MUST equal the Call-ID header field of
    # the request. The CSeq header field of the response MUST equal the CSeq field of
    # the request." (§8.2.6.2)
    pairs.append(("From", request.required("From")))
    to_value = request.required("To")
    if to_tag is not None and request.to_addr.tag is None:
        # "the URI in the To header field in the response MUST equal the URI in the To
        # header field; additionally, the UAS MUST add a tag" (§8.2.6.2)
        to_value = add_tag(to_value, to_tag)
    pairs += [("To", to_value), ("Call-ID", request.call_id), ("CSeq", request.required("CSeq"))]
    return pairs


def build_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    extra: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """A response to ``request`` with the headers RFC 3261 §8.2.6.2 says to copy,
    copied byte for byte; ``to_tag`` is added to a To without a tag unless the
    status is 100 (when the To has a tag already, it is kept as it is)."""
    tag = to_tag if status > 100 else None
    routes = 100 < status < 300
    held = vars(request).get("_copied")  # a 180 and its 200 copy the same lines: once
    if held is not None and held[0] == tag and held[1] == routes:
        pairs = list(held[2])
    else:
        pairs = _copied(request, tag, routes)
        vars(request)["_copied"] = (tag, routes, tuple(pairs))
    pairs += [(canonical_name(name), value) for name, value in extra]
    if content_type is not None:
        pairs.append(("Content-Type", content_type))
    pairs.append(("Content-Length", str(len(body))))
    return Response(status, reason or reason_phrase(status), Headers(tuple(pairs)), body)
