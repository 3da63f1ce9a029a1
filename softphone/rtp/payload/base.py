"""What every video payload format shares: the encoded frame, the two protocols
and the reassembly of one frame from the RTP packets that carry its timestamp.

A depacketizer holds the packets of one frame at a time, keyed by sequence
number, so packets reordered within a frame are put back in order and duplicates
are dropped.  The frame comes out when its marker packet and every packet before
it down to the frame's first packet are in hand, or - with ``complete=False`` -
when a packet of a later frame shows that the rest will not come.
"""
from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from softphone.frozen import dataclass

from ..packet import FIXED_HEADER_SIZE, RtpPacket, serial_diff

logger = logging.getLogger(__name__)

RTP_HEADER_SIZE = FIXED_HEADER_SIZE
MAX_PACKETS_PER_FRAME = 4096
# A timestamp this far behind the current one is taken as a restarted stream, not a late packet.
_RESTART_DISTANCE = 90_000 * 10


class PayloadError(ValueError):
    """A payload that does not follow its RTP payload format: callers count it and drop it."""


@dataclass(frozen=True)
class EncodedFrame:
    """What a video encoder produces and a depacketizer reassembles.

    ``data`` is, for VP8, one VP8 frame; for H.264 and H.265, the Annex B byte
    stream of one access unit; for JPEG, a complete JFIF file.
    """

    data: bytes
    keyframe: bool
    timestamp: int = 0
    complete: bool = True


class Packetizer(Protocol):
    def packetize(self, frame: EncodedFrame, mtu: int) -> list[tuple[bytes, bool]]:
        """(RTP payload, marker) for each packet of the frame; every payload is at most mtu - 12 bytes."""
        ...


class Depacketizer(Protocol):
    errors: int

    def push(self, packet: RtpPacket) -> list[EncodedFrame]:
        """The frames completed by this packet; never raises on a malformed payload."""
        ...


def payload_room(mtu: int, overhead: int) -> int:
    """Bytes of codec data that fit in one packet after the RTP header and ``overhead``."""
    room = mtu - RTP_HEADER_SIZE - overhead
    if room < 1:
        raise ValueError(f"MTU {mtu} leaves no room for payload data")
    return room


def split_evenly(data: bytes, size: int) -> list[bytes]:
    """Cut ``data`` into the fewest chunks of at most ``size`` bytes, all about the same length."""
    count = max(1, -(-len(data) // size))
    step = -(-len(data) // count)
    return [data[i : i + step] for i in range(0, len(data), step)] or [b""]


def _is_behind(timestamp: int, reference: int) -> bool:
    """At or before ``reference``, yet near enough not to be a restarted stream."""
    diff = serial_diff(timestamp, reference, 1 << 32)
    return diff <= 0 and -diff < _RESTART_DISTANCE


U = TypeVar("U")


class FrameDepacketizer(ABC, Generic[U]):
    """Reassembles frames; subclasses parse one payload and join a frame's parsed payloads."""

    def __init__(self) -> None:
        self.errors = 0  # malformed payloads
        self.duplicates = 0
        self.late = 0  # packets of a frame already delivered
        self._timestamp: int | None = None
        self._units: dict[int, U | None] = {}  # offset from the anchor sequence number -> parsed payload
        self._anchor = 0
        self._marker: int | None = None  # offset of the marker packet
        self._expected_start: int | None = None  # sequence number after the previous frame's marker
        self._delivered: int | None = None  # timestamp of the last frame delivered
        self._frame_lost = False  # a frame vanished: the next one may lack its reference

    @abstractmethod
    def _parse(self, payload: bytes) -> U:
        """Parse one RTP payload; PayloadError when it is malformed."""

    @abstractmethod
    def _begins_frame(self, unit: U) -> bool:
        """Whether this payload starts a frame (asked when the previous frame's end was lost)."""

    @abstractmethod
    def _assemble(self, units: Sequence[U | None]) -> tuple[bytes, bool]:
        """Join a frame's payloads in sequence order (None for a missing one) into (data, keyframe)."""

    def push(self, packet: RtpPacket) -> list[EncodedFrame]:
        frames: list[EncodedFrame] = []
        if not self._accept_timestamp(packet.timestamp, frames):
            return frames
        try:
            unit: U | None = self._parse(packet.payload)
        except PayloadError as error:
            self.errors += 1
            logger.debug("malformed payload in packet %d: %s", packet.sequence, error)
            unit = None
        if self._timestamp is None:
            self._timestamp = packet.timestamp
            self._anchor = packet.sequence
        offset = serial_diff(packet.sequence, self._anchor, 1 << 16)
        if offset in self._units:
            self.duplicates += 1
            return frames
        self._units[offset] = unit
        if packet.marker and self._marker is None:
            self._marker = offset
        if self._first_to_marker() is not None or len(self._units) >= MAX_PACKETS_PER_FRAME:
            self._deliver(frames)
        return frames

    def _accept_timestamp(self, timestamp: int, frames: list[EncodedFrame]) -> bool:
        """Deliver the frame a newer timestamp ends; False for a late packet of an earlier frame."""
        if self._timestamp is not None and timestamp != self._timestamp:
            if _is_behind(timestamp, self._timestamp):
                self.late += 1
                return False
            self._deliver(frames)
        if self._timestamp is None and self._delivered is not None:
            if _is_behind(timestamp, self._delivered):
                self.late += 1
                return False
            if abs(serial_diff(timestamp, self._delivered, 1 << 32)) >= _RESTART_DISTANCE:
                self._expected_start = None  # a new stream: its first sequence number is unknown
        return True

    def _start_offset(self) -> int | None:
        if self._expected_start is not None:
            start = serial_diff(self._expected_start, self._anchor, 1 << 16)
            return start if start in self._units else None
        first = min(self._units)
        unit = self._units[first]
        return first if unit is not None and self._begins_frame(unit) else None

    def _first_to_marker(self) -> list[U] | None:
        """The frame's payloads from its first packet to its marker, when all of them are here."""
        if self._marker is None:
            return None
        start = self._start_offset()
        if start is None or start > self._marker:
            return None
        units = [self._units.get(offset) for offset in range(start, self._marker + 1)]
        present = [unit for unit in units if unit is not None]
        return present if len(present) == len(units) else None

    def _deliver(self, frames: list[EncodedFrame]) -> None:
        assert self._timestamp is not None
        whole = self._first_to_marker()
        if whole is not None:
            units: Sequence[U | None] = whole
        else:
            low, high = min(self._units), max(self._units)
            units = [self._units.get(offset) for offset in range(low, high + 1)]
        data, keyframe = self._assemble(units)
        if data:
            complete = whole is not None and not self._frame_lost
            frames.append(EncodedFrame(data, keyframe, self._timestamp, complete))
            self._frame_lost = False
        else:
            self._frame_lost = True
        self._expected_start = None if self._marker is None else (self._anchor + self._marker + 1) & 0xFFFF
        self._delivered = self._timestamp
        self._timestamp = None
        self._units = {}
        self._marker = None
