"""Calls: the INVITE dialog state machine (pure), the commands it gives the user agent,
and the words calls are described in."""

from softphone.call.commands import (
    ALLOW,
    SDP,
    TRANSITIONS,
    CallEnded,
    CallSetup,
    Command,
    MediaUpdate,
    SendRequest,
    SendResponse,
    StateChanged,
    TransferUpdate,
)
from softphone.call.machine import Call
from softphone.call.states import CallResult, CallState, Direction, EndCause, Progress, TransferState

__all__ = [
    "ALLOW",
    "SDP",
    "TRANSITIONS",
    "Call",
    "CallEnded",
    "CallResult",
    "CallSetup",
    "CallState",
    "Command",
    "Direction",
    "EndCause",
    "MediaUpdate",
    "Progress",
    "SendRequest",
    "SendResponse",
    "StateChanged",
    "TransferState",
    "TransferUpdate",
]
