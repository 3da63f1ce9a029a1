"""H.264 in RTP, packetization-mode=1 (RFC 6184 §6.3): single NAL unit packets,
STAP-A for small NAL units and FU-A for NAL units over the MTU.

    NAL unit header, STAP-A header, FU indicator     FU header
    +---------------+                                +---------------+
    |0|1|2|3|4|5|6|7|                                |0|1|2|3|4|5|6|7|
    +-+-+-+-+-+-+-+-+                                +-+-+-+-+-+-+-+-+
    |F|NRI|  Type   |  STAP-A: Type 24, FU-A: 28     |S|E|R|  Type   |
    +---------------+                                +---------------+
"""
from __future__ import annotations

from collections.abc import Sequence

from .base import PayloadError
from .nal import NalDepacketizer, NalPacketizer, NalPayload, parse_aggregation

STAP_A = 24
FU_A = 28
IDR_SLICE = 5
SEI, SPS, PPS, AUD = 6, 7, 8, 9
_F, _NRI, _TYPE = 0x80, 0x60, 0x1F
_START, _END = 0x80, 0x40


def nal_type(nal: bytes) -> int:
    return nal[0] & _TYPE


class H264Packetizer(NalPacketizer):
    header_size = 1
    fu_overhead = 2

    def _aggregation_header(self, nals: Sequence[bytes]) -> bytes:
        # "The F bit MUST be cleared if all F bits of the aggregated NAL units are
        # zero; otherwise, it MUST be set." "The value of NRI MUST be the maximum
        # of all the NAL units carried in the aggregation packet." (RFC 6184 §5.7)
        forbidden = max(nal[0] & _F for nal in nals)
        nri = max(nal[0] & _NRI for nal in nals)
        return bytes([forbidden | nri | STAP_A])

    def _fragment_header(self, nal: bytes, first: bool, last: bool) -> bytes:
        # "A fragmented NAL unit MUST NOT be transmitted in one FU; that is, the
        # Start bit and End bit MUST NOT both be set to one in the same FU header."
        # (RFC 6184 §5.8) The FU indicator takes F and NRI from the NAL unit header.
        indicator = nal[0] & (_F | _NRI) | FU_A
        header = (_START if first else 0) | (_END if last else 0) | nal_type(nal)
        return bytes([indicator, header])


def parse_payload(payload: bytes) -> NalPayload:
    if not payload:
        raise PayloadError("empty H.264 payload")
    kind = nal_type(payload)
    if 1 <= kind <= 23:
        return NalPayload(nals=(payload,))
    if kind == STAP_A:
        return NalPayload(nals=parse_aggregation(payload, 1))
    if kind == FU_A:
        if len(payload) < 3:
            raise PayloadError("FU-A without data")
        first, last = bool(payload[1] & _START), bool(payload[1] & _END)
        if first and last:
            raise PayloadError("FU-A with both Start and End bits")
        header = bytes([payload[0] & (_F | _NRI) | payload[1] & _TYPE])
        return NalPayload(fragment=payload[2:], header=header, first=first, last=last)
    # "Only single NAL unit packets, STAP-As, and FU-As MAY be used in this mode."
    # (RFC 6184 §6.3, non-interleaved mode)
    raise PayloadError(f"NAL unit type {kind} is not allowed in packetization-mode 1")


class H264Depacketizer(NalDepacketizer):
    def _parse(self, payload: bytes) -> NalPayload:
        return parse_payload(payload)

    def _begins_frame(self, unit: NalPayload) -> bool:
        nal = unit.leading_nal
        if nal is None:
            return False
        kind = nal_type(nal)
        if kind in (SEI, SPS, PPS, AUD):
            return True
        # A slice whose first_mb_in_slice, ue(v) right after the header, is 0 starts with a 1 bit.
        return 1 <= kind <= IDR_SLICE and len(nal) > 1 and bool(nal[1] & 0x80)

    def _nal_type(self, nal: bytes) -> int:
        return nal_type(nal)

    def _is_parameter_set(self, nal_type: int) -> bool:
        return nal_type in (SPS, PPS)

    def _is_keyframe(self, nal_type: int) -> bool:
        return nal_type in (IDR_SLICE, SPS)
