"""RTP data packets (RFC 3550 §5.1) and RTP/RTCP demultiplexing (RFC 5761 §4).

    0                   1                   2                   3
    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |V=2|P|X|  CC   |M|     PT      |       sequence number         |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |                           timestamp                           |
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |           synchronization source (SSRC) identifier            |
   +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
   |            contributing source (CSRC) identifiers             |
"""
from __future__ import annotations

import struct

from softphone.frozen import dataclass

RTP_VERSION = 2
FIXED_HEADER_SIZE = 12
MAX_CSRC_COUNT = 15

_FIXED = struct.Struct("!BBHII")
_EXTENSION = struct.Struct("!HH")


class RtpError(ValueError):
    """A malformed RTP packet: callers count it and drop it."""


@dataclass(frozen=True)
class RtpPacket:
    """One RTP data packet; `parse()` and `bytes()` are exact inverses."""

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None
    padding: int = 0

    def __post_init__(self) -> None:
        _check_range("payload_type", self.payload_type, 0x7F)
        _check_range("sequence", self.sequence, 0xFFFF)
        _check_range("timestamp", self.timestamp, 0xFFFFFFFF)
        _check_range("ssrc", self.ssrc, 0xFFFFFFFF)
        _check_range("padding", self.padding, 0xFF)
        if len(self.csrcs) > MAX_CSRC_COUNT:
            raise ValueError(f"at most {MAX_CSRC_COUNT} CSRCs, got {len(self.csrcs)}")
        for csrc in self.csrcs:
            _check_range("csrc", csrc, 0xFFFFFFFF)
        if self.extension is not None:
            profile, data = self.extension
            _check_range("extension profile", profile, 0xFFFF)
            if len(data) % 4 or len(data) > 4 * 0xFFFF:
                raise ValueError("extension data must be a whole number of 32-bit words")

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """Parse one RTP packet; RtpError when the packet is malformed."""
        if len(data) < FIXED_HEADER_SIZE:
            raise RtpError(f"RTP packet too short ({len(data)} bytes)")
        first, second, sequence, timestamp, ssrc = _FIXED.unpack_from(data)
        if first >> 6 != RTP_VERSION:
            raise RtpError(f"RTP version {first >> 6}, expected {RTP_VERSION}")
        end = _payload_end(data, has_padding=bool(first & 0x20))
        csrcs, offset = _parse_csrcs(data, first & 0x0F, end)
        extension = None
        if first & 0x10:
            extension, offset = _parse_extension(data, offset, end)
        return cls(
            payload_type=second & 0x7F,
            sequence=sequence,
            timestamp=timestamp,
            ssrc=ssrc,
            payload=bytes(data[offset:end]),
            marker=bool(second & 0x80),
            csrcs=csrcs,
            extension=extension,
            padding=len(data) - end,
        )

    def __bytes__(self) -> bytes:
        first = RTP_VERSION << 6 | len(self.csrcs)
        if self.padding:
            first |= 0x20
        if self.extension is not None:
            first |= 0x10
        second = self.payload_type | (0x80 if self.marker else 0)
        parts = [_FIXED.pack(first, second, self.sequence, self.timestamp, self.ssrc)]
        parts.extend(struct.pack("!I", csrc) for csrc in self.csrcs)
        if self.extension is not None:
            profile, data = self.extension
            parts.append(_EXTENSION.pack(profile, len(data) // 4))
            parts.append(data)
        parts.append(self.payload)
        if self.padding:
            # "The last octet of the padding contains a count of how many padding
            # octets should be ignored, including itself." (RFC 3550 §5.1)
            parts.append(bytes(self.padding - 1) + bytes([self.padding]))
        return b"".join(parts)


def pack(payload_type: int, sequence: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    """The bytes of a packet without CSRCs, extension or padding: ``bytes(RtpPacket(...))``
    without building one (the media streams send 50 of these a second per call)."""
    if not 0 <= payload_type <= 0x7F:
        raise ValueError(f"payload_type {payload_type} out of range 0..127")
    return _FIXED.pack(RTP_VERSION << 6, payload_type | 0x80 if marker else payload_type,
                       sequence, timestamp, ssrc) + payload


def serial_diff(a: int, b: int, modulus: int = 1 << 16) -> int:
    """a - b in serial-number arithmetic (sequence numbers by default, or 1 << 32 for
    timestamps): positive when a is after b."""
    diff = (a - b) % modulus
    return diff - modulus if diff >= modulus // 2 else diff


def is_rtcp(data: bytes) -> bool:
    """RFC 5761 §4: RTCP packet types 192..223 occupy the second octet, where RTP
    would carry the marker bit and payload types 64..95, so the second octet tells
    RTCP from RTP on a multiplexed port."""
    return len(data) >= 2 and 192 <= data[1] <= 223


def _check_range(name: str, value: int, maximum: int) -> None:
    if not 0 <= value <= maximum:
        raise ValueError(f"{name} {value} out of range 0..{maximum}")


def _payload_end(data: bytes, *, has_padding: bool) -> int:
    if not has_padding:
        return len(data)
    count = data[-1]
    if count == 0 or FIXED_HEADER_SIZE + count > len(data):
        raise RtpError(f"RTP padding count {count} does not fit a {len(data)}-byte packet")
    return len(data) - count


def _parse_csrcs(data: bytes, count: int, end: int) -> tuple[tuple[int, ...], int]:
    offset = FIXED_HEADER_SIZE + 4 * count
    if offset > end:
        raise RtpError(f"RTP CSRC count {count} exceeds the packet")
    return struct.unpack_from(f"!{count}I", data, FIXED_HEADER_SIZE), offset


def _parse_extension(data: bytes, offset: int, end: int) -> tuple[tuple[int, bytes], int]:
    # "If the X bit in the RTP header is one, a variable-length header extension
    # MUST be appended to the RTP header, following the CSRC list if present."
    # (RFC 3550 §5.3.1)
    if offset + _EXTENSION.size > end:
        raise RtpError("RTP extension header missing")
    profile, words = _EXTENSION.unpack_from(data, offset)
    start = offset + _EXTENSION.size
    stop = start + 4 * words
    if stop > end:
        raise RtpError(f"RTP extension length {words} words exceeds the packet")
    return (profile, bytes(data[start:stop])), stop
