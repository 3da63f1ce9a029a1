"""Where codec work runs: on the event loop when cheap, in the executor when not."""
from __future__ import annotations

import asyncio
import time

from softphone.media.audio import _Offload


def burn(seconds: float) -> float:
    """Spend `seconds` of CPU in this thread."""
    started = time.thread_time()
    while time.thread_time() - started < seconds:
        pass
    return seconds


def test_cheap_work_moves_inline_and_costly_work_moves_back() -> None:
    async def run() -> list[bool]:
        loop = asyncio.get_running_loop()
        offload = _Offload()
        seen = []
        for cost in [0.00005] * 15 + [0.002] * 15 + [0.00005] * 40:
            await offload.run(loop, burn, cost)
            seen.append(offload.inline)
        return seen

    seen = asyncio.run(run())
    assert seen[:9] == [False] * 9  # probes in the executor first
    assert seen[14]  # cheap: on the loop
    assert not seen[29]  # became costly: back to the executor
    assert seen[-1]  # cheap again


def test_work_that_stays_costly_stays_in_the_executor() -> None:
    async def run() -> bool:
        loop = asyncio.get_running_loop()
        offload = _Offload()
        for _ in range(20):
            await offload.run(loop, burn, 0.0006)
        return offload.inline

    assert asyncio.run(run()) is False
