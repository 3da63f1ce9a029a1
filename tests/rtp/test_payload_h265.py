"""H.265 RTP payload format (RFC 7798): PayloadHdr, AP and FU bytes, and real libx265 access
units through packetize/depacketize."""
from __future__ import annotations

import random
from collections.abc import Iterable
from fractions import Fraction

import av
import numpy as np
import pytest

from softphone.rtp.packet import RtpPacket
from softphone.rtp.payload import EncodedFrame, PayloadError, depacketizer, packetizer
from softphone.rtp.payload.h265 import H265Depacketizer, H265Packetizer, parse_payload

MTU = 1200
MAX_PAYLOAD = MTU - 12
TICKS = 3000
VPS = b"\x40\x01" + bytes(range(1, 22))  # type 32, LayerId 0, TID 1
SPS = b"\x42\x01" + bytes(range(1, 40))  # type 33
PPS = b"\x44\x01\xc1\x72\xb4\x62\x40"  # type 34
SEI = b"\x4e\x01\x05\x0a\xff"  # type 39, prefix SEI


def moving_picture(index: int) -> np.ndarray:
    rng = np.random.default_rng(index)
    image = rng.integers(0, 40, (480, 640, 3), dtype=np.uint8)
    image[:, (index * 17) % 560 : (index * 17) % 560 + 80] += 200
    image[120 + index * 4 : 220 + index * 4, 200:330] = (0, 0, 255)
    return image


def encode(codec: str, frames: int = 30, **options: str) -> list[EncodedFrame]:
    context = av.CodecContext.create(codec, "w")
    context.width, context.height, context.pix_fmt = 640, 480, "yuv420p"
    context.time_base, context.framerate, context.bit_rate = Fraction(1, 30), Fraction(30), 1_500_000
    context.options = options
    packets = []
    for index in range(frames):
        frame = av.VideoFrame.from_ndarray(moving_picture(index), format="bgr24").reformat(format="yuv420p")
        frame.pts = index
        packets.extend(context.encode(frame))
    packets.extend(context.encode(None))
    return [EncodedFrame(bytes(packet), packet.is_keyframe, TICKS * n) for n, packet in enumerate(packets)]


def rtp_stream(frames: Iterable[EncodedFrame], fmt: str, seq: int = 65500) -> list[list[RtpPacket]]:
    sender = packetizer(fmt)
    stream = []
    for frame in frames:
        packets = []
        for payload, marker in sender.packetize(frame, MTU):
            packets.append(RtpPacket(96, seq & 0xFFFF, frame.timestamp, 0x1234, payload, marker))
            seq += 1
        stream.append(packets)
    return stream


def receive(fmt: str, packets: Iterable[RtpPacket]) -> list[EncodedFrame]:
    receiver = depacketizer(fmt)
    return [frame for packet in packets for frame in receiver.push(packet)]


def decode(codec: str, frames: Iterable[EncodedFrame]) -> int:
    context = av.CodecContext.create(codec, "r")
    pictures = [picture for frame in frames for picture in context.decode(av.Packet(frame.data))]
    pictures.extend(context.decode(None))
    assert all(picture.width == 640 and picture.height == 480 for picture in pictures)
    return len(pictures)


def annexb(*nals: bytes) -> bytes:
    return b"".join(b"\x00\x00\x00\x01" + nal for nal in nals)


def payloads(*nals: bytes) -> list[tuple[bytes, bool]]:
    return H265Packetizer().packetize(EncodedFrame(annexb(*nals), True), MTU)


@pytest.fixture(scope="module")
def frames() -> list[EncodedFrame]:
    encoded = encode("libx265", preset="ultrafast", tune="zerolatency", **{"x265-params": "log-level=error"})
    assert len(encoded) == 30
    return encoded


@pytest.fixture(scope="module")
def stream(frames: list[EncodedFrame]) -> list[list[RtpPacket]]:
    return rtp_stream(frames, "H265")


# ----------------------------------------------------------------- byte layouts

