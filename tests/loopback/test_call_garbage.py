"""A call's objects are freed by reference counting when it ends: none is left in a cycle for
the collector, whose pass would otherwise free a whole call (codec contexts, sockets, the
streams) in the middle of a later INVITE's answer."""

from __future__ import annotations

import asyncio
import gc

import pytest

from softphone.agent import IncomingPolicy
from softphone.config import loads
from softphone.media.audio import AudioStream
from softphone.media.video import VideoStream
from softphone.phone import Phone
from softphone.session import CallSession, MediaChoice

HOST = "127.0.0.1"
LOOPBACK = "[sip]\nsip_port=0\nsip_tcp_port=-1\n[rtp]\naudio_rtp_port=0\nvideo_rtp_port=0\n"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("video", [False, True], ids=["audio", "audio+video"])
def test_an_ended_call_leaves_nothing_for_the_cycle_collector(video: bool) -> None:
    async def scenario() -> list[str]:
        callee = Phone(loads(LOOPBACK, "test.rc"), bind=HOST)
        callee.policy = IncomingPolicy(auto_answer=True, delay=0)
        caller = Phone(loads(LOOPBACK, "test.rc"), bind=HOST)
        for phone in (caller, callee):  # the heap is frozen (gc.freeze) at start, not during the call
            phone.preload_media = False
        await callee.start()
        await caller.start()
        try:
            placed = await caller.call(f"sip:bob@{HOST}:{callee.ports()['udp']}", media=MediaChoice(video=video))
            await placed.wait_state("answered", 10)
            await asyncio.sleep(0.5)  # media both ways
            streams = [s for p in (caller, callee) for session in p.sessions.values() for s in (session.audio,
                                                                                                 session.video)]
            assert sum(s is not None for s in streams) == (4 if video else 2)
            del streams
            placed.hangup()
            await placed.wait(10)
            del placed
            await asyncio.sleep(0.5)  # the callee's end, the media threads' last turns
            gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector would free is kept in gc.garbage
            gc.collect()
            return [type(o).__qualname__ for o in gc.garbage if isinstance(o, (CallSession, AudioStream, VideoStream))]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            await caller.close()
            await callee.close()

    gc.collect()
    gc.disable()  # no pass of the collector may free a cycle before we look
    try:
        in_cycles = asyncio.run(scenario())
    finally:
        gc.enable()
    assert not in_cycles, f"left for the cycle collector after the call: {in_cycles}"
