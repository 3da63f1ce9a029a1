"""DTMF waits for audio: some phones drop an RTP stream whose first packets are telephone
events, so the first digit goes out only after a few hundred ms of audio."""

from __future__ import annotations

import asyncio
import socket

import pytest

from softphone.media.audio import DTMF_AFTER_AUDIO_MS, AudioOptions, AudioParams, AudioStream
from softphone.net.rtp import RtpPortPair
from softphone.rtp.packet import RtpPacket


def _udp() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    return sock


async def _payload_types_sent(digits_queued_before_start: str, seconds: float) -> list[int]:
    peer = _udp()
    peer.setblocking(False)
    rtp, rtcp = _udp(), _udp()
    pair = RtpPortPair(rtp, rtcp)
    await pair.start()
    address = peer.getsockname()
    params = AudioParams("PCMU", 0, 0, address, (address[0], address[1] + 1), send_event_payload_type=101,
                         recv_event_payload_types=frozenset({101}))
    stream = AudioStream(pair, params, AudioOptions(source="tone: 440"))
    stream.send_dtmf(digits_queued_before_start)
    await stream.start()
    await asyncio.sleep(seconds)
    await stream.stop()
    pair.close()
    types = []
    while True:
        try:
            types.append(RtpPacket.parse(peer.recv(2048)).payload_type)
        except BlockingIOError:
            break
    peer.close()
    return types


@pytest.mark.timeout(30)
def test_the_first_digit_waits_for_audio_to_flow() -> None:
    types = asyncio.run(_payload_types_sent("1", 1.2))
    first_event = types.index(101)
    assert first_event * 20 >= DTMF_AFTER_AUDIO_MS, types
    assert set(types[:first_event]) == {0}, types
    assert types.count(101) >= 4, types  # the digit went out whole: start, updates, three ends
