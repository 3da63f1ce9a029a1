"""Blind call transfer (RFC 3515) on a call's dialog, without I/O.

As transferor we send REFER (``refer``), take the peer's NOTIFYs of the implicit
``refer`` subscription (``on_notify``) and hang up once they report a 2xx. As transferee
we answer a REFER 202 and NOTIFY ``100 Trying`` at once (``on_refer``); the user agent
places the new call and reports its progress (``notify``) until a final status ends the
subscription.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from softphone.call.commands import CallEnded, Command, SendRequest, SendResponse, StateChanged, TransferUpdate
from softphone.call.states import CallState, Direction, EndCause, Progress, TransferState
from softphone.errors import ParseError, StateError
from softphone.sip.auth import AuthError
from softphone.sip.endpoint import reason_phrase
from softphone.sip.headers import NameAddress
from softphone.sip.message import Request, Response
from softphone.sip.refer import REFER_EVENT, SIPFRAG_CONTENT_TYPE, StatusFragment, SubscriptionState, event_package
from softphone.sip.refer import refer_target as parse_refer_target
from softphone.sip.uri import SipUri

if TYPE_CHECKING:
    from softphone.call.machine import Call

log = logging.getLogger(__name__)

SUBSCRIPTION_EXPIRES = 60  # seconds our NOTIFYs give the implicit subscription while the new call runs


@dataclass
class Referral:
    """One REFER and its implicit subscription, seen from either end."""

    direction: Direction
    target: SipUri
    refer: Request  # ours (OUTGOING) or the peer's (INCOMING)
    event: str = REFER_EVENT  # the Event header of the NOTIFYs we send (INCOMING)
    done: bool = False  # its outcome is known and was reported
    challenged: bool = False  # OUTGOING: our REFER was sent again with credentials


@dataclass
class Transfers:
    """A call's transfers: the last REFER each way."""

    sent: Referral | None = None
    received: Referral | None = None
    refers_received: int = 0


# ---------------------------------------------------------------- we transfer the peer


def refer(call: Call, target: SipUri) -> list[Command]:
    """Ask the peer to call ``target`` (blind transfer): an in-dialog REFER."""
    dialog = call.dialog
    if call.state != CallState.CONFIRMED or dialog is None:
        raise StateError("Call", call.state, "transfer")
    sent = call.transfers.sent
    if sent is not None and not sent.done:
        raise StateError("Call", "transfer pending", "transfer")
    extra = (("Refer-To", str(NameAddress(target))), ("Referred-By", str(NameAddress(dialog.local_uri.uri))))
    request = call._auth.authorize(
        dialog.create_request("REFER", call.setup.local, call._contact(), user_agent=call.setup.user_agent, extra=extra)
    )
    call.transfers.sent = Referral(Direction.OUTGOING, target, request)
    requested = TransferUpdate(Direction.OUTGOING, TransferState.REQUESTED, target)
    return [SendRequest(request, dialog.next_hop()), requested]


def on_refer_response(call: Call, response: Response, request: Request) -> list[Command]:
    sent = call.transfers.sent
    if sent is None or sent.done or request.cseq != sent.refer.cseq or response.status < 200:
        return []
    status = response.status
    if status < 300:
        return [TransferUpdate(Direction.OUTGOING, TransferState.ACCEPTED, sent.target, status, response.reason)]
    if status in (401, 407) and not sent.challenged and call.dialog is not None:
        try:
            call._auth.challenged(response)
        except AuthError as exc:
            log.info("call %s: REFER challenged: %s", call.call_id, exc)
        else:
            # RFC 3261 §22.2: the request again with credentials and a new CSeq
            headers = [(n, v) for n, v in sent.refer.headers.items if n in ("Refer-To", "Referred-By")]
            again = call.dialog.create_request("REFER", call.setup.local, call._contact(),
                                               user_agent=call.setup.user_agent, extra=tuple(headers))
            sent.refer, sent.challenged = call._auth.authorize(again), True
            return [SendRequest(sent.refer, call.dialog.next_hop())]
    return _outcome(sent, status, response.reason)


def on_refer_timeout(call: Call, request: Request) -> list[Command]:
    sent = call.transfers.sent
    if sent is None or sent.done or request.cseq != sent.refer.cseq:
        return []
    return _outcome(sent, 408, "no answer to REFER")


