"""The shared media clock: one wake-up a period for every stream, on a common grid."""
from __future__ import annotations

import asyncio
import time

from softphone.media.clock import MAX_BEHIND, MediaClock


def test_streams_of_one_ptime_tick_together_whenever_they_started() -> None:
    async def run() -> tuple[list[float], list[float], MediaClock]:
        loop = asyncio.get_running_loop()
        clock = MediaClock.of(loop)
        first: list[float] = []
        second: list[float] = []
        a = clock.every(0.02, first.append)
        await asyncio.sleep(0.013)  # the second stream starts between two grid points
        b = clock.every(0.02, second.append)
        await asyncio.sleep(0.5)
        clock.cancel(a)
        clock.cancel(b)
        return first, second, clock

    first, second, clock = asyncio.run(run())
    assert 15 <= len(second) <= len(first) <= 30
    assert set(second) <= set(first)  # the same batches: one wake-up serves both
    assert clock.ticks <= len(first) + 2


def test_a_stalled_loop_shows_as_lateness_and_is_not_made_up_in_a_burst() -> None:
    async def run() -> tuple[list[float], float]:
        loop = asyncio.get_running_loop()
        clock = MediaClock.of(loop)
        seen: list[float] = []
        ticker = clock.every(0.02, seen.append)
        await asyncio.sleep(0.1)
        time.sleep(0.4)  # the loop is held for 20 periods
        before = len(seen)
        await asyncio.sleep(0.05)
        lateness = clock.lateness
        clock.cancel(ticker)
        return seen[before:], lateness

    after_stall, lateness = asyncio.run(run())
    assert lateness > 0.01  # the batch right after the stall ran about 0.4 s late
    assert len(after_stall) <= MAX_BEHIND + 2


def test_the_clock_thread_ends_when_nothing_is_registered() -> None:
    async def run() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        clock = MediaClock.of(loop)
        ticker = clock.every(0.02, lambda now: None)
        await asyncio.sleep(0.1)
        running = clock._thread is not None
        clock.cancel(ticker)
        deadline = loop.time() + 3
        while clock._thread is not None and loop.time() < deadline:
            await asyncio.sleep(0.05)
        return running, clock._thread is None

    assert asyncio.run(run()) == (True, True)
