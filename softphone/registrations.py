"""The registrations of a user agent's accounts, without I/O: each one's REGISTER
transactions, refresh and retry deadlines, and the CRLF keep-alives on its flow.

The user agent (softphone.agent) owns one ``RegistrationSet``: it hands it the answers
to REGISTERs, asks it for its next deadline and runs ``handle_timer(now)``.
"""

from __future__ import annotations

import heapq
import logging
from enum import StrEnum

from softphone.frozen import dataclass
from softphone.sip.dialog import LocalAddress
from softphone.sip.endpoint import Endpoint, Outgoing, Peer, literal_peer
from softphone.sip.message import Request, Response
from softphone.sip.registration import Registration, RegistrationChanged, RegistrationCommand, SendRegister
from softphone.sip.uri import SipUri, Uri

log = logging.getLogger(__name__)

KEEPALIVE = b"\r\n\r\n"  # RFC 5626 §4.4.1: a double CRLF "ping"


class RegistrationTimer(StrEnum):
    REFRESH = "refresh"  # the registration's own deadline: refresh or retry
    KEEPALIVE = "keepalive"


@dataclass(frozen=True)
class RegistrationUpdate:
    """A registration changed state (registered, failed, unregistered ...)."""

    aor: str
    change: RegistrationChanged


@dataclass(frozen=True)
class ResolveRegister:
    """A REGISTER whose next hop is a name: the edge resolves it and calls
    ``RegistrationSet.send`` (or ``unreachable``)."""

    call_id: str
    request: Request
    target: SipUri
    transport: str


RegistrationOutput = RegistrationUpdate | ResolveRegister


@dataclass
class _Record:
    registration: Registration
    transport: str
    flow: Peer | None = None  # where its REGISTERs go (keep-alives follow them)
    keepalive_at: float | None = None