def test_small_nal_units_share_one_aggregation_packet() -> None:
    idr = b"\x26\x01\xaf" + bytes(range(1, 20))  # type 19 (IDR_W_RADL)
    [(payload, marker)] = payloads(VPS, SPS, PPS, idr)
    assert marker
    # PayloadHdr F=0 Type=48 LayerId=0 TID=1, then 16-bit size + NAL unit each
    sizes = [len(VPS), len(SPS), len(PPS), len(idr)]
    units = b"".join(size.to_bytes(2, "big") + nal for size, nal in zip(sizes, [VPS, SPS, PPS, idr], strict=True))
    assert payload == b"\x60\x01" + units


def test_aggregation_header_takes_the_lowest_layer_id_and_tid() -> None:
    layer_one = b"\x02\x0a\x80\x01"  # type 1, LayerId 1, TID 2
    tid_one = b"\x02\x11\x80\x01"  # type 1, LayerId 2, TID 1
    [(payload, _)] = payloads(layer_one, tid_one)
    assert payload[:2] == bytes([48 << 1, 1 << 3 | 1])
    [(payload, _)] = payloads(b"\x03\x0a\x80\x01", b"\x03\x12\x80\x01")  # LayerId 33 and 34
    assert payload[:2] == bytes([48 << 1 | 1, 1 << 3 | 2])


def test_a_lone_small_nal_unit_is_a_single_nal_unit_packet() -> None:
    assert payloads(b"\x02\x01\xd0\x22") == [(b"\x02\x01\xd0\x22", True)]


def test_large_nal_unit_becomes_fragmentation_units() -> None:
    idr = b"\x26\x01" + bytes(1 + i % 251 for i in range(3000))
    packets = payloads(VPS, SPS, PPS, idr)
    assert packets[0][0][:2] == b"\x60\x01" and not packets[0][1]
    fus = [payload for payload, _ in packets[1:]]
    assert len(fus) == 3 and [marker for _, marker in packets] == [False, False, False, True]
    # PayloadHdr: F, LayerId, TID of the NAL unit with Type=49; FU header: S, E, FuType=19
    assert [fu[:3] for fu in fus] == [b"\x62\x01\x93", b"\x62\x01\x13", b"\x62\x01\x53"]
    assert b"\x26\x01" + b"".join(fu[3:] for fu in fus) == idr
    assert all(len(fu) <= MAX_PAYLOAD for fu in fus)


def test_depacketizer_rebuilds_annex_b_with_long_start_codes_for_parameter_sets() -> None:
    slices = [b"\x26\x01\xaf" + bytes(range(1, 256)) * 3, b"\x26\x01\x2f" + bytes(range(1, 256)) * 3]
    short = b"\x00\x00\x01"
    sent = annexb(VPS, SPS, PPS) + short + SEI + short + slices[0] + short + slices[1]
    packets = H265Packetizer().packetize(EncodedFrame(sent, True), MTU)
    rtp = [RtpPacket(96, n, 0, 1, payload, marker) for n, (payload, marker) in enumerate(packets)]
    [frame] = receive("H265", rtp)
    assert frame.data == sent and frame.keyframe and frame.complete


