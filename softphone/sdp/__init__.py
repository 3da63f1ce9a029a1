"""SDP (RFC 4566) session descriptions and the offer/answer model (RFC 3264)."""

from softphone.sdp.model import (
    Attribute,
    Connection,
    MediaDescription,
    Origin,
    SessionDescription,
    parse_fmtp,
)
from softphone.sdp.negotiate import (
    CodecSpec,
    NegotiatedStream,
    SessionConfig,
    StreamConfig,
    answer_offer,
    build_offer,
    process_answer,
)

__all__ = [
    "Attribute",
    "CodecSpec",
    "Connection",
    "MediaDescription",
    "NegotiatedStream",
    "Origin",
    "SessionConfig",
    "SessionDescription",
    "StreamConfig",
    "answer_offer",
    "build_offer",
    "parse_fmtp",
    "process_answer",
]
