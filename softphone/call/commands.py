"""What a call says to the phone (commands), what it needs to know (CallSetup), and its
state table."""

from __future__ import annotations

from dataclasses import dataclass

from softphone.sdp.negotiate import NegotiatedStream, SessionConfig
from softphone.sip.auth import Credentials
from softphone.sip.dialog import LocalAddress
from softphone.sip.headers import NameAddress
from softphone.sip.message import Request, Response
from softphone.sip.uri import SipUri

SDP = "application/sdp"
ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE"

# (state, input) -> next state. Anything else is illegal and raises StateError.
TRANSITIONS: dict[tuple[str, str], str] = {
    # caller
    ("idle", "invite"): "calling",
    ("calling", "provisional"): "early",
    ("early", "provisional"): "early",
    ("calling", "accepted"): "confirmed",
    ("early", "accepted"): "confirmed",
    ("calling", "failed"): "terminated",
    ("early", "failed"): "terminated",
    ("calling", "cancel"): "cancelling",
    ("calling", "challenge"): "calling",
    ("early", "challenge"): "calling",
    ("early", "cancel"): "cancelling",
    ("cancelling", "provisional"): "cancelling",
    ("cancelling", "failed"): "terminated",
    ("cancelling", "accepted"): "terminating",
    # callee
    ("idle", "offer"): "incoming",
    ("incoming", "ring"): "ringing",
    ("incoming", "answer"): "answered",
    ("ringing", "answer"): "answered",
    ("incoming", "reject"): "terminated",
    ("ringing", "reject"): "terminated",
    ("incoming", "cancelled"): "terminated",
    ("ringing", "cancelled"): "terminated",
    ("answered", "ack"): "confirmed",
    ("answered", "ack_timeout"): "terminating",
    ("answered", "hangup"): "terminating",
    ("answered", "bye"): "terminated",
    # both
    ("confirmed", "hangup"): "terminating",
    ("confirmed", "bye"): "terminated",
    ("confirmed", "dialog_lost"): "terminating",
    ("terminating", "bye"): "terminated",
    ("terminating", "bye_done"): "terminated",
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
class MediaStop:
    pass


@dataclass(frozen=True)
class StateChanged:
    state: str
    sip_code: int | None = None


@dataclass(frozen=True)
class CallEnded:
    result: str  # completed, rejected, cancelled, timeout, error
    sip_code: int | None
    reason: str


Command = SendRequest | SendResponse | MediaUpdate | MediaStop | StateChanged | CallEnded


@dataclass(frozen=True)
class CallSetup:
    """What a call needs to know about us."""

    local: LocalAddress
    identity: NameAddress  # our From / To (without tag)
    media: SessionConfig
    user_agent: str | None = None
    outbound_route: tuple[NameAddress, ...] = ()
    credentials: tuple[Credentials, ...] = ()


