"""SrtpTransport over real loopback RTP sockets: protection, wrong keys, replays, RTCP."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from softphone.net.rtp import open_port_pair
from softphone.net.srtp import SrtpTransport, fresh_crypto, supported_suites
from softphone.rtp.packet import RtpPacket
from softphone.sdp.crypto import SUITES, SrtpKeys

PAYLOAD = bytes(range(160))


def in_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def rtp(seq: int) -> bytes:
    return bytes(RtpPacket(payload_type=0, sequence=seq, timestamp=seq * 160, ssrc=0x1234, payload=PAYLOAD))


RTCP_RR = bytes([0x80, 201, 0, 1]) + (0x1234).to_bytes(4, "big")


def keys(suite: str, a: int, b: int) -> tuple[SrtpKeys, SrtpKeys]:
    n = sum(SUITES[suite])
    ka, kb = bytes([a]) * n, bytes([b]) * n
    return SrtpKeys(suite, ka, kb), SrtpKeys(suite, kb, ka)


async def _exchange(left_keys: SrtpKeys, right_keys: SrtpKeys, packets: list[bytes], rtcp: bool = False):
    left, right = open_port_pair("127.0.0.1", (0, 0)), open_port_pair("127.0.0.1", (0, 0))
    raw: list[bytes] = []
    got: list[bytes] = []
    try:
        await left.start()
        await right.start()
        sender = SrtpTransport(left, left_keys)
        receiver = SrtpTransport(right, right_keys)
        receiver.set_receivers(lambda d, a: got.append(d), lambda d, a: got.append(d))
        spy = right.on_rtcp if rtcp else right.on_rtp
        assert spy is not None
        hook = "on_rtcp" if rtcp else "on_rtp"
        setattr(right, hook, lambda d, a: (raw.append(d), spy(d, a)))
        for packet in packets:
            if rtcp:
                sender.send_rtcp(packet, ("127.0.0.1", right.port + 1))
            else:
                sender.send_rtp(packet, ("127.0.0.1", right.port))
        for _ in range(100):
            if len(raw) >= len(packets):
                break
            await asyncio.sleep(0.01)
        return got, raw, receiver
    finally:
        left.close()
        right.close()


@pytest.mark.parametrize("suite", supported_suites())
@in_loop
async def test_matching_keys_deliver_the_packets_and_hide_the_payload(suite: str) -> None:
    a, b = keys(suite, 1, 2)
    packets = [rtp(n) for n in range(5)]
    got, raw, receiver = await _exchange(a, b, packets)
    assert got == packets
    assert all(PAYLOAD[:32] not in d and len(d) > len(p) for d, p in zip(raw, packets, strict=True))
    assert receiver.stats() == {"srtp": suite, "srtp_auth_failures": 0, "srtp_replay_failures": 0}


@in_loop
async def test_wrong_key_delivers_nothing_and_counts_authentication_failures() -> None:
    a, _ = keys("AES_CM_128_HMAC_SHA1_80", 1, 2)
    _, wrong = keys("AES_CM_128_HMAC_SHA1_80", 3, 4)
    got, raw, receiver = await _exchange(a, wrong, [rtp(n) for n in range(5)])
    assert len(raw) == 5 and got == []
    assert receiver.auth_failures == 5 and receiver.replay_failures == 0


@in_loop
async def test_a_replayed_packet_is_dropped_and_counted() -> None:
    a, b = keys("AES_CM_128_HMAC_SHA1_80", 1, 2)
    left, right = open_port_pair("127.0.0.1", (0, 0)), open_port_pair("127.0.0.1", (0, 0))
    got: list[bytes] = []
    try:
        await right.start()
        sender, receiver = SrtpTransport(left, a), SrtpTransport(right, b)
        receiver.set_receivers(lambda d, addr: got.append(d), None)
        captured: list[bytes] = []
        inner = sender.inner
        sender.inner = type("Tap", (), {"send_rtp": lambda self, d, addr: (captured.append(d), inner.send_rtp(d, addr)),
                                        "send_rtcp": inner.send_rtcp, "set_receivers": inner.set_receivers})()
        sender.send_rtp(rtp(1), ("127.0.0.1", right.port))
        left.send_rtp(captured[0], ("127.0.0.1", right.port))  # the same SRTP packet again
        for _ in range(100):
            if len(got) + receiver.replay_failures >= 2:
                break
            await asyncio.sleep(0.01)
        assert got == [rtp(1)] and receiver.replay_failures == 1 and receiver.auth_failures == 0
    finally:
        left.close()
        right.close()


@in_loop
async def test_rtcp_is_protected_too() -> None:
    a, b = keys("AES_CM_128_HMAC_SHA1_80", 1, 2)
    got, raw, receiver = await _exchange(a, b, [RTCP_RR], rtcp=True)
    assert got == [RTCP_RR] and raw[0] != RTCP_RR and len(raw[0]) > len(RTCP_RR)
    _, wrong = keys("AES_CM_128_HMAC_SHA1_80", 3, 4)
    got, _, receiver = await _exchange(a, wrong, [RTCP_RR], rtcp=True)
    assert got == [] and receiver.auth_failures == 1


def test_fresh_crypto_draws_a_new_key_per_suite_and_call() -> None:
    first, second = fresh_crypto(), fresh_crypto()
    assert [c.suite for c in first] == list(supported_suites())
    assert all(c.usable() is None for c in first)
    assert {c.key_salt for c in first}.isdisjoint(c.key_salt for c in second)


