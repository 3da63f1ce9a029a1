"""What H.264 (RFC 6184) and H.265 (RFC 7798) packetization share: NAL units cut
from and joined into an Annex B byte stream, single NAL unit packets,
aggregation packets for small NAL units and fragmentation units for large ones.
The codec modules supply the header layouts."""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from softphone.frozen import dataclass

from .base import EncodedFrame, FrameDepacketizer, PayloadError, payload_room, split_evenly

START_CODE = b"\x00\x00\x01"
LONG_START_CODE = b"\x00\x00\x00\x01"


def split_annexb(stream: bytes) -> list[bytes]:
    """The NAL units of an Annex B byte stream, without start codes and trailing zero bytes."""
    start = stream.find(START_CODE)
    if start < 0:
        raise PayloadError("no start code: not an Annex B byte stream")
    nals = []
    while start >= 0:
        begin = start + len(START_CODE)
        start = stream.find(START_CODE, begin)
        # A NAL unit never ends in a zero byte; zeros before a start code belong to the byte stream.
        nal = stream[begin : len(stream) if start < 0 else start].rstrip(b"\x00")
        if nal:
            nals.append(nal)
    return nals


@dataclass(frozen=True)
class NalPayload:
    """One RTP payload: whole NAL units, or one fragment of a NAL unit."""

    nals: tuple[bytes, ...] = ()
    fragment: bytes = b""
    header: bytes = b""  # the fragmented NAL unit's header, rebuilt from the FU's headers
    first: bool = False  # FU Start bit
    last: bool = False  # FU End bit

    @property
    def is_fragment(self) -> bool:
        return not self.nals

    @property
    def leading_nal(self) -> bytes | None:
        """The beginning of the first NAL unit that starts in this payload."""
        if self.nals:
            return self.nals[0]
        return self.header + self.fragment if self.first else None


def reassemble(units: Sequence[NalPayload | None]) -> list[bytes]:
    """The NAL units of payloads in sequence order.

    A fragmented NAL unit with a piece missing is cut at the hole: its beginning is
    still a valid start of the NAL unit that a decoder can conceal the rest of; the
    fragments after the hole are dropped.
    """
    nals: list[bytes] = []
    pieces: list[bytes] = []
    for unit in units:
        if unit is not None and unit.is_fragment and not unit.first and pieces:
            pieces.append(unit.fragment)
            if unit.last:
                nals.append(b"".join(pieces))
                pieces = []
            continue
        if pieces:
            nals.append(b"".join(pieces))  # truncated
            pieces = []
        if unit is None:
            continue
        if not unit.is_fragment:
            nals.extend(unit.nals)
        elif unit.first:
            pieces = [unit.header, unit.fragment]
    if pieces:
        nals.append(b"".join(pieces))
    return nals


def parse_aggregation(payload: bytes, offset: int) -> tuple[bytes, ...]:
    """The NAL units of the aggregation units, each a 16-bit size and a NAL unit, from ``offset``."""
    nals = []
    while offset < len(payload):
        if offset + 2 > len(payload):
            raise PayloadError("aggregation unit size truncated")
        size = payload[offset] << 8 | payload[offset + 1]
        offset += 2
        if size == 0 or offset + size > len(payload):
            raise PayloadError(f"aggregation unit of {size} bytes does not fit the packet")
        nals.append(payload[offset : offset + size])
        offset += size
    if not nals:
        raise PayloadError("aggregation packet without NAL units")
    return tuple(nals)


class NalPacketizer(ABC):
    """Single NAL unit packets, aggregation packets and fragmentation units of one codec."""

    header_size: int  # bytes of a NAL unit header
    fu_overhead: int  # bytes before each fragment in a fragmentation unit

    @abstractmethod
    def _aggregation_header(self, nals: Sequence[bytes]) -> bytes: ...

    @abstractmethod
    def _fragment_header(self, nal: bytes, first: bool, last: bool) -> bytes: ...

    def packetize(self, frame: EncodedFrame, mtu: int) -> list[tuple[bytes, bool]]:
        room = payload_room(mtu, 0)
        payloads: list[bytes] = []
        group: list[bytes] = []
        for nal in split_annexb(frame.data) if frame.data else []:
            if len(nal) < self.header_size:
                raise PayloadError(f"a NAL unit of {len(nal)} bytes is shorter than its header")
            if len(nal) > room:
                payloads.extend(self._aggregate(group))
                group = []
                payloads.extend(self._fragment(nal, room))
            elif self._aggregate_size([*group, nal]) <= room:
                group.append(nal)
            else:
                payloads.extend(self._aggregate(group))
                group = [nal]
        payloads.extend(self._aggregate(group))
        # Marker bit: "Set for the very last packet of the access unit indicated by
        # the RTP timestamp" (RFC 6184 §5.1); "Set for the last packet of the access
        # unit, carried in the current RTP stream." (RFC 7798 §4.1)
        return [(payload, index == len(payloads) - 1) for index, payload in enumerate(payloads)]

    def _aggregate_size(self, nals: Sequence[bytes]) -> int:
        if len(nals) == 1:
            return len(nals[0])
        return self.header_size + sum(2 + len(nal) for nal in nals)

    def _aggregate(self, nals: Sequence[bytes]) -> list[bytes]:
        if len(nals) <= 1:
            return list(nals)  # a single NAL unit packet
        units = b"".join(len(nal).to_bytes(2, "big") + nal for nal in nals)
        return [self._aggregation_header(nals) + units]

    def _fragment(self, nal: bytes, room: int) -> list[bytes]:
        size = room - self.fu_overhead
        if size < 1:
            raise ValueError("MTU too small for fragmentation units")
        # A NAL unit over ``room`` makes at least two fragments: "A fragmented NAL
        # unit MUST NOT be transmitted in one FU" (RFC 6184 §5.8, RFC 7798 §4.4.3)
        chunks = split_evenly(nal[self.header_size :], size)
        return [
            self._fragment_header(nal, index == 0, index == len(chunks) - 1) + chunk
            for index, chunk in enumerate(chunks)
        ]


class NalDepacketizer(FrameDepacketizer[NalPayload]):
    """Rebuilds an access unit's Annex B byte stream."""

    @abstractmethod
    def _nal_type(self, nal: bytes) -> int: ...

    @abstractmethod
    def _is_parameter_set(self, nal_type: int) -> bool: ...

    @abstractmethod
    def _is_keyframe(self, nal_type: int) -> bool: ...

    def _assemble(self, units: Sequence[NalPayload | None]) -> tuple[bytes, bool]:
        nals = reassemble(units)
        parts = []
        for index, nal in enumerate(nals):
            # The zero_byte before the start code "shall be present" for parameter
            # sets and the first NAL unit of an access unit (H.264 and H.265 Annex B);
            # encoders write three-byte start codes elsewhere.
            long = index == 0 or self._is_parameter_set(self._nal_type(nal))
            parts.append(LONG_START_CODE if long else START_CODE)
            parts.append(nal)
        keyframe = any(self._is_keyframe(self._nal_type(nal)) for nal in nals)
        return b"".join(parts), keyframe
