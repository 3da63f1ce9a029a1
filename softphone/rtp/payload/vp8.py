"""VP8 in RTP (RFC 7741).

The payload descriptor we send, before each chunk of the VP8 frame (§4.2):

     0 1 2 3 4 5 6 7
    +-+-+-+-+-+-+-+-+
    |X|R|N|S|R| PID | X=1, S=1 on the frame's first packet, PID=0
    +-+-+-+-+-+-+-+-+
    |I|L|T|K| RSV   | I=1
    +-+-+-+-+-+-+-+-+
    |M| PictureID   | M=1: a 15-bit PictureID
    +-+-+-+-+-+-+-+-+
    |   PictureID   |
    +-+-+-+-+-+-+-+-+
"""
from __future__ import annotations

import random
from collections.abc import Sequence

from softphone.frozen import dataclass

from .base import EncodedFrame, FrameDepacketizer, PayloadError, payload_room, split_evenly

DESCRIPTOR_SIZE = 4
_X, _S, _PID = 0x80, 0x10, 0x07
_I, _L, _T, _K = 0x80, 0x40, 0x20, 0x10
_M = 0x80


class Vp8Packetizer:
    def __init__(self, picture_id: int | None = None) -> None:
        self._picture_id = random.randrange(0x8000) if picture_id is None else picture_id & 0x7FFF

    def packetize(self, frame: EncodedFrame, mtu: int) -> list[tuple[bytes, bool]]:
        if not frame.data:
            return []
        chunks = split_evenly(frame.data, payload_room(mtu, DESCRIPTOR_SIZE))
        picture_id = self._picture_id
        self._picture_id = (picture_id + 1) & 0x7FFF
        tail = bytes([_I, _M | picture_id >> 8, picture_id & 0xFF])
        packets = []
        for index, chunk in enumerate(chunks):
            # "The S bit MUST be set to 1 for the first packet of each encoded frame."
            # (RFC 7741 §4.2); the whole frame is labelled partition 0 (PID = 0).
            first = _X | (_S if index == 0 else 0)
            # "Marker bit (M): MUST be set for the very last packet of each encoded
            # frame" (RFC 7741 §4.1)
            packets.append((bytes([first]) + tail + chunk, index == len(chunks) - 1))
        return packets


@dataclass(frozen=True)
class Vp8Payload:
    start: bool  # S bit
    partition: int  # PID
    picture_id: int | None
    data: bytes


def parse_descriptor(payload: bytes) -> Vp8Payload:
    """Split an RTP payload into its VP8 payload descriptor (RFC 7741 §4.2) and data."""
    if not payload:
        raise PayloadError("empty VP8 payload")
    first = payload[0]
    offset = 1
    picture_id = None
    if first & _X:
        # "X: Extended control bits present. When set to 1, the extension octet
        # MUST be provided immediately after the mandatory first octet."
        extension = _byte(payload, 1)
        offset = 2
        if extension & _I:
            high = _byte(payload, offset)
            if high & _M:
                picture_id = (high & 0x7F) << 8 | _byte(payload, offset + 1)
                offset += 2
            else:
                picture_id = high
                offset += 1
        if extension & _L:
            offset += 1  # TL0PICIDX
        if extension & (_T | _K):
            offset += 1  # TID, Y, KEYIDX
    if offset >= len(payload):
        raise PayloadError("VP8 payload descriptor without data")
    return Vp8Payload(bool(first & _S), first & _PID, picture_id, payload[offset:])


def _byte(payload: bytes, index: int) -> int:
    if index >= len(payload):
        raise PayloadError("VP8 payload descriptor truncated")
    return payload[index]


class Vp8Depacketizer(FrameDepacketizer[Vp8Payload]):
    def _parse(self, payload: bytes) -> Vp8Payload:
        return parse_descriptor(payload)

    def _begins_frame(self, unit: Vp8Payload) -> bool:
        return unit.start and unit.partition == 0

    def _assemble(self, units: Sequence[Vp8Payload | None]) -> tuple[bytes, bool]:
        data = b"".join(unit.data for unit in units if unit is not None)
        first = units[0]
        # "P: Inverse key frame flag. When set to 0, the current frame is a key
        # frame." (RFC 7741 §4.3, the low bit of the VP8 frame's first octet)
        keyframe = first is not None and self._begins_frame(first) and not first.data[0] & 0x01
        return data, keyframe
