"""H.264 RTP payload format (RFC 6184, packetization-mode=1): STAP-A and FU-A bytes, and real
libx264 access units through packetize/depacketize."""
from __future__ import annotations

import random
from collections.abc import Iterable
from fractions import Fraction

import av
import numpy as np
import pytest

from softphone.rtp.packet import RtpPacket
from softphone.rtp.payload import EncodedFrame, PayloadError, depacketizer, packetizer
from softphone.rtp.payload.h264 import H264Depacketizer, H264Packetizer, parse_payload
from softphone.rtp.payload.nal import split_annexb

MTU = 1200
MAX_PAYLOAD = MTU - 12
TICKS = 3000
SPS = bytes.fromhex("6742c01eda0280f684000003000400000300f23c58ba80")
PPS = bytes.fromhex("68ce0fc8")
SEI = bytes.fromhex("0605ff")


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
    return H264Packetizer().packetize(EncodedFrame(annexb(*nals), True), MTU)


@pytest.fixture(scope="module")
def frames() -> list[EncodedFrame]:
    encoded = encode("libx264", preset="ultrafast", tune="zerolatency", profile="baseline", g="120")
    assert len(encoded) == 30
    return encoded


@pytest.fixture(scope="module")
def stream(frames: list[EncodedFrame]) -> list[list[RtpPacket]]:
    return rtp_stream(frames, "H264")


# ----------------------------------------------------------------- byte layouts


def test_small_nal_units_share_one_stap_a() -> None:
    idr = b"\x65" + bytes(range(1, 20))
    [(payload, marker)] = payloads(SPS, PPS, idr)
    assert marker
    # F=0, NRI=3 (the maximum of 3, 3, 3), Type=24, then 16-bit size + NAL unit each
    expected = b"\x78" + b"\x00\x17" + SPS + b"\x00\x04" + PPS + b"\x00\x14" + idr
    assert payload == expected


def test_stap_a_nri_is_the_maximum_and_f_the_or() -> None:
    [(payload, _)] = payloads(SEI, b"\x41\x9a\x02")
    assert payload[0] == 0x40 | 24
    [(payload, _)] = payloads(SEI, b"\xc1\x9a\x02")
    assert payload[0] == 0x80 | 0x40 | 24


def test_a_lone_small_nal_unit_is_a_single_nal_unit_packet() -> None:
    assert payloads(b"\x41\x9a\x02") == [(b"\x41\x9a\x02", True)]


def test_large_nal_unit_becomes_fu_a() -> None:
    idr = b"\x65" + bytes(i % 251 for i in range(3000))
    packets = payloads(SPS, PPS, idr)
    assert packets[0] == (b"\x78\x00\x17" + SPS + b"\x00\x04" + PPS, False)
    fus = [payload for payload, _ in packets[1:]]
    assert len(fus) == 3 and [marker for _, marker in packets] == [False, False, False, True]
    # FU indicator: F, NRI of the NAL unit, Type=28; FU header: S, E, R=0, Type=5
    assert [fu[:2] for fu in fus] == [b"\x7c\x85", b"\x7c\x05", b"\x7c\x45"]
    assert b"\x65" + b"".join(fu[2:] for fu in fus) == idr
    assert all(len(fu) <= MAX_PAYLOAD for fu in fus)
    assert max(map(len, fus)) - min(map(len, fus)) <= 1  # fragments of even size


