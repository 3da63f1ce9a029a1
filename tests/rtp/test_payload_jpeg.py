"""JPEG RTP payload format (RFC 2435): main, restart and quantization table headers, and
OpenCV JPEG files through packetize/depacketize back to a JFIF file OpenCV decodes."""
from __future__ import annotations

import random
import struct

import cv2
import numpy as np
import pytest

from softphone.rtp.packet import RtpPacket
from softphone.rtp.payload import EncodedFrame, PayloadError, depacketizer, packetizer
from softphone.rtp.payload.jpeg import JpegDepacketizer, JpegPacketizer, make_headers, parse_jfif
from softphone.rtp.payload.jpeg_tables import LUMA_QUANTIZER, ZIGZAG, make_tables

MTU = 1200
MAX_PAYLOAD = MTU - 12
QUALITY_80_420 = [cv2.IMWRITE_JPEG_QUALITY, 80, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_420]


def picture(index: int = 0, width: int = 640, height: int = 480) -> np.ndarray:
    rng = np.random.default_rng(index)
    image = rng.integers(0, 30, (height, width, 3), dtype=np.uint8)
    cv2.rectangle(image, (60 + index * 20, 80), (300 + index * 20, 320), (40, 220, 90), -1)
    cv2.circle(image, (480, 200), 90, (200, 60, 250), -1)
    cv2.putText(image, f"frame {index}", (40, 430), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 4)
    return cv2.GaussianBlur(image, (5, 5), 0)


def jpeg(image: np.ndarray, params: list[int] = QUALITY_80_420) -> bytes:
    ok, encoded = cv2.imencode(".jpg", image, params)
    assert ok
    return encoded.tobytes()


def rtp(payloads: list[tuple[bytes, bool]], timestamp: int = 0, seq: int = 100) -> list[RtpPacket]:
    return [
        RtpPacket(26, (seq + n) & 0xFFFF, timestamp, 7, payload, marker) for n, (payload, marker) in enumerate(payloads)
    ]


