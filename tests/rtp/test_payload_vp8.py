"""VP8 RTP payload format (RFC 7741): descriptor bytes, and real libvpx frames through packetize/depacketize."""
from __future__ import annotations

import random
from collections.abc import Iterable
from fractions import Fraction

import av
import numpy as np
import pytest

from softphone.rtp.packet import RtpPacket
from softphone.rtp.payload import EncodedFrame, PayloadError, depacketizer, packetizer
from softphone.rtp.payload.vp8 import Vp8Depacketizer, Vp8Packetizer, parse_descriptor

MTU = 1200
MAX_PAYLOAD = MTU - 12
TICKS = 3000  # 90 kHz at 30 frames per second


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


def rtp_stream(frames: Iterable[EncodedFrame], fmt: str, seq: int = 65530) -> list[list[RtpPacket]]:
    """The RTP packets of each frame; sequence numbers wrap."""
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


@pytest.fixture(scope="module")
def frames() -> list[EncodedFrame]:
    encoded = encode("libvpx", deadline="realtime", **{"cpu-used": "8", "lag-in-frames": "0"})
    assert len(encoded) == 30
    return encoded


@pytest.fixture(scope="module")
def stream(frames: list[EncodedFrame]) -> list[list[RtpPacket]]:
    return rtp_stream(frames, "VP8")


# ----------------------------------------------------------------- byte layouts


def test_descriptor_layout_x_i_and_15_bit_picture_id() -> None:
    packets = Vp8Packetizer(picture_id=0x1234).packetize(EncodedFrame(b"\x10" + bytes(2999), False), MTU)
    assert [marker for _, marker in packets] == [False, False, True]
    # X=1 S=1 PID=0 | I=1 | M=1 + 15-bit PictureID
    assert packets[0][0][:4] == bytes([0b1001_0000, 0b1000_0000, 0x80 | 0x12, 0x34])
    assert packets[1][0][:4] == bytes([0b1000_0000, 0b1000_0000, 0x92, 0x34])
    assert packets[2][0][:4] == bytes([0b1000_0000, 0b1000_0000, 0x92, 0x34])
    assert b"".join(payload[4:] for payload, _ in packets) == b"\x10" + bytes(2999)
    assert all(len(payload) <= MAX_PAYLOAD for payload, _ in packets)


def test_picture_id_counts_frames_and_wraps_at_15_bits() -> None:
    sender = Vp8Packetizer(picture_id=0x7FFF)
    ids = [sender.packetize(EncodedFrame(b"\x11abc", False), MTU)[0][0][2:4] for _ in range(2)]
    assert ids == [b"\xff\xff", b"\x80\x00"]


def test_small_frame_is_one_packet_with_marker() -> None:
    assert Vp8Packetizer(picture_id=5).packetize(EncodedFrame(b"\x11abc", False), MTU) == [
        (bytes([0x90, 0x80, 0x80, 0x05]) + b"\x11abc", True)
    ]


@pytest.mark.parametrize(
    ("payload", "start", "partition", "picture_id", "data"),
    [
        (b"\x10\x50abc", True, 0, None, b"\x50abc"),  # no extension
        (bytes([0x93, 0x80, 0x05]) + b"xy", True, 3, 5, b"xy"),  # 7-bit PictureID
        (bytes([0x80, 0x80, 0x81, 0x02]) + b"z", False, 0, 0x102, b"z"),  # 15-bit PictureID
        (bytes([0x90, 0xF0, 0x85, 0x07, 0x09, 0x20]) + b"d", True, 0, 0x507, b"d"),  # I, L, T, K
        (bytes([0x90, 0x40, 0x09]) + b"e", True, 0, None, b"e"),  # L only
    ],
)
def test_parse_descriptor(payload: bytes, start: bool, partition: int, picture_id: int | None, data: bytes) -> None:
    unit = parse_descriptor(payload)
    assert (unit.start, unit.partition, unit.picture_id, unit.data) == (start, partition, picture_id, data)


@pytest.mark.parametrize("payload", [b"", b"\x10", b"\x80", b"\x80\x80", b"\x80\x80\x81", b"\x90\x80\x81\x02"])
def test_truncated_descriptor_is_a_payload_error(payload: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_descriptor(payload)


@pytest.mark.parametrize(("first_octet", "keyframe"), [(0x50, True), (0x51, False)])
def test_keyframe_is_the_inverse_p_bit(first_octet: int, keyframe: bool) -> None:
    payloads = Vp8Packetizer(picture_id=1).packetize(EncodedFrame(bytes([first_octet]) + bytes(2000), keyframe), MTU)
    packets = [RtpPacket(96, n, 90, 1, payload, marker) for n, (payload, marker) in enumerate(payloads)]
    [frame] = receive("VP8", packets)
    assert frame.keyframe is keyframe and frame.complete and frame.timestamp == 90


def test_unknown_name_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="VP9"):
        packetizer("VP9")
    with pytest.raises(ValueError, match="available"):
        depacketizer("VP9")
    assert isinstance(packetizer("vp8"), Vp8Packetizer)


