"""Calls: the INVITE dialog state machine (pure) and the commands it gives the phone."""

from softphone.call.commands import (
    TRANSITIONS,
    CallEnded,
    CallSetup,
    Command,
    MediaStop,
    MediaUpdate,
    SendRequest,
    SendResponse,
    StateChanged,
)
from softphone.call.machine import Call

__all__ = [
    "TRANSITIONS",
    "Call",
    "CallEnded",
    "CallSetup",
    "Command",
    "MediaStop",
    "MediaUpdate",
    "SendRequest",
    "SendResponse",
    "StateChanged",
]