class RegistrationSet:
    def __init__(self, endpoint: Endpoint, keepalive_period: float = 30.0) -> None:
        self.endpoint = endpoint
        self.keepalive_period = keepalive_period
        self.keepalives_sent = 0
        self._records: dict[str, _Record] = {}  # by the registration's Call-ID
        self._heap: list[tuple[float, int, str, RegistrationTimer]] = []
        self._sequence = 0
        self._outbox: list[Outgoing] = []

    @property
    def registrations(self) -> list[Registration]:
        return [r.registration for r in self._records.values()]

    def owns(self, call_id: str) -> bool:
        return call_id in self._records

    def local_for(self, aor: Uri) -> LocalAddress | None:
        """Our address for the calls of the account ``aor`` while its registration holds a
        public address learnt from the registrar (behind a NAT): None otherwise."""
        for record in self._records.values():
            registration = record.registration
            if registration.registered and registration.public is not None and registration.aor.uri == aor:
                return registration.local_for_calls
        return None

    def unregistering(self) -> bool:
        return any(r.registration.state == "unregistering" for r in self._records.values())

    # ------------------------------------------------------------ actions

    def add(self, registration: Registration, transport: str, now: float) -> list[RegistrationOutput]:
        record = _Record(registration, transport)
        self._records[registration.call_id] = record
        if self.keepalive_period > 0:
            self._arm_keepalive(record, now + self.keepalive_period)
        return self._run(record, registration.start(now), now)

    def unregister_all(self, now: float) -> list[RegistrationOutput]:
        """RFC 3261 §10.2.2: remove every binding (Expires: 0)."""
        out: list[RegistrationOutput] = []
        for record in self._records.values():
            if record.registration.state not in ("unregistered", "idle", "unregistering"):
                out += self._run(record, record.registration.unregister(now), now)
        return out

    def send(self, call_id: str, request: Request, peer: Peer, now: float) -> None:
        record = self._records.get(call_id)
        if record is not None:
            record.flow = peer
        self.endpoint.send_request(request, peer, now)

    def unreachable(self, call_id: str, request: Request, now: float) -> list[RegistrationOutput]:
        record = self._records.get(call_id)
        if record is None:
            return []
        log.warning("registration of %s: the registrar cannot be reached", record.registration.aor.uri)
        return self._run(record, record.registration.on_timeout(request, now), now)

    # ------------------------------------------------------------ events

    def on_response(self, response: Response, now: float) -> list[RegistrationOutput]:
        record = self._records.get(response.call_id)
        if record is None:
            return []
        return self._run(record, record.registration.on_response(response, now), now)

    def on_timeout(self, request: Request, now: float) -> list[RegistrationOutput]:
        record = self._records.get(request.call_id)
        if record is None:
            return []
        return self._run(record, record.registration.on_timeout(request, now), now)

    def datagrams_to_send(self) -> list[Outgoing]:
        out, self._outbox = self._outbox, []
        return out

    # ------------------------------------------------------------ timers

    def get_timer(self) -> float | None:
        heap = self._heap
        while heap:
            deadline, _, call_id, timer = heap[0]
            if self._valid(deadline, call_id, timer):
                return deadline
            heapq.heappop(heap)  # stale: the deadline moved or the registration is gone
        return None

    def handle_timer(self, now: float) -> list[RegistrationOutput]:
        out: list[RegistrationOutput] = []
        while self._heap and self._heap[0][0] <= now:
            deadline, _, call_id, timer = heapq.heappop(self._heap)
            if not self._valid(deadline, call_id, timer):
                continue
            record = self._records[call_id]
            if timer == RegistrationTimer.KEEPALIVE:
                self._keepalive(record, now)
            else:
                out += self._run(record, record.registration.handle_timer(now), now)
        return out

    def _valid(self, deadline: float, call_id: str, timer: RegistrationTimer) -> bool:
        record = self._records.get(call_id)
        if record is None:
            return False
        if timer == RegistrationTimer.KEEPALIVE:
            return record.keepalive_at == deadline
        return record.registration.next_deadline() == deadline

    def _push(self, deadline: float, call_id: str, timer: RegistrationTimer) -> None:
        self._sequence += 1
        heapq.heappush(self._heap, (deadline, self._sequence, call_id, timer))

    def _arm_keepalive(self, record: _Record, deadline: float) -> None:
        record.keepalive_at = deadline
        self._push(deadline, record.registration.call_id, RegistrationTimer.KEEPALIVE)

    def _keepalive(self, record: _Record, now: float) -> None:
        """RFC 5626 §4.4.1: a double CRLF on the flow to the registrar keeps NAT bindings
        (and TCP connections) open; the registrar ignores it or answers with a single CRLF."""
        registration, peer = record.registration, record.flow
        record.keepalive_at = None
        if registration.registered and peer is not None:
            self._outbox.append(Outgoing(KEEPALIVE, peer))
            self.keepalives_sent += 1
            log.info("keep-alive (CRLF CRLF) to %s:%s/%s", peer.host, peer.port, peer.transport)
        if registration.state not in ("unregistering", "unregistered"):
            self._arm_keepalive(record, now + self.keepalive_period)

    # ------------------------------------------------------------ carrying out commands

    def _run(self, record: _Record, commands: list[RegistrationCommand], now: float) -> list[RegistrationOutput]:
        registration = record.registration
        out: list[RegistrationOutput] = []
        for command in commands:
            if isinstance(command, SendRegister):
                out += self._send_register(record, command, now)
            else:
                out.append(RegistrationUpdate(str(registration.aor.uri), command))
        deadline = registration.next_deadline()
        if deadline is not None:
            self._push(deadline, registration.call_id, RegistrationTimer.REFRESH)
        return out

    def _send_register(self, record: _Record, command: SendRegister, now: float) -> list[RegistrationOutput]:
        peer = literal_peer(command.target, record.transport)
        if peer is None:
            return [ResolveRegister(record.registration.call_id, command.request, command.target, record.transport)]
        self.send(record.registration.call_id, command.request, peer, now)
        return []