def decoded(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None
    return image


def dqt_tables(data: bytes) -> bytes:
    """The luma and chroma quantization tables of an OpenCV JPEG file (two DQT segments)."""
    start = data.index(b"\xff\xdb")
    return data[start + 5 : start + 69] + data[start + 74 : start + 138]


@pytest.fixture(scope="module")
def original() -> bytes:
    return jpeg(picture())


def test_opencv_writes_baseline_4_2_0(original: bytes) -> None:
    sof = original.index(b"\xff\xc0")
    assert original[sof + 11] == 0x22 and original[sof + 14] == 0x11 and original[sof + 17] == 0x11


def test_main_header_and_quantization_tables_in_the_first_packet_only(original: bytes) -> None:
    packets = JpegPacketizer().packetize(EncodedFrame(original, True), MTU)
    assert len(packets) > 3 and all(len(payload) <= MAX_PAYLOAD for payload, _ in packets)
    assert [marker for _, marker in packets] == [False] * (len(packets) - 1) + [True]
    first = packets[0][0]
    # Type-specific 0, Fragment Offset 0, Type 1 (4:2:0), Q 255, Width 640/8, Height 480/8
    assert first[:8] == bytes([0, 0, 0, 0, 1, 255, 80, 60])
    # MBZ 0, Precision 0 (8-bit), Length 128, then the luma and chroma tables in zig-zag order
    assert first[8:12] == b"\x00\x00\x00\x80" and first[12:140] == dqt_tables(original)
    offset = len(first) - 140
    for payload, _ in packets[1:]:
        assert payload[:8] == struct.pack("!BBHBBBB", 0, offset >> 16, offset & 0xFFFF, 1, 255, 80, 60)
        offset += len(payload) - 8
    sos = original.index(b"\xff\xda")
    assert offset == len(original) - (sos + 14) - 2  # the scan, without SOS header and EOI


def test_round_trip_decodes_like_the_original(original: bytes) -> None:
    packets = rtp(packetizer("JPEG").packetize(EncodedFrame(original, True), MTU), timestamp=1234)
    receiver = depacketizer("JPEG")
    [frame] = [frame for packet in packets for frame in receiver.push(packet)]
    assert frame.keyframe and frame.complete and frame.timestamp == 1234
    assert frame.data.startswith(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00") and frame.data.endswith(b"\xff\xd9")
    rebuilt, reference = decoded(frame.data), decoded(original)
    assert rebuilt.shape == (480, 640, 3)
    assert cv2.PSNR(rebuilt, reference) > 30
    assert cv2.PSNR(rebuilt, picture()) > 30


def test_shuffled_packets_and_duplicates(original: bytes) -> None:
    packets = rtp(JpegPacketizer().packetize(EncodedFrame(original, True), MTU))
    mixed = random.Random(9).sample(packets, len(packets))
    receiver = JpegDepacketizer()
    frames = [frame for packet in mixed + mixed[:3] for frame in receiver.push(packet)]
    assert len(frames) == 1 and frames[0].complete
    assert np.array_equal(decoded(frames[0].data), decoded(original))


def test_restart_interval_sends_the_restart_marker_header() -> None:
    data = jpeg(picture(), [*QUALITY_80_420, cv2.IMWRITE_JPEG_RST_INTERVAL, 4])
    packets = JpegPacketizer().packetize(EncodedFrame(data, True), MTU)
    # Type 65 = 1 + 64; Restart Interval 4, F=1 L=1 Restart Count 0x3FFF in every packet
    assert all(payload[4] == 65 and payload[8:12] == b"\x00\x04\xff\xff" for payload, _ in packets)
    receiver = JpegDepacketizer()
    [frame] = [frame for packet in rtp(packets) for frame in receiver.push(packet)]
    assert b"\xff\xdd\x00\x04\x00\x04" in frame.data
    assert np.array_equal(decoded(frame.data), decoded(data))


def test_4_2_2_is_type_0() -> None:
    sampling = [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_422]
    data = jpeg(picture(), [cv2.IMWRITE_JPEG_QUALITY, 80, *sampling])
    packets = JpegPacketizer().packetize(EncodedFrame(data, True), MTU)
    assert packets[0][0][4] == 0
    receiver = JpegDepacketizer()
    [frame] = [frame for packet in rtp(packets) for frame in receiver.push(packet)]
    assert np.array_equal(decoded(frame.data), decoded(data))


def test_q_below_128_uses_the_scaled_example_tables() -> None:
    assert make_tables(50)[0] == bytes(LUMA_QUANTIZER[ZIGZAG[i]] for i in range(64))
    assert make_tables(50)[0][:8] == bytes([16, 11, 12, 14, 12, 10, 16, 14])
    # libjpeg scales the same example tables the same way: quality 75 = Q 75 without tables in band
    data = jpeg(picture(), [cv2.IMWRITE_JPEG_QUALITY, 75])
    assert dqt_tables(data) == b"".join(make_tables(75))
    packets = JpegPacketizer().packetize(EncodedFrame(data, True), MTU)
    first = packets[0][0]
    packets[0] = (first[:5] + b"\x4b" + first[6:8] + first[140:], packets[0][1])  # Q=75, no table header
    receiver = JpegDepacketizer()
    [frame] = [frame for packet in rtp(packets) for frame in receiver.push(packet)]
    assert np.array_equal(decoded(frame.data), decoded(data))


def test_q_128_to_254_tables_are_remembered() -> None:
    data = jpeg(picture())
    receiver = JpegDepacketizer()
    frames = []
    seq = 100
    for timestamp, keep_tables in ((0, True), (3000, False)):
        packets = JpegPacketizer().packetize(EncodedFrame(data, True), MTU)
        first = packets[0][0]
        header = first[:5] + b"\x80" + first[6:8]  # Q=128
        tables = first[8:140] if keep_tables else b"\x00\x00\x00\x00"  # Length 0: the tables sent before
        packets = [(header + tables + first[140:], False)] + [(p[:5] + b"\x80" + p[6:], m) for p, m in packets[1:]]
        frames += [frame for packet in rtp(packets, timestamp, seq) for frame in receiver.push(packet)]
        seq += len(packets)
    assert len(frames) == 2 and frames[0].data == frames[1].data
    assert np.array_equal(decoded(frames[1].data), decoded(data))


def test_make_headers_layout() -> None:
    luma, chroma = make_tables(50)
    headers = make_headers(1, 80, 60, luma, chroma, 0)
    assert headers.startswith(b"\xff\xd8")
    assert b"\xff\xdb\x00\x84\x00" + luma + b"\x01" + chroma in headers
    assert b"\xff\xc0\x00\x11\x08\x01\xe0\x02\x80\x03\x00\x22\x00\x01\x11\x01\x02\x11\x01" in headers
    assert headers.endswith(b"\xff\xda\x00\x0c\x03\x00\x00\x01\x11\x02\x11\x00\x3f\x00")
    assert b"\xff\xdd" not in headers


@pytest.mark.parametrize(
    "params",
    [
        [cv2.IMWRITE_JPEG_PROGRESSIVE, 1],
        [cv2.IMWRITE_JPEG_OPTIMIZE, 1],  # Huffman tables other than the standard ones
        [cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444],
    ],
)
def test_what_rtp_jpeg_cannot_carry_is_refused(params: list[int]) -> None:
    with pytest.raises(PayloadError):
        JpegPacketizer().packetize(EncodedFrame(jpeg(picture(), params), True), MTU)


def test_grayscale_too_large_and_non_jpeg_are_refused() -> None:
    gray = jpeg(cv2.cvtColor(picture(), cv2.COLOR_BGR2GRAY))
    for data in (gray, jpeg(picture(width=2048, height=64)), b"not a jpeg", b"\xff\xd8\xff\xdb\x00"):
        with pytest.raises(PayloadError):
            parse_jfif(data)


def test_lost_packets() -> None:
    files = [jpeg(picture(index)) for index in range(4)]
    sender = JpegPacketizer()
    stream = []
    seq = 65530
    for n, data in enumerate(files):
        stream.append(rtp(sender.packetize(EncodedFrame(data, True), MTU), 3000 * n, seq))
        seq += len(stream[-1])
    lost = {(1, 2), (2, 0)}  # a middle packet of frame 1, the first packet of frame 2
    receiver = JpegDepacketizer()
    frames = [
        frame
        for n, packets in enumerate(stream)
        for i, packet in enumerate(packets)
        if (n, i) not in lost
        for frame in receiver.push(packet)
    ]
    assert [(frame.timestamp, frame.complete) for frame in frames] == [(0, True), (3000, False), (9000, False)]
    assert np.array_equal(decoded(frames[0].data), decoded(files[0]))
    assert decoded(frames[2].data).shape == (480, 640, 3)


def test_garbage_never_raises(original: bytes) -> None:
    rng = random.Random(11)
    receiver = JpegDepacketizer()
    for n in range(2000):
        payload = rng.randbytes(rng.randrange(0, 30))
        receiver.push(RtpPacket(26, n & 0xFFFF, rng.choice([0, 3000]), 1, payload, rng.random() < 0.3))
    for packet in rtp(JpegPacketizer().packetize(EncodedFrame(original, True), MTU), 9000):
        data = bytearray(packet.payload)
        for _ in range(3):
            data[rng.randrange(12)] = rng.randrange(256)
        receiver.push(RtpPacket(26, packet.sequence, packet.timestamp, 1, bytes(data[: rng.randrange(len(data) + 1)])))
    assert receiver.errors > 0
