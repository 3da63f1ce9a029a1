"""RTP port pairs bound ahead of the calls that take them (``SparePairs``), and a phone whose
calls take them: no socket is bound between an INVITE and its answer."""

from __future__ import annotations

import asyncio
import resource
import select
import socket
import time

import pytest

from softphone.agent import IncomingPolicy
from softphone.config import loads
from softphone.net.rtp import MAX_SPARES, RtpPortPair, SparePairs, open_port_pair
from softphone.phone import Phone
from softphone.sdp.model import SessionDescription
from softphone.session import MediaChoice
from tests.conftest import free_rtp_port

HOST = "127.0.0.1"
ANY = (0, 0)


def is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def test_a_call_takes_the_pairs_bound_ahead_and_refill_binds_as_many_as_it_took() -> None:
    spares = SparePairs()
    try:
        first = [spares.take(HOST, ANY), spares.take(HOST, ANY)]  # nothing ahead yet: bound now
        assert spares.held() == []
        spares.refill()
        ahead = spares.held()
        assert len(ahead) == 2 and not any(is_free(port) or is_free(port + 1) for port in ahead)
        second = [spares.take(HOST, ANY), spares.take(HOST, ANY)]
        assert sorted(pair.port for pair in second) == sorted(ahead) and spares.held() == []
        spares.refill()
        assert len(spares.held()) == 2
        for pair in first + second:
            pair.close()
    finally:
        spares.close()


def test_refill_binds_at_most_max_spares_and_close_frees_them() -> None:
    spares = SparePairs()
    taken = [spares.take(HOST, ANY) for _ in range(MAX_SPARES + 3)]
    spares.refill()
    ahead = spares.held()
    assert len(ahead) == MAX_SPARES
    spares.close()
    assert spares.held() == [] and all(is_free(port) and is_free(port + 1) for port in ahead)
    for pair in taken:
        pair.close()


def test_a_single_configured_port_is_bound_by_its_call_and_free_while_idle() -> None:
    port = free_rtp_port()
    spares = SparePairs()
    try:
        pair = spares.take(HOST, (port, port))
        assert pair.port == port
        spares.refill()
        assert spares.held() == []
        pair.close()
        assert is_free(port)  # not held for the next call: another program may use it meanwhile
    finally:
        spares.close()


def test_what_reached_a_spare_before_its_call_took_it_is_dropped() -> None:
    spares = SparePairs()
    try:
        spares.take(HOST, ANY).close()
        spares.refill()
        (port,) = spares.held()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stray:
            for target in (port, port + 1):
                stray.sendto(b"an old stream", (HOST, target))
            pair = spares.take(HOST, ANY)
            assert select.select([pair.rtp, pair.rtcp], [], [], 0)[0] == []
            stray.sendto(b"the new call's", (HOST, port))  # what comes once the call has it stays
            assert select.select([pair.rtp], [], [], 2)[0] == [pair.rtp]
            assert pair.rtp.recv(100) == b"the new call's"
        pair.close()
    finally:
        spares.close()


LOOPBACK = "[sip]\nsip_port=0\nsip_tcp_port=-1\n[rtp]\naudio_rtp_port=0\nvideo_rtp_port=0\n"


def audio_port(session_sdp: SessionDescription | None) -> int:
    assert session_sdp is not None
    return next(m.port for m in session_sdp.media if m.media == "audio")


