"""Requests sent to located targets, without I/O: where each goes, and where it goes
next when that target fails (RFC 3263 §4.3), for calls, registrations and in-dialog
requests alike.

The user agent (softphone.agent) sends every request whose next hop it knows through
``Targets.send`` and offers every final answer and timeout to ``Targets.fail_over``
before acting on it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from softphone.call import Call
from softphone.call.states import CallState
from softphone.frozen import dataclass
from softphone.registrations import RegistrationSet
from softphone.sip.endpoint import Endpoint, Peer, ResponseReceived, TransactionTimedOut
from softphone.sip.locate import Failover, Target, is_failure
from softphone.sip.message import Request

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Moved:
    """A request failed over: the new transaction went to ``target``; ``initial`` when it
    was a call's initial INVITE (its CANCEL now goes to ``target`` too)."""

    request: Request
    target: Target
    initial: bool


class Targets:
    def __init__(self, endpoint: Endpoint, registrations: RegistrationSet) -> None:
        self.endpoint = endpoint
        self.registrations = registrations
        self.failover = Failover()

    def send(self, call_id: str, request: Request, peer: Peer, now: float, alternatives: Sequence[Target] = ()) -> None:
        """Send ``request`` to ``peer``; ``alternatives`` are the next targets to try if it fails."""
        if request.method not in ("ACK", "CANCEL"):
            # RFC 3261 §9.1: a CANCEL goes where its INVITE went, never elsewhere
            self.failover.remember(request, call_id, alternatives)
        if self.registrations.owns(call_id):
            self.registrations.send(call_id, request, peer, now)
        else:
            self.endpoint.send_request(request, peer, now)

    def forget_call(self, call_id: str) -> None:
        self.failover.forget_call(call_id)

    def fail_over(self, event: ResponseReceived | TransactionTimedOut, call: Call | None, now: float) -> Moved | None:
        """RFC 3263 §4.3: after a timeout, a transport failure or a 503 the request goes to
        the next target as a new transaction. None when the event stands (no failure, or no
        target left, or the call is no longer calling)."""
        request = event.request
        status = event.response.status if isinstance(event, ResponseReceived) else None
        if status is not None and status < 200:
            return None
        if not is_failure(status):
            self.failover.forget(request)
            return None
        invite = call.invite if call is not None else None
        initial = invite is not None and request.method == "INVITE" and invite.top_via.branch == request.top_via.branch
        if call is not None and initial and call.state != CallState.CALLING:
            self.failover.forget(request)
            return None
        found = self.failover.next(request)
        if found is None:
            return None
        retry, target = found
        why = f"answered {status}" if status is not None else f"failed ({getattr(event, 'timer', '')})"
        log.info("%s to %s %s: trying %s", request.method, request.uri, why, target)
        if call is not None and initial:
            call.invite = retry
        if self.registrations.owns(request.call_id):
            self.registrations.send(request.call_id, retry, target.peer, now)
        else:
            self.endpoint.send_request(retry, target.peer, now)
        return Moved(retry, target, initial)
