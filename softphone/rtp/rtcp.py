"""RTCP packets: SR, RR, SDES, BYE (RFC 3550 §6), transport- and payload-specific
feedback (RFC 4585 §6: Generic NACK, PLI; RFC 5104 §4.3.1: FIR) and compound
packets.

Every packet starts with the common header

    0                   1                   2                   3
    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
   |V=2|P|  count  |      PT       |             length            |

where length is the packet's size in 32-bit words minus one.
"""
from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from softphone.frozen import dataclass

RTCP_VERSION = 2
RTCP_SR = 200
RTCP_RR = 201
RTCP_SDES = 202
RTCP_BYE = 203
RTCP_APP = 204
RTCP_RTPFB = 205
RTCP_PSFB = 206

SDES_END = 0
SDES_CNAME = 1

RTPFB_NACK = 1
PSFB_PLI = 1
PSFB_FIR = 4

MAX_COUNT = 31
NTP_UNIX_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01

_HEADER = struct.Struct("!BBH")
_REPORT_BLOCK = struct.Struct("!IB3sIIII")
_SENDER_INFO = struct.Struct("!IQIII")
_FEEDBACK = struct.Struct("!II")


class RtcpError(ValueError):
    """A malformed RTCP packet: callers count it and drop it."""


@dataclass(frozen=True)
class ReportBlock:
    ssrc: int
    fraction_lost: int
    cumulative_lost: int
    highest_sequence: int
    jitter: int
    lsr: int
    dlsr: int

    def __bytes__(self) -> bytes:
        lost = max(-0x800000, min(0x7FFFFF, self.cumulative_lost)) & 0xFFFFFF
        return _REPORT_BLOCK.pack(
            self.ssrc, self.fraction_lost, lost.to_bytes(3, "big"),
            self.highest_sequence, self.jitter, self.lsr, self.dlsr,
        )

    @classmethod
    def parse(cls, data: bytes, offset: int) -> ReportBlock:
        ssrc, fraction, lost, highest, jitter, lsr, dlsr = _REPORT_BLOCK.unpack_from(data, offset)
        cumulative = int.from_bytes(lost, "big", signed=True)
        return cls(ssrc, fraction, cumulative, highest, jitter, lsr, dlsr)


@dataclass(frozen=True)
class SenderReport:
    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        body = _SENDER_INFO.pack(
            self.ssrc, self.ntp_timestamp, self.rtp_timestamp, self.packet_count, self.octet_count
        )
        return _packet(len(self.reports), RTCP_SR, body + _blocks(self.reports))


@dataclass(frozen=True)
class ReceiverReport:
    ssrc: int
    reports: tuple[ReportBlock, ...] = ()

    def __bytes__(self) -> bytes:
        return _packet(len(self.reports), RTCP_RR, struct.pack("!I", self.ssrc) + _blocks(self.reports))


SdesChunk = tuple[int, tuple[tuple[int, str], ...]]


@dataclass(frozen=True)
class SourceDescription:
    chunks: tuple[SdesChunk, ...]

    def __bytes__(self) -> bytes:
        return _packet(len(self.chunks), RTCP_SDES, b"".join(_sdes_chunk(chunk) for chunk in self.chunks))


@dataclass(frozen=True)
class Bye:
    ssrcs: tuple[int, ...]
    reason: str | None = None

    def __bytes__(self) -> bytes:
        body = b"".join(struct.pack("!I", ssrc) for ssrc in self.ssrcs)
        if self.reason is not None:
            text = self.reason.encode()
            body += _pad32(bytes([len(text)]) + text)
        return _packet(len(self.ssrcs), RTCP_BYE, body)


@dataclass(frozen=True)
class PictureLossIndication:
    sender_ssrc: int
    media_ssrc: int

    def __bytes__(self) -> bytes:
        return _packet(PSFB_PLI, RTCP_PSFB, _FEEDBACK.pack(self.sender_ssrc, self.media_ssrc))


@dataclass(frozen=True)
class FullIntraRequest:
    sender_ssrc: int
    media_ssrc: int
    entries: tuple[tuple[int, int], ...]  # (SSRC, command sequence number)

    def __bytes__(self) -> bytes:
        fci = b"".join(struct.pack("!IB3x", ssrc, seq) for ssrc, seq in self.entries)
        return _packet(PSFB_FIR, RTCP_PSFB, _FEEDBACK.pack(self.sender_ssrc, self.media_ssrc) + fci)


