"""The words a call is described in: its states, what it reports, how it ended.

String enums, so that they compare equal to their value and go into JSON as it is.
"""

from __future__ import annotations

from enum import StrEnum


class CallState(StrEnum):
    """The states of the INVITE dialog machine (call/commands.py's TRANSITIONS)."""

    IDLE = "idle"
    CALLING = "calling"  # our INVITE is out, no provisional answer yet
    EARLY = "early"  # a provisional answer came back
    CANCELLING = "cancelling"
    INCOMING = "incoming"  # an INVITE came in
    RINGING = "ringing"  # we sent 180
    ANSWERED = "answered"  # we sent 200, waiting for the ACK
    CONFIRMED = "confirmed"
    TERMINATING = "terminating"  # our BYE is out
    TERMINATED = "terminated"


class Progress(StrEnum):
    """What a call reports as it goes (the ``state`` events of the API and ``--json``)."""

    CALLING = "calling"
    AUTHENTICATING = "authenticating"
    TRYING = "trying"
    RINGING = "ringing"
    PROGRESS = "progress"
    EARLY_MEDIA = "early_media"
    INCOMING = "incoming"
    CANCELLING = "cancelling"
    ANSWERED = "answered"
    CONFIRMED = "confirmed"
    HELD = "held"
    HELD_BY_PEER = "held_by_peer"
    RESUMED = "resumed"
    REINVITE_FAILED = "reinvite_failed"
    ERROR = "error"
    TERMINATING = "terminating"
    ENDED = "ended"


class CallResult(StrEnum):
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    ERROR = "error"


class TransferState(StrEnum):
    """How a transfer (REFER, RFC 3515) goes, ours or the peer's (the ``transfer`` events)."""

    REQUESTED = "requested"  # a REFER is sent, or one came in
    ACCEPTED = "accepted"  # the REFER was accepted (202)
    CALLING = "calling"  # the peer transferred us: the new call is placed
    PROGRESS = "progress"  # a provisional status of the new call (NOTIFY 1xx)
    SUCCEEDED = "succeeded"  # the new call was answered (final NOTIFY 2xx)
    FAILED = "failed"  # the REFER was refused, or the new call failed


class Direction(StrEnum):
    OUTGOING = "outgoing"
    INCOMING = "incoming"


class EndCause(StrEnum):
    """Why a call ended, for decisions (the reason text beside it is for people)."""

    LOCAL_HANGUP = "local_hangup"
    REMOTE_HANGUP = "remote_hangup"
    REJECTED = "rejected"  # the peer answered with a failure
    DECLINED = "declined"  # we answered with a failure
    CANCELLED = "cancelled"  # we cancelled our INVITE
    CANCELLED_BY_CALLER = "cancelled_by_caller"
    NO_RESPONSE = "no_response"
    TRANSPORT_ERROR = "transport_error"
    AUTH_FAILED = "auth_failed"
    BAD_SDP = "bad_sdp"
    NO_ACK = "no_ack"
    NO_RTP = "no_rtp"
    RING_TIMEOUT = "ring_timeout"
    IN_CALL_TIMEOUT = "in_call_timeout"
    WINDOW_CLOSED = "window_closed"
    TRANSFERRED = "transferred"  # a transfer (REFER) succeeded: the call was handed on
    # refused by the incoming-call policy before a call existed
    NOT_ALLOWED = "not_allowed"
    BUSY = "busy"
    POLICY = "policy"
    UNAVAILABLE = "unavailable"
