"""JPEG in RTP (RFC 2435): baseline YUV 4:2:0 (type 1) or 4:2:2 (type 0) with the
standard Huffman tables; we send Q=255, the quantization tables in band in the
first packet of every frame.

    Main JPEG header (§3.1)
    +---------------+---------------+---------------+---------------+
    | Type-specific |              Fragment Offset                  |
    +---------------+---------------+---------------+---------------+
    |      Type     |       Q       |     Width     |     Height    |
    +---------------+---------------+---------------+---------------+
    Restart Marker header (§3.1.7, types 64..127)
    |       Restart Interval        |F|L|       Restart Count       |
    Quantization Table header (§3.1.8, Q 128..255, first packet)
    |      MBZ      |   Precision   |             Length            |
    |                    Quantization Table Data                    |
"""
from __future__ import annotations

import struct
from collections.abc import Sequence

from softphone.frozen import dataclass

from .base import EncodedFrame, FrameDepacketizer, PayloadError, payload_room
from .jpeg_tables import STANDARD_HUFFMAN, make_tables

SOI, EOI = b"\xff\xd8", b"\xff\xd9"
SOF0, DHT, DQT, DRI, SOS = 0xC0, 0xC4, 0xDB, 0xDD, 0xDA
_MAIN = struct.Struct("!BBHBBBB")
_RESTART = struct.Struct("!HH")
_QUANT = struct.Struct("!BBH")
Q_DYNAMIC = 255
RESTART_TYPE = 64
_SAMPLING = {0x21: 0, 0x22: 1}  # luma sampling factors (H << 4 | V) -> RTP/JPEG type
_MAX_OFFSET = 1 << 24


@dataclass(frozen=True)
class JpegImage:
    """What RFC 2435 carries of a baseline JFIF file."""

    kind: int  # RTP/JPEG type 0 or 1
    width: int  # in 8-pixel blocks
    height: int
    luma_table: bytes  # zig-zag order, as in DQT
    chroma_table: bytes
    restart_interval: int
    scan: bytes  # entropy-coded data, without EOI


def _segments(data: bytes) -> list[tuple[int, bytes, int]]:
    """(marker, body, end offset) of each marker segment up to and including SOS."""
    if not data.startswith(SOI):
        raise PayloadError("not a JPEG file (no SOI)")
    segments = []
    offset = 2
    while True:
        while data[offset : offset + 2] == b"\xff\xff":
            offset += 1  # fill bytes
        if offset + 4 > len(data) or data[offset] != 0xFF:
            raise PayloadError(f"JPEG marker expected at offset {offset}")
        marker = data[offset + 1]
        end = offset + 2 + (data[offset + 2] << 8 | data[offset + 3])
        if end > len(data):
            raise PayloadError(f"JPEG segment {marker:#x} runs past the end")
        segments.append((marker, data[offset + 4 : end], end))
        if marker == SOS:
            return segments
        offset = end