@dataclass(frozen=True)
class GenericNack:
    sender_ssrc: int
    media_ssrc: int
    lost: tuple[int, ...]

    def __bytes__(self) -> bytes:
        fci = b"".join(struct.pack("!HH", pid, blp) for pid, blp in _nack_pairs(self.lost))
        return _packet(RTPFB_NACK, RTCP_RTPFB, _FEEDBACK.pack(self.sender_ssrc, self.media_ssrc) + fci)


RtcpPacket = (
    SenderReport | ReceiverReport | SourceDescription | Bye | PictureLossIndication | FullIntraRequest | GenericNack
)


def parse_compound(data: bytes) -> list[RtcpPacket]:
    """Parse a compound RTCP packet; unknown packet types are skipped."""
    if not data:
        raise RtcpError("empty RTCP packet")
    packets: list[RtcpPacket] = []
    offset = 0
    while offset < len(data):
        count, packet_type, body, offset = _split(data, offset)
        parser = _PARSERS.get(packet_type)
        if parser is None:
            continue
        try:
            packet = parser(count, body)
        except struct.error as exc:
            raise RtcpError(f"malformed RTCP packet type {packet_type}: {exc}") from exc
        if packet is not None:
            packets.append(packet)
    return packets


def serialize_compound(packets: Sequence[RtcpPacket]) -> bytes:
    return b"".join(bytes(packet) for packet in packets)


def ntp_from_unix(seconds: float) -> int:
    """64-bit NTP timestamp (RFC 3550 §4) for a Unix time in seconds."""
    total = seconds + NTP_UNIX_OFFSET
    whole = int(total)
    fraction = int((total - whole) * (1 << 32))
    return ((whole & 0xFFFFFFFF) << 32) | (fraction & 0xFFFFFFFF)


def unix_from_ntp(ntp: int) -> float:
    return (ntp >> 32) - NTP_UNIX_OFFSET + (ntp & 0xFFFFFFFF) / (1 << 32)


def middle_32(ntp: int) -> int:
    """LSR: "The middle 32 bits out of 64 in the NTP timestamp" (RFC 3550 §6.4.1)."""
    return (ntp >> 16) & 0xFFFFFFFF


# --- serializing helpers ---------------------------------------------------