def test_depacketizer_rebuilds_annex_b_with_long_start_codes_where_annex_b_requires_them() -> None:
    slices = [b"\x65\x88" + bytes(range(1, 256)) * 3, b"\x65\x08" + bytes(range(1, 256)) * 3]
    sent = annexb(SPS, PPS) + b"\x00\x00\x01" + SEI + b"\x00\x00\x01" + slices[0] + b"\x00\x00\x01" + slices[1]
    packets = H264Packetizer().packetize(EncodedFrame(sent, True), MTU)
    rtp = [RtpPacket(96, n, 0, 1, payload, marker) for n, (payload, marker) in enumerate(packets)]
    [frame] = receive("H264", rtp)
    assert frame.data == sent and frame.keyframe and frame.complete


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x78\x00",  # STAP-A size truncated
        b"\x78\x00\x05\x67\x42",  # STAP-A unit longer than the packet
        b"\x78\x00\x00",  # STAP-A unit of size 0
        b"\x78",  # STAP-A without units
        b"\x7c\x85",  # FU-A without data
        b"\x7c\xc5\x00",  # FU-A with Start and End
        b"\x79\x00\x01\x00\x02\x41\x9a",  # STAP-B: interleaved mode only
        b"\x7a\x00",  # MTAP16
        b"\x7d\x85\x00\x01\x02",  # FU-B
        b"\x00\x01",  # type 0
        b"\x1f\x01",  # type 31
    ],
)
def test_malformed_or_disallowed_payloads_are_payload_errors(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_payload(payload)


def test_fu_a_rebuilds_the_nal_header_from_indicator_and_header() -> None:
    unit = parse_payload(b"\x5c\x81\xaa\xbb")  # NRI=2, Type 28; S=1, Type 1
    assert unit.first and not unit.last and unit.header == b"\x41" and unit.fragment == b"\xaa\xbb"


def test_annex_b_split_handles_short_and_long_start_codes() -> None:
    assert split_annexb(b"\x00\x00\x00\x01\x67\x01\x00\x00\x01\x68\x02\x00\x00\x00\x00\x01\x65") == [
        b"\x67\x01",
        b"\x68\x02",
        b"\x65",
    ]
    with pytest.raises(PayloadError):
        split_annexb(b"\x67\x01\x02")


# ----------------------------------------------------- real libx264 access units


def test_stream_uses_stap_a_and_fu_a_within_the_mtu(stream: list[list[RtpPacket]]) -> None:
    types = {packet.payload[0] & 0x1F for packets in stream for packet in packets}
    assert {24, 28} <= types
    for packets in stream:
        assert all(len(packet.payload) <= MAX_PAYLOAD for packet in packets)
        assert [packet.marker for packet in packets] == [False] * (len(packets) - 1) + [True]


def test_round_trip_gives_the_encoder_bytes(frames: list[EncodedFrame], stream: list[list[RtpPacket]]) -> None:
    received = receive("H264", [packet for packets in stream for packet in packets])
    assert received == frames
    assert [frame.keyframe for frame in received] == [True] + [False] * 29
    assert decode("h264", received) == 30


def test_shuffled_packets_within_each_frame(frames: list[EncodedFrame], stream: list[list[RtpPacket]]) -> None:
    rng = random.Random(3)
    received = receive("H264", [packet for packets in stream for packet in rng.sample(packets, len(packets))])
    assert received == frames
    assert decode("h264", received) == 30


def test_lost_middle_packet_makes_the_frame_incomplete(
    frames: list[EncodedFrame], stream: list[list[RtpPacket]]
) -> None:
    victim = next(n for n, packets in enumerate(stream) if n > 2 and len(packets) >= 3)
    packets = [p for n, packets in enumerate(stream) for i, p in enumerate(packets) if (n, i) != (victim, 1)]
    received = receive("H264", packets)
    assert [frame.complete for frame in received] == [n != victim for n in range(len(frames))]
    assert received[victim + 1 :] == frames[victim + 1 :]
    assert len(received[victim].data) < len(frames[victim].data)


def test_lost_marker_packet_still_yields_the_next_frame(
    frames: list[EncodedFrame], stream: list[list[RtpPacket]]
) -> None:
    victim = next(n for n, packets in enumerate(stream) if n > 2 and len(packets) >= 2)
    packets = [p for n, packets in enumerate(stream) for p in packets if not (n == victim and p.marker)]
    received = receive("H264", packets)
    assert [frame.complete for frame in received] == [n != victim for n in range(len(frames))]
    assert received[victim + 1] == frames[victim + 1]


def test_duplicates_are_ignored(frames: list[EncodedFrame], stream: list[list[RtpPacket]]) -> None:
    receiver = H264Depacketizer()
    received = []
    for packets in stream:
        for packet in packets + packets[:1]:
            received.extend(receiver.push(packet))
            received.extend(receiver.push(packet))
    assert received == frames


def test_garbage_never_raises(stream: list[list[RtpPacket]]) -> None:
    rng = random.Random(2)
    receiver = H264Depacketizer()
    for n in range(2000):
        payload = bytes([rng.choice([24, 28, 0x7C, 0x78, 0x65, 29, 0])]) + rng.randbytes(rng.randrange(0, 30))
        receiver.push(RtpPacket(96, n & 0xFFFF, rng.choice([0, 3000, 6000]), 1, payload, rng.random() < 0.3))
    for packet in (packet for packets in stream for packet in packets):
        data = bytearray(packet.payload)
        for _ in range(3):
            data[rng.randrange(min(len(data), 8))] = rng.randrange(256)
        receiver.push(RtpPacket(96, packet.sequence, packet.timestamp, 1, bytes(data[: rng.randrange(len(data) + 1)])))
    assert receiver.errors > 0


def test_fu_a_with_a_lost_fragment_is_cut_at_the_hole() -> None:
    idr = b"\x65\x88" + bytes(range(1, 256)) * 12
    fus = payloads(idr)
    assert len(fus) == 3
    packets = [RtpPacket(96, n, 0, 1, payload, marker) for n, (payload, marker) in enumerate(fus) if n != 1]
    packets.append(RtpPacket(96, 3, 3000, 1, b"\x41\x9a\x02", True))
    [damaged, following] = receive("H264", packets)
    assert not damaged.complete and damaged.keyframe
    assert damaged.data == b"\x00\x00\x00\x01\x65" + fus[0][0][2:]
    assert following.complete and following.data == b"\x00\x00\x00\x01\x41\x9a\x02"
