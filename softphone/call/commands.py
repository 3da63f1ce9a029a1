"""What a call says to the phone (commands), what it needs to know (CallSetup), and its
state table."""

from __future__ import annotations

from softphone.call.states import CallResult, CallState, Direction, EndCause, Progress, TransferState
from softphone.frozen import dataclass
from softphone.sdp.negotiate import NegotiatedStream, SessionConfig
from softphone.sip.auth import Credentials
from softphone.sip.dialog import LocalAddress
from softphone.sip.headers import NameAddress
from softphone.sip.message import Request, Response
from softphone.sip.uri import SipUri

SDP = "application/sdp"
# RFC 3261 §20.5: the methods this user agent supports, exactly
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REFER, NOTIFY"

S = CallState

# (state, input) -> next state. Anything else is illegal and raises StateError.
TRANSITIONS: dict[tuple[CallState, str], CallState] = {
    # caller
    (S.IDLE, "invite"): S.CALLING,
    (S.CALLING, "provisional"): S.EARLY,
    (S.EARLY, "provisional"): S.EARLY,
    (S.CALLING, "accepted"): S.CONFIRMED,
    (S.EARLY, "accepted"): S.CONFIRMED,
    (S.CALLING, "failed"): S.TERMINATED,
    (S.EARLY, "failed"): S.TERMINATED,
    (S.CALLING, "cancel"): S.CANCELLING,
    (S.CALLING, "challenge"): S.CALLING,
    (S.EARLY, "challenge"): S.CALLING,
    (S.EARLY, "cancel"): S.CANCELLING,
    (S.CANCELLING, "provisional"): S.CANCELLING,
    (S.CANCELLING, "failed"): S.TERMINATED,
    (S.CANCELLING, "accepted"): S.TERMINATING,
    # callee
    (S.IDLE, "offer"): S.INCOMING,
    (S.INCOMING, "ring"): S.RINGING,
    (S.INCOMING, "answer"): S.ANSWERED,
    (S.RINGING, "answer"): S.ANSWERED,
    (S.INCOMING, "reject"): S.TERMINATED,
    (S.RINGING, "reject"): S.TERMINATED,
    (S.INCOMING, "cancelled"): S.TERMINATED,
    (S.RINGING, "cancelled"): S.TERMINATED,
    (S.ANSWERED, "ack"): S.CONFIRMED,
    (S.ANSWERED, "ack_timeout"): S.TERMINATING,
    (S.ANSWERED, "hangup"): S.TERMINATING,
    (S.ANSWERED, "bye"): S.TERMINATED,
    # both
    (S.CONFIRMED, "hangup"): S.TERMINATING,
    (S.CONFIRMED, "bye"): S.TERMINATED,
    (S.CONFIRMED, "dialog_lost"): S.TERMINATING,
    (S.TERMINATING, "bye"): S.TERMINATED,
    (S.TERMINATING, "bye_done"): S.TERMINATED,
}


# ------------------------------------------------------------------ commands


@dataclass(frozen=True)
class SendRequest:
    request: Request
    target: SipUri


@dataclass(frozen=True)
class SendResponse:
    request: Request
    response: Response


@dataclass(frozen=True)
class MediaUpdate:
    """Start media, or follow a new negotiation (address, port, codec, direction)."""

    streams: tuple[NegotiatedStream, ...]


@dataclass(frozen=True)
class StateChanged:
    state: Progress
    sip_code: int | None = None


@dataclass(frozen=True)
class CallEnded:
    result: CallResult
    sip_code: int | None
    reason: str  # for people
    cause: EndCause  # for decisions


@dataclass(frozen=True)
class TransferUpdate:
    """How a transfer goes. OUTGOING: we asked the peer to call ``target`` (our REFER and the
    peer's NOTIFYs); INCOMING: the peer asked us to (its REFER, our new call, our NOTIFYs)."""

    direction: Direction
    state: TransferState
    target: SipUri
    sip_code: int | None = None
    reason: str = ""
    new_call_id: str | None = None  # INCOMING: the call placed to the target


Command = SendRequest | SendResponse | MediaUpdate | StateChanged | CallEnded | TransferUpdate


@dataclass(frozen=True)
class CallSetup:
    """What a call needs to know about us."""

    local: LocalAddress
    identity: NameAddress  # our From / To (without tag)
    media: SessionConfig
    user_agent: str | None = None
    outbound_route: tuple[NameAddress, ...] = ()
    credentials: tuple[Credentials, ...] = ()