@pytest.mark.parametrize(
    ("nal_type", "keyframe"), [(1, False), (16, True), (19, True), (21, True), (23, True), (24, False)]
)
def test_keyframe_is_an_irap_picture(nal_type: int, keyframe: bool) -> None:
    payload = bytes([nal_type << 1, 1, 0x80, 0x11])
    [frame] = receive("H265", [RtpPacket(96, 9, 0, 1, payload, True)])
    assert frame.keyframe is keyframe and frame.data == b"\x00\x00\x00\x01" + payload


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x02",  # shorter than the PayloadHdr
        b"\x82\x01\x80",  # F bit set
        b"\x60\x01\x00",  # AP size truncated
        b"\x60\x01\x00\x09\x02\x01",  # AP unit longer than the packet
        b"\x60\x01\x00\x01\x02",  # AP unit shorter than a NAL unit header
        b"\x62\x01\x93",  # FU without data
        b"\x62\x01\xd3\x00",  # FU with Start and End
        b"\x64\x01\x00\x00",  # PACI (50)
        b"\x7e\x01\x00",  # type 63
    ],
)
def test_malformed_or_unsupported_payloads_are_payload_errors(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_payload(payload)


def test_fu_rebuilds_the_nal_header() -> None:
    unit = parse_payload(b"\x63\x0a\x81\xaa")  # Type 49, LayerId 33, TID 2; S=1, FuType 1
    assert unit.first and not unit.last and unit.header == b"\x03\x0a" and unit.fragment == b"\xaa"

# ----------------------------------------------------- ---- real libx265 access units


def test_stream_uses_stap_a_and_fu_a_within_the_mtu(stream: list[list[RtpPacket]]) -> None:
    types = {packet.payload[0] >> 1 & 0x3F for packets in stream for packet in packets}
    assert {48, 49} <= types
    for packets in stream:
        assert all(len(packet.payload) <= MAX_PAYLOAD for packet in packets)
        assert [packet.marker for packet in packets] == [False] * (len(packets) - 1) + [True]


def test_round_trip_gives_the_encoder_bytes(frames: list[EncodedFrame], stream: list[list[RtpPacket]]) -> None:
    received = receive("H265", [packet for packets in stream for packet in packets])
    assert received == frames
    assert [frame.keyframe for frame in received] == [True] + [False] * 29
    assert decode("hevc", received) == 30


def test_shuffled_packets_within_each_frame(frames: list[EncodedFrame], stream: list[list[RtpPacket]]) -> None:
    rng = random.Random(4)
    received = receive("H265", [packet for packets in stream for packet in rng.sample(packets, len(packets))])
    assert received == frames
    assert decode("hevc", received) == 30


def test_lost_middle_packet_makes_the_frame_incomplete(
    frames: list[EncodedFrame], stream: list[list[RtpPacket]]
) -> None:
    victim = next(n for n, packets in enumerate(stream) if n > 2 and len(packets) >= 3)
    packets = [p for n, packets in enumerate(stream) for i, p in enumerate(packets) if (n, i) != (victim, 1)]
    received = receive("H265", packets)
    assert [frame.complete for frame in received] == [n != victim for n in range(len(frames))]
    assert received[victim + 1 :] == frames[victim + 1 :]
    assert len(received[victim].data) < len(frames[victim].data)


def test_lost_marker_packet_still_yields_the_next_frame(
    frames: list[EncodedFrame], stream: list[list[RtpPacket]]
) -> None:
    victim = next(n for n, packets in enumerate(stream) if n > 2 and len(packets) >= 2)
    packets = [p for n, packets in enumerate(stream) for p in packets if not (n == victim and p.marker)]
    received = receive("H265", packets)
    assert [frame.complete for frame in received] == [n != victim for n in range(len(frames))]
    assert received[victim + 1] == frames[victim + 1]


def test_duplicates_are_ignored(frames: list[EncodedFrame], stream: list[list[RtpPacket]]) -> None:
    receiver = H265Depacketizer()
    received = []
    for packets in stream:
        for packet in packets + packets[:1]:
            received.extend(receiver.push(packet))
            received.extend(receiver.push(packet))
    assert received == frames


def test_garbage_never_raises(stream: list[list[RtpPacket]]) -> None:
    rng = random.Random(5)
    receiver = H265Depacketizer()
    for n in range(2000):
        payload = bytes([rng.choice([0x60, 0x62, 0x26, 0x64, 0x40, 0xE0]), 1]) + rng.randbytes(rng.randrange(0, 30))
        receiver.push(RtpPacket(96, n & 0xFFFF, rng.choice([0, 3000, 6000]), 1, payload, rng.random() < 0.3))
    for packet in (packet for packets in stream for packet in packets):
        data = bytearray(packet.payload)
        for _ in range(3):
            data[rng.randrange(min(len(data), 8))] = rng.randrange(256)
        receiver.push(RtpPacket(96, packet.sequence, packet.timestamp, 1, bytes(data[: rng.randrange(len(data) + 1)])))
    assert receiver.errors > 0
