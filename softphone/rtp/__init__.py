"""RTP and RTCP without I/O: packets (RFC 3550, RFC 4585, RFC 5104), statistics,
session bookkeeping and the audio jitter buffer."""
from .jitter import JitterBuffer, Missing, Played
from .packet import RtpError, RtpPacket, is_rtcp
from .rtcp import (
    Bye,
    FullIntraRequest,
    GenericNack,
    PictureLossIndication,
    ReceiverReport,
    ReportBlock,
    RtcpError,
    RtcpPacket,
    SenderReport,
    SourceDescription,
    middle_32,
    ntp_from_unix,
    parse_compound,
    serialize_compound,
)
from .session import RtcpScheduler, RtpSender, RtpSession
from .stats import ReceiverStatistics, SenderStatistics, round_trip_time

__all__ = [
    "Bye",
    "FullIntraRequest",
    "GenericNack",
    "JitterBuffer",
    "Missing",
    "PictureLossIndication",
    "Played",
    "ReceiverReport",
    "ReceiverStatistics",
    "ReportBlock",
    "RtcpError",
    "RtcpPacket",
    "RtcpScheduler",
    "RtpError",
    "RtpPacket",
    "RtpSender",
    "RtpSession",
    "SenderReport",
    "SenderStatistics",
    "SourceDescription",
    "is_rtcp",
    "middle_32",
    "ntp_from_unix",
    "parse_compound",
    "round_trip_time",
    "serialize_compound",
]