def _packet(count: int, packet_type: int, body: bytes) -> bytes:
    if count > MAX_COUNT:
        raise ValueError(f"an RTCP packet holds at most {MAX_COUNT} items, got {count}")
    if len(body) % 4:
        raise ValueError("RTCP packet body must be a whole number of 32-bit words")
    return _HEADER.pack(RTCP_VERSION << 6 | count, packet_type, len(body) // 4) + body


def _blocks(reports: tuple[ReportBlock, ...]) -> bytes:
    return b"".join(bytes(block) for block in reports)


def _pad32(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


def _sdes_chunk(chunk: SdesChunk) -> bytes:
    ssrc, items = chunk
    out = bytearray(struct.pack("!I", ssrc))
    for item_type, text in items:
        value = text.encode()
        if len(value) > 255 or not 1 <= item_type <= 255:
            raise ValueError(f"bad SDES item {item_type}: {len(value)} octets")
        out += bytes([item_type, len(value)]) + value
    # "The list of items in each chunk MUST be terminated by one or more null
    # octets, the first of which is interpreted as an item type of zero to denote
    # the end of the list. [...] additional null octets MUST be included if needed
    # to pad until the next 32-bit boundary." (RFC 3550 §6.5)
    out += b"\x00"
    return _pad32(bytes(out))


def _nack_pairs(lost: tuple[int, ...]) -> list[tuple[int, int]]:
    """Pack lost sequence numbers as (PID, BLP): bit i of BLP marks PID + i + 1."""
    pairs: list[tuple[int, int]] = []
    for seq in lost:
        if pairs:
            pid, blp = pairs[-1]
            distance = (seq - pid) & 0xFFFF
            if 1 <= distance <= 16:
                pairs[-1] = (pid, blp | 1 << (distance - 1))
                continue
        pairs.append((seq & 0xFFFF, 0))
    return pairs


# --- parsing helpers -------------------------------------------------------


def _split(data: bytes, offset: int) -> tuple[int, int, bytes, int]:
    """One packet of a compound: (count, type, body without padding, next offset)."""
    if offset + _HEADER.size > len(data):
        raise RtcpError("truncated RTCP header")
    first, packet_type, words = _HEADER.unpack_from(data, offset)
    if first >> 6 != RTCP_VERSION:
        raise RtcpError(f"RTCP version {first >> 6}, expected {RTCP_VERSION}")
    end = offset + 4 * (words + 1)
    if end > len(data):
        raise RtcpError(f"RTCP length {words} exceeds the packet")
    body = data[offset + _HEADER.size:end]
    if first & 0x20:
        pad = body[-1] if body else 0
        if pad == 0 or pad > len(body):
            raise RtcpError(f"RTCP padding count {pad} does not fit")
        body = body[:-pad]
    return first & 0x1F, packet_type, bytes(body), end


def _need(body: bytes, size: int, what: str) -> None:
    if len(body) < size:
        raise RtcpError(f"{what} too short ({len(body)} < {size} bytes)")


def _parse_blocks(body: bytes, offset: int, count: int) -> tuple[ReportBlock, ...]:
    _need(body, offset + count * _REPORT_BLOCK.size, "RTCP report blocks")
    return tuple(ReportBlock.parse(body, offset + i * _REPORT_BLOCK.size) for i in range(count))


def _parse_sr(count: int, body: bytes) -> SenderReport:
    _need(body, _SENDER_INFO.size, "RTCP SR")
    ssrc, ntp, rtp, packets, octets = _SENDER_INFO.unpack_from(body)
    return SenderReport(ssrc, ntp, rtp, packets, octets, _parse_blocks(body, _SENDER_INFO.size, count))


def _parse_rr(count: int, body: bytes) -> ReceiverReport:
    _need(body, 4, "RTCP RR")
    (ssrc,) = struct.unpack_from("!I", body)
    return ReceiverReport(ssrc, _parse_blocks(body, 4, count))


def _parse_sdes(count: int, body: bytes) -> SourceDescription:
    chunks: list[SdesChunk] = []
    offset = 0
    for _ in range(count):
        chunk, offset = _parse_sdes_chunk(body, offset)
        chunks.append(chunk)
    return SourceDescription(tuple(chunks))


def _parse_sdes_chunk(body: bytes, offset: int) -> tuple[SdesChunk, int]:
    _need(body, offset + 4, "RTCP SDES chunk")
    (ssrc,) = struct.unpack_from("!I", body, offset)
    offset += 4
    items: list[tuple[int, str]] = []
    while True:
        _need(body, offset + 1, "RTCP SDES item")
        item_type = body[offset]
        if item_type == SDES_END:
            offset += 1
            break
        _need(body, offset + 2, "RTCP SDES item")
        length = body[offset + 1]
        _need(body, offset + 2 + length, "RTCP SDES item")
        text = body[offset + 2:offset + 2 + length].decode("utf-8", errors="replace")
        items.append((item_type, text))
        offset += 2 + length
    return (ssrc, tuple(items)), offset + (-offset % 4)


def _parse_bye(count: int, body: bytes) -> Bye:
    _need(body, 4 * count, "RTCP BYE")
    ssrcs = struct.unpack_from(f"!{count}I", body)
    reason = None
    offset = 4 * count
    if len(body) > offset:
        length = body[offset]
        _need(body, offset + 1 + length, "RTCP BYE reason")
        reason = body[offset + 1:offset + 1 + length].decode("utf-8", errors="replace")
    return Bye(ssrcs, reason)


def _parse_rtpfb(fmt: int, body: bytes) -> GenericNack | None:
    _need(body, _FEEDBACK.size, "RTCP RTPFB")
    if fmt != RTPFB_NACK:
        return None
    sender, media = _FEEDBACK.unpack_from(body)
    lost: list[int] = []
    for offset in range(_FEEDBACK.size, len(body) - 3, 4):
        pid, blp = struct.unpack_from("!HH", body, offset)
        lost.append(pid)
        lost.extend((pid + bit + 1) & 0xFFFF for bit in range(16) if blp >> bit & 1)
    return GenericNack(sender, media, tuple(lost))


def _parse_psfb(fmt: int, body: bytes) -> PictureLossIndication | FullIntraRequest | None:
    _need(body, _FEEDBACK.size, "RTCP PSFB")
    sender, media = _FEEDBACK.unpack_from(body)
    if fmt == PSFB_PLI:
        return PictureLossIndication(sender, media)
    if fmt == PSFB_FIR:
        offsets = range(_FEEDBACK.size, len(body) - 7, 8)
        entries = tuple(_fir_entry(body, offset) for offset in offsets)
        return FullIntraRequest(sender, media, entries)
    return None


def _fir_entry(body: bytes, offset: int) -> tuple[int, int]:
    ssrc, seq = struct.unpack_from("!IB3x", body, offset)
    return ssrc, seq


_PARSERS: dict[int, Callable[[int, bytes], RtcpPacket | None]] = {
    RTCP_SR: _parse_sr,
    RTCP_RR: _parse_rr,
    RTCP_SDES: _parse_sdes,
    RTCP_BYE: _parse_bye,
    RTCP_RTPFB: _parse_rtpfb,
    RTCP_PSFB: _parse_psfb,
}