# ------------------------------------------------------- real libvpx frames


def test_every_payload_fits_the_mtu_and_only_last_packets_carry_the_marker(stream: list[list[RtpPacket]]) -> None:
    assert any(len(packets) > 2 for packets in stream)
    for packets in stream:
        assert all(len(packet.payload) <= MAX_PAYLOAD for packet in packets)
        assert [packet.marker for packet in packets] == [False] * (len(packets) - 1) + [True]
        assert [parse_descriptor(packet.payload).start for packet in packets] == [True] + [False] * (len(packets) - 1)


def test_round_trip_gives_the_encoder_bytes(frames: list[EncodedFrame], stream: list[list[RtpPacket]]) -> None:
    received = receive("VP8", [packet for packets in stream for packet in packets])
    assert received == frames
    assert received[0].keyframe and not any(frame.keyframe for frame in received[1:])
    assert decode("vp8", received) == 30


def test_shuffled_packets_within_each_frame(frames: list[EncodedFrame], stream: list[list[RtpPacket]]) -> None:
    rng = random.Random(7)
    shuffled = [packet for packets in stream for packet in rng.sample(packets, len(packets))]
    received = receive("VP8", shuffled)
    assert received == frames
    assert decode("vp8", received) == 30


def test_lost_middle_packet_makes_the_frame_incomplete(
    frames: list[EncodedFrame], stream: list[list[RtpPacket]]
) -> None:
    victim = next(n for n, packets in enumerate(stream) if n > 2 and len(packets) >= 3)
    packets = [p for n, packets in enumerate(stream) for i, p in enumerate(packets) if (n, i) != (victim, 1)]
    received = receive("VP8", packets)
    assert [frame.timestamp for frame in received] == [frame.timestamp for frame in frames]
    assert [frame.complete for frame in received] == [n != victim for n in range(len(frames))]
    assert received[victim + 1 :] == frames[victim + 1 :]


def test_lost_marker_packet_still_yields_the_next_frame(
    frames: list[EncodedFrame], stream: list[list[RtpPacket]]
) -> None:
    victim = next(n for n, packets in enumerate(stream) if n > 2 and len(packets) >= 2)
    packets = [p for n, packets in enumerate(stream) for p in packets if not (n == victim and p.marker)]
    received = receive("VP8", packets)
    assert [frame.complete for frame in received] == [n != victim for n in range(len(frames))]
    assert received[victim + 1] == frames[victim + 1]


def test_a_whole_lost_frame_marks_the_next_incomplete(
    frames: list[EncodedFrame], stream: list[list[RtpPacket]]
) -> None:
    packets = [p for n, packets in enumerate(stream) if n != 6 for p in packets]
    received = receive("VP8", packets)
    assert [frame.timestamp for frame in received] == [f.timestamp for n, f in enumerate(frames) if n != 6]
    assert [frame.complete for frame in received].count(False) == 1
    assert not received[6].complete and received[6].data == frames[7].data


def test_duplicates_are_ignored(frames: list[EncodedFrame], stream: list[list[RtpPacket]]) -> None:
    receiver = Vp8Depacketizer()
    received = []
    for packets in stream:
        for packet in packets + packets[:1]:
            received.extend(receiver.push(packet))
            received.extend(receiver.push(packet))
    assert received == frames
    assert receiver.duplicates + receiver.late == sum(len(packets) + 2 for packets in stream)


def test_garbage_never_raises(stream: list[list[RtpPacket]]) -> None:
    rng = random.Random(1)
    receiver = Vp8Depacketizer()
    for n in range(2000):
        payload = rng.randbytes(rng.randrange(0, 40))
        receiver.push(RtpPacket(96, n & 0xFFFF, rng.choice([0, 3000, 6000]), 1, payload, rng.random() < 0.3))
    for packet in (packet for packets in stream for packet in packets):
        data = bytearray(packet.payload)
        for _ in range(3):
            data[rng.randrange(min(len(data), 8))] = rng.randrange(256)
        receiver.push(RtpPacket(96, packet.sequence, packet.timestamp, 1, bytes(data[: rng.randrange(len(data) + 1)])))
    assert receiver.errors > 0


def test_late_packets_of_a_delivered_frame_are_dropped_and_a_restarted_stream_is_followed() -> None:
    receiver = Vp8Depacketizer()
    first = RtpPacket(96, 10, 2_000_000, 1, b"\x90\x80\x80\x01\x50", True)
    assert [frame.timestamp for frame in receiver.push(first)] == [2_000_000]
    assert receiver.push(RtpPacket(96, 9, 1_997_000, 1, b"\x90\x80\x80\x00\x50", True)) == []
    assert receiver.push(first) == [] and receiver.late == 2
    restarted = RtpPacket(96, 5000, 1000, 1, b"\x90\x80\x80\x01\x50", True)  # 10 s behind: a new stream
    assert [frame.timestamp for frame in receiver.push(restarted)] == [1000]