def on_notify(call: Call, request: Request) -> list[Command]:
    """A NOTIFY of the subscription our REFER created: answer it and report the progress;
    a final 2xx means the peer reached the target, and we hang up (as linphone and baresip do)."""
    try:
        package, event_id = event_package(request.headers.get("Event"))
    except ParseError as exc:
        return [SendResponse(request, call._reply(request, 400, reason=f"Bad Event: {exc}"[:80]))]
    if package != REFER_EVENT:
        # RFC 3265 §7.3.2: 489 (Bad Event) is the answer for an event package not understood
        return [SendResponse(request, call._reply(request, 489, reason="Bad Event"))]
    sent = call.transfers.sent
    if sent is None or (event_id is not None and event_id != str(sent.refer.cseq.number)):
        # RFC 3265 §3.2.4: if a NOTIFY matches none of its subscriptions, the subscriber
        # "MUST return a "481 Subscription does not exist" response"
        return [SendResponse(request, call._reply(request, 481, reason="Subscription Does Not Exist"))]
    try:
        fragment = StatusFragment.parse(request.body)
        subscription = SubscriptionState.parse(request.headers.get("Subscription-State"))
    except ParseError as exc:
        return [SendResponse(request, call._reply(request, 400, reason=f"Bad Request: {exc}"[:80]))]
    ok = SendResponse(request, call._reply(request, 200))
    if sent.done:
        return [ok]
    if fragment.status < 200 and not subscription.terminated:
        return [ok, TransferUpdate(Direction.OUTGOING, TransferState.PROGRESS, sent.target, fragment.status,
                                   fragment.reason)]
    commands: list[Command] = [ok, *_outcome(sent, fragment.status, fragment.reason)]
    if 200 <= fragment.status < 300:
        commands += call.hangup(EndCause.TRANSFERRED, f"transferred to {sent.target}")
    return commands


def _outcome(sent: Referral, status: int, reason: str) -> list[Command]:
    sent.done = True
    state = TransferState.SUCCEEDED if 200 <= status < 300 else TransferState.FAILED
    return [TransferUpdate(Direction.OUTGOING, state, sent.target, status, reason)]


# ---------------------------------------------------------------- the peer transfers us


def on_refer(call: Call, request: Request) -> list[Command]:
    """The peer asks us to call someone: 202 and NOTIFY 100 at once; the user agent places
    the call (on the REQUESTED update) and reports it through ``notify``."""
    try:
        target = parse_refer_target(request)
    except ParseError as exc:
        # RFC 3515 §2.4.1: "A REFER request MUST contain exactly one Refer-To header field value."
        return [SendResponse(request, call._reply(request, 400, reason=f"Bad Refer-To: {exc}"[:80]))]
    if call.state != CallState.CONFIRMED:
        return [SendResponse(request, call._reply(request, 403, reason="Call Not Established"))]
    received = call.transfers.received
    if received is not None and not received.done:
        return [SendResponse(request, call._reply(request, 491, reason="Transfer In Progress"))]
    call.transfers.refers_received += 1
    # RFC 3515 §2.4.6: for a REFER after the first in a dialog, the NOTIFYs "MUST contain an
    # id parameter" (the REFER's CSeq number); the first REFER's carry none, as its sender expects
    event = REFER_EVENT if call.transfers.refers_received == 1 else f"{REFER_EVENT};id={request.cseq.number}"
    call.transfers.received = Referral(Direction.INCOMING, target, request, event)
    accepted = call._reply(request, 202, extra=(("Contact", f"<{call._contact()}>"),))
    return [SendResponse(request, accepted), *notify(call, 100, "Trying"),
            TransferUpdate(Direction.INCOMING, TransferState.REQUESTED, target)]


def notify(call: Call, status: int, reason: str | None = None) -> list[Command]:
    """Tell the transferor how the new call goes: a NOTIFY with the status line of its
    last response; a final status ends the subscription."""
    received, dialog = call.transfers.received, call.dialog
    if received is None or received.done or dialog is None:
        return []
    final = status >= 200
    if final:
        received.done = True
        subscription = SubscriptionState("terminated", reason="noresource")
    else:
        subscription = SubscriptionState("active", expires=SUBSCRIPTION_EXPIRES)
    reason = reason or reason_phrase(status)
    request = call._auth.authorize(dialog.create_request(
        "NOTIFY", call.setup.local, call._contact(), user_agent=call.setup.user_agent,
        body=bytes(StatusFragment(status, reason)), content_type=SIPFRAG_CONTENT_TYPE,
        extra=(("Event", received.event), ("Subscription-State", str(subscription))),
    ))
    commands: list[Command] = [SendRequest(request, dialog.next_hop())]
    if status > 100:
        state = TransferState.PROGRESS if not final else (
            TransferState.SUCCEEDED if status < 300 else TransferState.FAILED)
        commands.append(TransferUpdate(Direction.INCOMING, state, received.target, status, reason))
    return commands


def status_to_report(command: StateChanged | CallEnded) -> int | None:
    """The status a NOTIFY reports for a command of the call placed for a transfer (None: nothing to report)."""
    if isinstance(command, CallEnded):
        if command.sip_code is not None and command.sip_code >= 300:
            return command.sip_code
        return 487 if command.cause == EndCause.CANCELLED else 503  # cancelled by us; no answer or no route
    if command.state == Progress.ANSWERED:
        return 200
    if command.state in (Progress.RINGING, Progress.PROGRESS, Progress.EARLY_MEDIA) and command.sip_code:
        return command.sip_code
    return None


def on_notify_response(call: Call, response: Response) -> None:
    if response.status >= 300:
        log.info("call %s: the transferor answered our NOTIFY %s %s", call.call_id, response.status, response.reason)
