"""H.265 in RTP (RFC 7798): single NAL unit packets, aggregation packets (AP,
type 48) and fragmentation units (FU, type 49), without DONL fields
(sprop-max-don-diff = 0).

    PayloadHdr / NAL unit header (§1.1.4)             FU header (§4.4.3)
    +---------------+---------------+                 +---------------+
    |0|1|2|3|4|5|6|7|0|1|2|3|4|5|6|7|                 |0|1|2|3|4|5|6|7|
    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                 +-+-+-+-+-+-+-+-+
    |F|   Type    |  LayerId  | TID |                 |S|E|  FuType   |
    +-------------+-----------------+                 +---------------+
"""
from __future__ import annotations

from collections.abc import Sequence

from .base import PayloadError
from .nal import NalDepacketizer, NalPacketizer, NalPayload, parse_aggregation

AP = 48
FU = 49
IRAP_TYPES = range(16, 24)
VPS, SPS, PPS, AUD, PREFIX_SEI = 32, 33, 34, 35, 39
_START, _END = 0x80, 0x40


def nal_type(nal: bytes) -> int:
    return nal[0] >> 1 & 0x3F


def _layer_id(nal: bytes) -> int:
    return (nal[0] & 0x01) << 5 | nal[1] >> 3


def _payload_header(forbidden: int, kind: int, layer_id: int, tid: int) -> bytes:
    return bytes([forbidden << 7 | kind << 1 | layer_id >> 5, (layer_id & 0x1F) << 3 | tid])


class H265Packetizer(NalPacketizer):
    header_size = 2
    fu_overhead = 3

    def _aggregation_header(self, nals: Sequence[bytes]) -> bytes:
        # "The value of F bit MUST be equal to 0 if the F bit of each aggregated NAL
        # unit is equal to zero; otherwise, it MUST be equal to 1." "The LayerId
        # field MUST be equal to the lowest value of LayerId of all the aggregated
        # NAL units." "The TID field MUST be the lowest value of TID of all the
        # aggregated NAL units." (RFC 7798 §4.4.2)
        forbidden = max(nal[0] >> 7 for nal in nals)
        layer_id = min(_layer_id(nal) for nal in nals)
        tid = min(nal[1] & 0x07 for nal in nals)
        return _payload_header(forbidden, AP, layer_id, tid)

    def _fragment_header(self, nal: bytes, first: bool, last: bool) -> bytes:
        # "The fields F, LayerId, and TID MUST be equal to the fields F, LayerId,
        # and TID, respectively, of the fragmented NAL unit." "A fragmented NAL unit
        # MUST NOT be transmitted in one FU; that is, the Start bit and End bit
        # MUST NOT both be set to 1 in the same FU header." (RFC 7798 §4.4.3)
        header = bytes([nal[0] & 0x81 | FU << 1, nal[1]])
        return header + bytes([(_START if first else 0) | (_END if last else 0) | nal_type(nal)])


def parse_payload(payload: bytes) -> NalPayload:
    if len(payload) < 2:
        raise PayloadError(f"H.265 payload of {len(payload)} bytes")
    if payload[0] & 0x80:
        # F "MUST be zero. HEVC declares a value of 1 as a syntax violation." (RFC 7798 §1.1.4)
        raise PayloadError("H.265 payload header with the F bit set")
    kind = nal_type(payload)
    if kind < AP:
        return NalPayload(nals=(payload,))
    if kind == AP:
        nals = parse_aggregation(payload, 2)
        if any(len(nal) < 2 for nal in nals):
            raise PayloadError("aggregated NAL unit shorter than its header")
        return NalPayload(nals=nals)
    if kind == FU:
        if len(payload) < 4:
            raise PayloadError("FU without data")
        fu_header = payload[2]
        first, last = bool(fu_header & _START), bool(fu_header & _END)
        if first and last:
            raise PayloadError("FU with both Start and End bits")
        header = bytes([payload[0] & 0x81 | (fu_header & 0x3F) << 1, payload[1]])
        return NalPayload(fragment=payload[3:], header=header, first=first, last=last)
    raise PayloadError(f"H.265 payload type {kind} is not supported")


class H265Depacketizer(NalDepacketizer):
    def _parse(self, payload: bytes) -> NalPayload:
        return parse_payload(payload)

    def _begins_frame(self, unit: NalPayload) -> bool:
        nal = unit.leading_nal
        if nal is None or len(nal) < 3:
            return False
        kind = nal_type(nal)
        if kind in (VPS, SPS, PPS, AUD, PREFIX_SEI):
            return True
        # first_slice_segment_in_pic_flag: the first bit after a VCL NAL unit's header.
        return kind < VPS and bool(nal[2] & 0x80)

    def _nal_type(self, nal: bytes) -> int:
        return nal_type(nal)

    def _is_parameter_set(self, nal_type: int) -> bool:
        return nal_type in (VPS, SPS, PPS)

    def _is_keyframe(self, nal_type: int) -> bool:
        return nal_type in IRAP_TYPES
