"""Symmetric RTP for video ([rtp] symmetric): the video stream sends to where the peer's
first valid RTP packet came from, as audio does; with symmetric=0 it keeps to the SDP's address.
Real sockets on loopback, a pattern camera."""

from __future__ import annotations

import asyncio
import socket

import pytest

from softphone.config import loads
from softphone.media.video import VideoParams, VideoStream
from softphone.net.rtp import RtpPortPair
from softphone.offer import video_options_for
from softphone.rtp.packet import RtpPacket
from softphone.session import MediaChoice

HOST = "127.0.0.1"


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    return sock


def _drain(sock: socket.socket) -> int:
    count = 0
    while True:
        try:
            sock.recv(65535)
        except BlockingIOError:
            return count
        count += 1


async def _received_after_a_packet_from_elsewhere(symmetric: bool) -> tuple[int, int]:
    """RTP our stream sent to the SDP's address and to the source of the peer's packets,
    counted after the peer's first packet came from that other source."""
    config = loads(f"[rtp]\nsymmetric={int(symmetric)}\n[video]\ndevice=pattern:\ndisplay_dev=null:\nframerate=20\n",
                   "test.rc")
    options, _ = video_options_for(config, MediaChoice())
    assert options.symmetric is symmetric
    rtp, rtcp = _udp(), _udp()
    pair = RtpPortPair(rtp, rtcp)
    await pair.start()
    sdp, elsewhere = _udp(), _udp()
    params = VideoParams("VP8", 96, 96, sdp.getsockname(), (HOST, sdp.getsockname()[1] + 1))
    stream = VideoStream(pair, params, options)
    await stream.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 10
        while _drain(sdp) == 0:  # it sends to the SDP's address first
            assert loop.time() < deadline, "no video RTP to the SDP's address"
            await asyncio.sleep(0.05)
        for seq in range(3):
            packet = RtpPacket(96, seq, 1000, 0x1234, b"\x10\x00", marker=False)
            elsewhere.sendto(bytes(packet), rtp.getsockname())
        await asyncio.sleep(0.3)  # the packets are taken in
        _drain(sdp), _drain(elsewhere)
        await asyncio.sleep(1.0)  # about 20 frames
        return _drain(sdp), _drain(elsewhere)
    finally:
        await stream.stop()
        pair.close()
        sdp.close()
        elsewhere.close()


@pytest.mark.timeout(30)
def test_symmetric_video_follows_the_source_of_the_peers_rtp() -> None:
    to_sdp, to_source = asyncio.run(_received_after_a_packet_from_elsewhere(True))
    assert to_source > 5 and to_sdp == 0, (to_sdp, to_source)


@pytest.mark.timeout(30)
def test_without_symmetric_video_keeps_to_the_sdp_address() -> None:
    to_sdp, to_source = asyncio.run(_received_after_a_packet_from_elsewhere(False))
    assert to_sdp > 5 and to_source == 0, (to_sdp, to_source)