@pytest.mark.timeout(60)
def test_an_answering_phone_answers_the_next_call_on_ports_bound_before_it_came() -> None:
    async def scenario() -> tuple[list[int], int, list[int]]:
        callee = Phone(loads(LOOPBACK, "test.rc"), bind=HOST)
        callee.policy = IncomingPolicy(auto_answer=True, delay=0)
        caller = Phone(loads(LOOPBACK, "test.rc"), bind=HOST)
        await callee.start()
        await caller.start()
        try:
            target = f"sip:bob@{HOST}:{callee.ports()['udp']}"
            first = await caller.call(target, media=MediaChoice(video=True))
            await first.wait_state("answered", 10)
            ahead = callee._spare_ports.held()  # bound once the first answer had left
            first.hangup()
            await first.wait(10)
            second = await caller.call(target, media=MediaChoice(video=True))
            await second.wait_state("answered", 10)
            answered_on = audio_port(second.call.remote_sdp)
            second.hangup()
            await second.wait(10)
        finally:
            await caller.close()
            await callee.close()
        return ahead, answered_on, callee._spare_ports.held()

    ahead, answered_on, after_close = asyncio.run(scenario())
    assert len(ahead) == 2 and answered_on in ahead  # audio and video, both bound ahead
    assert after_close == [] and all(is_free(port) for port in ahead)


def test_a_spare_on_a_descriptor_above_1023_is_drained_too() -> None:
    """A phone with hundreds of calls has sockets past select()'s limit (FD_SETSIZE)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        if hard != resource.RLIM_INFINITY and hard < 1200:
            pytest.skip(f"at most {hard} open files")
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    filler = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    held = [filler]
    spares = SparePairs()
    try:
        while held[-1].fileno() < 1030:
            held.append(filler.dup())
        spares.take(HOST, ANY).close()
        spares.refill()
        (port,) = spares.held()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stray:
            stray.sendto(b"an old stream", (HOST, port))
            time.sleep(0.05)
            pair = spares.take(HOST, ANY)
        assert pair.rtp.fileno() > 1023
        assert not _readable(pair.rtp)
        pair.close()
    finally:
        spares.close()
        for sock in held:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _readable(sock: socket.socket) -> bool:
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _loops() -> list[object]:
    import uvloop

    return [pytest.param(asyncio.new_event_loop, id="asyncio"), pytest.param(uvloop.new_event_loop, id="uvloop")]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("new_loop", _loops())
def test_a_spare_refilled_in_a_loop_is_the_loops_at_once_and_taken_without_a_system_call(new_loop) -> None:
    """The loop drops what reaches a spare, even what waits in the same loop turn as the INVITE
    whose call takes it; what comes once the call has it is the call's."""

    async def scenario() -> tuple[list[bytes], bool]:
        spares = SparePairs()
        got: list[bytes] = []
        try:
            spares.take(HOST, ANY).close()
            spares.refill()
            (port,) = spares.held()
            for _ in range(100):
                await asyncio.sleep(0.001)
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stray:
                stray.sendto(b"an old stream", (HOST, port))
                await asyncio.sleep(0.05)  # read and dropped by the loop
                stray.sendto(b"an old stream, later", (HOST, port))
                stray.sendto(b"an old stream, later", (HOST, port + 1))
                time.sleep(0.05)  # both wait in the loop's next turn, with what takes the pair
                taken: list[object] = []
                asyncio.get_running_loop().call_soon(lambda: taken.append(spares.take(HOST, ANY)))
                await asyncio.sleep(0.05)
                (pair,) = taken
                assert isinstance(pair, RtpPortPair)
                started = pair.started()
                pair.set_receivers(lambda data, _addr: got.append(data), lambda data, _addr: got.append(data))
                stray.sendto(b"the new call's", (HOST, port))
                for _ in range(200):
                    if got:
                        break
                    await asyncio.sleep(0.01)
            pair.close()
        finally:
            spares.close()
        return got, started

    loop = new_loop()
    try:
        got, started = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert started
    assert got == [b"the new call's"]


def test_draining_a_pair_whose_socket_failed_to_start_reads_the_other() -> None:
    """A socket the loop would not take is closed (RtpPortPair._start): draining skips it."""
    pair = open_port_pair(HOST, ANY)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stray:
            stray.sendto(b"an old stream", (HOST, pair.port))
            time.sleep(0.05)
        pair.rtcp.close()
        pair.drain()
        assert not _readable(pair.rtp)
    finally:
        pair.close()