def parse_jfif(data: bytes) -> JpegImage:
    """The fields of a baseline JFIF file that RTP/JPEG sends; PayloadError for what RFC 2435 cannot carry."""
    tables: dict[int, bytes] = {}
    frame: bytes | None = None
    restart_interval = 0
    scan = b""
    for marker, body, end in _segments(data):
        if marker == DQT:
            _read_quantization_tables(body, tables)
        elif marker == SOF0:
            frame = body
        elif 0xC1 <= marker <= 0xCF and marker not in (DHT, 0xC8, 0xCC):
            raise PayloadError(f"JPEG frame type {marker:#x} is not baseline")
        elif marker == DHT:
            _check_huffman_tables(body)
        elif marker == DRI and len(body) >= 2:
            restart_interval = body[0] << 8 | body[1]
        elif marker == SOS:
            _check_scan_header(body)
            scan = data[end:-2] if data.endswith(EOI) else data[end:]
    if frame is None or len(frame) != 15 or frame[0] != 8 or frame[5] != 3:
        raise PayloadError("RTP/JPEG needs a baseline 8-bit three-component frame")
    height, width = frame[1] << 8 | frame[2], frame[3] << 8 | frame[4]
    (_, luma_sampling, luma_q), (_, cb_sampling, cb_q), (_, cr_sampling, cr_q) = (
        frame[6 + 3 * i : 9 + 3 * i] for i in range(3)
    )
    if luma_sampling not in _SAMPLING or cb_sampling != 0x11 or cr_sampling != 0x11 or cb_q != cr_q:
        raise PayloadError("RTP/JPEG carries YUV 4:2:0 or 4:2:2 with one chroma table only")
    if luma_q not in tables or cb_q not in tables:
        raise PayloadError("JPEG quantization table missing")
    blocks_w, blocks_h = -(-width // 8), -(-height // 8)
    if not 0 < blocks_w < 256 or not 0 < blocks_h < 256:
        raise PayloadError(f"{width}x{height} is beyond RTP/JPEG's 2040x2040")
    return JpegImage(
        _SAMPLING[luma_sampling], blocks_w, blocks_h, tables[luma_q], tables[cb_q], restart_interval, scan
    )


def _read_quantization_tables(body: bytes, tables: dict[int, bytes]) -> None:
    offset = 0
    while offset < len(body):
        precision, table_id = body[offset] >> 4, body[offset] & 0x0F
        if precision != 0:
            raise PayloadError("16-bit JPEG quantization tables are not supported")
        tables[table_id] = body[offset + 1 : offset + 65]
        offset += 65
        if offset > len(body):
            raise PayloadError("JPEG quantization table truncated")


def _check_huffman_tables(body: bytes) -> None:
    offset = 0
    while offset + 17 <= len(body):
        table_class = body[offset]
        bits = body[offset + 1 : offset + 17]
        values = body[offset + 17 : offset + 17 + sum(bits)]
        if STANDARD_HUFFMAN.get(table_class) != (bits, values):
            # The RTP/JPEG receiver rebuilds the standard tables of ITU-T T.81 Annex K.3.
            raise PayloadError(f"JPEG Huffman table {table_class:#x} is not the standard one")
        offset += 17 + len(values)


def _check_scan_header(body: bytes) -> None:
    if len(body) < 10 or body[0] != 3 or (body[2], body[4], body[6]) != (0x00, 0x11, 0x11):
        raise PayloadError("JPEG scan must be interleaved Y, Cb, Cr with the standard table selectors")


class JpegPacketizer:
    def packetize(self, frame: EncodedFrame, mtu: int) -> list[tuple[bytes, bool]]:
        image = parse_jfif(frame.data)
        if len(image.scan) >= _MAX_OFFSET:
            raise PayloadError("JPEG scan too large for the 24-bit fragment offset")
        kind = image.kind
        restart = b""
        if image.restart_interval:
            kind += RESTART_TYPE
            # "If the restart intervals in a frame are not guaranteed to be aligned
            # with packet boundaries, the F (first) and L (last) bits MUST be set to
            # 1 and the Restart Count MUST be set to 0x3FFF." (RFC 2435 §3.1.7)
            restart = _RESTART.pack(image.restart_interval, 0xFFFF)
        tables = image.luma_table + image.chroma_table
        # The Quantization Table header "MUST be present after the main JPEG header
        # (and after the Restart Marker header, if present) in the first packet of
        # every frame and MUST NOT be present in any other packets." (RFC 2435 §3.1.8)
        quantization = _QUANT.pack(0, 0, len(tables)) + tables
        packets: list[tuple[bytes, bool]] = []
        offset = 0
        while offset < len(image.scan) or not packets:
            extra = restart + (quantization if offset == 0 else b"")
            size = payload_room(mtu, _MAIN.size + len(extra))
            chunk = image.scan[offset : offset + size]
            main = _MAIN.pack(0, offset >> 16, offset & 0xFFFF, kind, Q_DYNAMIC, image.width, image.height)
            offset += len(chunk)
            packets.append((main + extra + chunk, offset >= len(image.scan)))
        return packets


@dataclass(frozen=True)
class JpegPayload:
    offset: int
    kind: int  # 0 or 1, without the restart flag
    width: int
    height: int
    restart_interval: int
    tables: tuple[bytes, bytes] | None  # luma, chroma
    data: bytes


class JpegDepacketizer(FrameDepacketizer[JpegPayload]):
    def __init__(self) -> None:
        super().__init__()
        self._tables: dict[int, tuple[bytes, bytes]] = {}  # Q 128..254 -> tables last sent in band

    def _parse(self, payload: bytes) -> JpegPayload:
        if len(payload) < _MAIN.size:
            raise PayloadError("RTP/JPEG main header truncated")
        _, high, low, kind, q, width, height = _MAIN.unpack_from(payload)
        offset, at = high << 16 | low, _MAIN.size
        restart_interval = 0
        if kind & RESTART_TYPE:
            if len(payload) < at + _RESTART.size:
                raise PayloadError("RTP/JPEG restart marker header truncated")
            restart_interval = _RESTART.unpack_from(payload, at)[0]
            at += _RESTART.size
        if kind & ~RESTART_TYPE not in (0, 1):
            raise PayloadError(f"RTP/JPEG type {kind} is not supported")
        if width == 0 or height == 0:
            raise PayloadError("RTP/JPEG image of zero size")
        tables = None
        if offset == 0:
            tables, at = self._read_tables(payload, at, q)
        if at >= len(payload):
            raise PayloadError("RTP/JPEG packet without scan data")
        return JpegPayload(offset, kind & 1, width, height, restart_interval, tables, payload[at:])

    def _read_tables(self, payload: bytes, at: int, q: int) -> tuple[tuple[bytes, bytes], int]:
        if 1 <= q < 100:
            return make_tables(q), at
        if q < 128:
            raise PayloadError(f"RTP/JPEG Q {q} is reserved")
        if len(payload) < at + _QUANT.size:
            raise PayloadError("RTP/JPEG quantization table header truncated")
        _, precision, length = _QUANT.unpack_from(payload, at)
        at += _QUANT.size
        if length == 0 and q != Q_DYNAMIC and q in self._tables:
            return self._tables[q], at
        if precision != 0 or length not in (64, 128) or len(payload) < at + length:
            raise PayloadError(f"RTP/JPEG quantization tables of {length} bytes, precision {precision}")
        luma = payload[at : at + 64]
        tables = (luma, payload[at + 64 : at + 128] if length == 128 else luma)
        if q != Q_DYNAMIC:
            self._tables[q] = tables
        return tables, at + length

    def _begins_frame(self, unit: JpegPayload) -> bool:
        return unit.offset == 0

    def _assemble(self, units: Sequence[JpegPayload | None]) -> tuple[bytes, bool]:
        first = units[0]
        if first is None or first.tables is None:
            return b"", True  # without the first packet there are no tables to decode with
        scan = b"".join(unit.data for unit in units if unit is not None)
        headers = make_headers(first.kind, first.width, first.height, *first.tables, first.restart_interval)
        return headers + scan + (b"" if scan.endswith(EOI) else EOI), True


def _segment(marker: int, body: bytes) -> bytes:
    return bytes([0xFF, marker]) + (len(body) + 2).to_bytes(2, "big") + body


def make_headers(kind: int, width: int, height: int, luma: bytes, chroma: bytes, restart_interval: int) -> bytes:
    """The JFIF headers of a frame, width and height in 8-pixel blocks (RFC 2435 Appendix B MakeHeaders)."""
    parts = [SOI, _segment(0xE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")]
    parts.append(_segment(DQT, b"\x00" + luma + b"\x01" + chroma))
    if restart_interval:
        parts.append(_segment(DRI, restart_interval.to_bytes(2, "big")))
    luma_sampling = 0x21 if kind == 0 else 0x22
    size = struct.pack("!BHHB", 8, height * 8, width * 8, 3)
    parts.append(_segment(SOF0, size + bytes([0, luma_sampling, 0, 1, 0x11, 1, 2, 0x11, 1])))
    huffman = b"".join(bytes([table]) + bits + values for table, (bits, values) in sorted(STANDARD_HUFFMAN.items()))
    parts.append(_segment(DHT, huffman))
    parts.append(_segment(SOS, bytes([3, 0, 0x00, 1, 0x11, 2, 0x11, 0, 63, 0])))
    return b"".join(parts)
